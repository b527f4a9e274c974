/**
 * The configuration vocabulary of docs/semantics.md admission §3: one object with `mutate`, `validate` and `resolver`
 * sections. Omitted keys take their defaults; an unknown key or value is an AdmissionConfigError
 * naming it. Pure: reading files lives in config-file.ts.
 */
import { parsePlatform } from '../oci/index.ts';
import { tryParseNormalizedNamed } from '../reference/index.ts';
import { AdmissionConfigError } from './errors.ts';

export type OutputFormat = 'preserve' | 'canonical' | 'digest-only';
export type ResolveMode = 'index' | { readonly platform: string };
export type ExistingDigestMode = 'keep' | 'verify-warn' | 'verify-deny';

export interface MutateConfig {
  readonly outputFormat: OutputFormat;
  readonly resolve: ResolveMode;
  readonly skipPrefixes: readonly string[];
  readonly onResolveError: 'deny' | 'allow';
  readonly existingDigest: ExistingDigestMode;
  readonly onUpdate: 'changed-only' | 'all';
  /** `"<apiVersion> <Kind> owned by <apiVersion> <Kind>"` entries. */
  readonly skipControllerOwned: readonly string[];
  readonly ownNamespace: string;
  readonly invalidReference: 'warn-and-skip' | 'deny';
  /** `"<group>/<Kind>"` → dotted pod-spec paths (`spec.template.spec`). */
  readonly extraPodSpecPaths: Readonly<Record<string, readonly string[]>>;
}

export type SecretSourceConfig = 'informer' | 'none' | { readonly file: string };

export interface ResolverConfig {
  /** Normalized registry host → `https://h:p` or `http://h:p`: an endpoint override only. */
  readonly registryHosts: Readonly<Record<string, string>>;
  /** Extra trusted CAs (PEM file); absent = system roots only. */
  readonly caFile?: string;
  readonly cacheTtlSeconds: number;
  /**
   * Bounded stale-while-error: when a lookup fails for a reason that says nothing about the image
   * (timeout, unreachable, 5xx, 429), a cached answer that expired less than this long ago is
   * pinned, with a warning. 0 (default) = off: the failure stands.
   */
  readonly staleIfErrorSeconds: number;
  /**
   * containerd `config_path`: `<dir>/<host>/hosts.toml` (mirrors, CAs, plain-HTTP hosts), as the
   * pull engine reads it; a `:`-separated list is searched in order. `registryHosts` wins for the
   * hosts it names.
   */
  readonly hostsDir?: string;
  /** A containers-registries.conf(5) file: prefixes, mirrors, insecure and blocked registries. */
  readonly registriesConf?: string;
  readonly registryTimeoutMs: number;
  readonly budgetFraction: number;
  readonly maxBudgetMs: number;
  readonly secretSource: SecretSourceConfig;
  /** Docker config.json read last; absent = `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
  readonly dockerConfig?: string;
}

export interface PolicyConfig {
  readonly enforcement: 'deny' | 'warn';
  readonly disallowedTags: readonly string[];
  readonly implicitLatestIsLatest: boolean;
  readonly digestSatisfiesTagRules: boolean;
  readonly requireDigest: boolean;
  readonly digestMustBeValid: boolean;
  readonly rejectInvalidReferences: boolean;
  /** `<repository>` or `<prefix>/*`, normalized; empty = no restriction. */
  readonly allowedRepositories: readonly string[];
  /** Exact, or prefix when ending in `*`, on the image as written. */
  readonly exemptImages: readonly string[];
}

export interface AdmissionConfig {
  readonly mutate: MutateConfig;
  readonly validate: PolicyConfig;
  readonly resolver: ResolverConfig;
}

export const DEFAULT_OWN_NAMESPACE = 'kimg-system';
export const DEFAULT_SKIP_CONTROLLER_OWNED: readonly string[] = ['apps/v1 ReplicaSet owned by apps/v1 Deployment'];

/** Where defaults that depend on the environment come from (`POD_NAMESPACE`, in-cluster detection). */
export interface ConfigEnvironment {
  readonly env?: Readonly<Record<string, string | undefined>>;
}

function inCluster(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env['KUBERNETES_SERVICE_HOST'] ?? '') !== '';
}

export function defaultMutateConfig(environment: ConfigEnvironment = {}): MutateConfig {
  const env = environment.env ?? {};
  const podNamespace = env['POD_NAMESPACE'];
  return {
    outputFormat: 'preserve',
    resolve: 'index',
    skipPrefixes: [],
    onResolveError: 'deny',
    existingDigest: 'keep',
    onUpdate: 'changed-only',
    skipControllerOwned: DEFAULT_SKIP_CONTROLLER_OWNED,
    ownNamespace:
      inCluster(env) && podNamespace !== undefined && podNamespace !== '' ? podNamespace : DEFAULT_OWN_NAMESPACE,
    invalidReference: 'warn-and-skip',
    extraPodSpecPaths: {},
  };
}

export function defaultResolverConfig(environment: ConfigEnvironment = {}): ResolverConfig {
  return {
    registryHosts: {},
    cacheTtlSeconds: 60,
    staleIfErrorSeconds: 0,
    registryTimeoutMs: 5000,
    budgetFraction: 0.8,
    maxBudgetMs: 8000,
    secretSource: inCluster(environment.env ?? {}) ? 'informer' : 'none',
  };
}

/** Neutral: a policy enables only what it names. */
export const DEFAULT_POLICY: PolicyConfig = {
  enforcement: 'deny',
  disallowedTags: [],
  implicitLatestIsLatest: true,
  digestSatisfiesTagRules: true,
  requireDigest: false,
  digestMustBeValid: false,
  rejectInvalidReferences: false,
  allowedRepositories: [],
  exemptImages: [],
};

// ------------------------------------------------------------------ reading untyped input

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a map' : `${typeof value} ${JSON.stringify(value)}`;
}

class Section {
  constructor(
    readonly value: Json,
    readonly where: string,
  ) {}

  static of(value: unknown, where: string): Section {
    if (value === undefined || value === null) return new Section({}, where);
    if (!isObject(value)) throw new AdmissionConfigError(where, `expected a map, found ${typeName(value)}`);
    return new Section(value, where);
  }

  key(name: string): string {
    return this.where === '' ? name : `${this.where}.${name}`;
  }

  only(known: readonly string[]): void {
    for (const name of Object.keys(this.value)) {
      if (!known.includes(name))
        throw new AdmissionConfigError(this.key(name), `unknown key (known: ${known.join(', ')})`);
    }
  }

  has(name: string): boolean {
    return this.value[name] !== undefined && this.value[name] !== null;
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const value = this.value[name];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      throw new AdmissionConfigError(
        this.key(name),
        `unknown value ${JSON.stringify(value)} (use ${values.join(', ')})`,
      );
    }
    return value as T;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.value[name];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean')
      throw new AdmissionConfigError(this.key(name), `expected true or false, found ${typeName(value)}`);
    return value;
  }

  string(name: string): string | undefined {
    const value = this.value[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value === '')
      throw new AdmissionConfigError(this.key(name), `expected a non-empty string, found ${typeName(value)}`);
    return value;
  }

  number(name: string, fallback: number, check: (n: number) => boolean, expected: string): number {
    const value = this.value[name];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
      throw new AdmissionConfigError(this.key(name), `expected ${expected}, found ${typeName(value)}`);
    }
    return value;
  }

  strings(name: string, fallback: readonly string[]): readonly string[] {
    const value = this.value[name];
    if (value === undefined || value === null) return fallback;
    return stringList(value, this.key(name));
  }
}

function stringList(value: unknown, where: string): readonly string[] {
  if (!Array.isArray(value))
    throw new AdmissionConfigError(where, `expected a list of strings, found ${typeName(value)}`);
  return value.map((item: unknown, i) => {
    if (typeof item !== 'string' || item === '')
      throw new AdmissionConfigError(`${where}[${i}]`, `expected a non-empty string, found ${typeName(item)}`);
    return item;
  });
}

// ------------------------------------------------------------------ sections

const CONTROLLER_OWNED = /^(\S+) (\S+) owned by (\S+) (\S+)$/;
const GROUP_KIND = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?\/[A-Za-z][A-Za-z0-9]*$/;
const DOTTED_PATH = /^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/;

export function parseMutateConfig(input: unknown, environment: ConfigEnvironment = {}, where = 'mutate'): MutateConfig {
  const s = Section.of(input, where);
  s.only([
    'outputFormat',
    'resolve',
    'skipPrefixes',
    'onResolveError',
    'existingDigest',
    'onUpdate',
    'skipControllerOwned',
    'ownNamespace',
    'invalidReference',
    'extraPodSpecPaths',
  ]);
  const defaults = defaultMutateConfig(environment);
  const skipControllerOwned = s.strings('skipControllerOwned', defaults.skipControllerOwned);
  skipControllerOwned.forEach((entry, i) => {
    if (!CONTROLLER_OWNED.test(entry)) {
      throw new AdmissionConfigError(
        `${s.key('skipControllerOwned')}[${i}]`,
        `expected "<apiVersion> <Kind> owned by <apiVersion> <Kind>", found ${JSON.stringify(entry)}`,
      );
    }
  });
  return {
    outputFormat: s.oneOf('outputFormat', ['preserve', 'canonical', 'digest-only'], defaults.outputFormat),
    resolve: parseResolveMode(s.value['resolve'], s.key('resolve')),
    skipPrefixes: s.strings('skipPrefixes', defaults.skipPrefixes),
    onResolveError: s.oneOf('onResolveError', ['deny', 'allow'], defaults.onResolveError),
    existingDigest: s.oneOf('existingDigest', ['keep', 'verify-warn', 'verify-deny'], defaults.existingDigest),
    onUpdate: s.oneOf('onUpdate', ['changed-only', 'all'], defaults.onUpdate),
    skipControllerOwned,
    ownNamespace: s.string('ownNamespace') ?? defaults.ownNamespace,
    invalidReference: s.oneOf('invalidReference', ['warn-and-skip', 'deny'], defaults.invalidReference),
    extraPodSpecPaths: parseExtraPodSpecPaths(s.value['extraPodSpecPaths'], s.key('extraPodSpecPaths')),
  };
}

/** `"index"` or `{platform: "os/arch[/variant]"}`. */
export function parseResolveMode(value: unknown, where = 'mutate.resolve'): ResolveMode {
  if (value === undefined || value === null || value === 'index') return 'index';
  if (!isObject(value))
    throw new AdmissionConfigError(
      where,
      `expected "index" or {platform: "os/arch[/variant]"}, found ${typeName(value)}`,
    );
  const s = new Section(value, where);
  s.only(['platform']);
  const platform = s.string('platform');
  if (platform === undefined) throw new AdmissionConfigError(s.key('platform'), 'required');
  return { platform: checkPlatform(platform, s.key('platform')) };
}

/** Validates `os/arch[/variant]` (both parts required: an admission webhook has no host platform to default from). */
export function checkPlatform(platform: string, where: string): string {
  const parts = platform.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new AdmissionConfigError(where, `expected os/arch[/variant], found ${JSON.stringify(platform)}`);
  }
  try {
    parsePlatform(platform);
  } catch (err) {
    throw new AdmissionConfigError(where, err instanceof Error ? err.message : String(err));
  }
  return platform;
}

/**
 * Checks `mutate.extraPodSpecPaths`: a map from `group/Kind` to the JSON paths of extra pod
 * specs in that kind. Returns `{}` when absent; anything else is an `AdmissionConfigError` naming
 * `where`.
 */
export function parseExtraPodSpecPaths(
  value: unknown,
  where = 'mutate.extraPodSpecPaths',
): Readonly<Record<string, readonly string[]>> {
  if (value === undefined || value === null) return {};
  if (!isObject(value))
    throw new AdmissionConfigError(
      where,
      `expected a map of "<group>/<Kind>" to lists of dotted paths, found ${typeName(value)}`,
    );
  const out: Record<string, readonly string[]> = {};
  for (const [groupKind, paths] of Object.entries(value)) {
    const key = `${where}[${JSON.stringify(groupKind)}]`;
    if (!GROUP_KIND.test(groupKind))
      throw new AdmissionConfigError(key, 'expected "<group>/<Kind>", e.g. "argoproj.io/Rollout"');
    const list = stringList(paths, key);
    list.forEach((p, i) => {
      if (!DOTTED_PATH.test(p))
        throw new AdmissionConfigError(
          `${key}[${i}]`,
          `expected a dotted path such as spec.template.spec, found ${JSON.stringify(p)}`,
        );
    });
    out[groupKind] = list;
  }
  return out;
}

const URL_OVERRIDE = /^(https?):\/\/([^/?#@\s]+)\/?$/;

export function parseResolverConfig(
  input: unknown,
  environment: ConfigEnvironment = {},
  where = 'resolver',
): ResolverConfig {
  const s = Section.of(input, where);
  s.only([
    'registryHosts',
    'hostsDir',
    'registriesConf',
    'caFile',
    'cacheTtlSeconds',
    'staleIfErrorSeconds',
    'registryTimeoutMs',
    'budgetFraction',
    'maxBudgetMs',
    'secretSource',
    'dockerConfig',
  ]);
  const defaults = defaultResolverConfig(environment);
  const registryHosts: Record<string, string> = {};
  const hostsValue = s.value['registryHosts'];
  if (hostsValue !== undefined && hostsValue !== null) {
    if (!isObject(hostsValue))
      throw new AdmissionConfigError(
        s.key('registryHosts'),
        `expected a map of registry host to URL, found ${typeName(hostsValue)}`,
      );
    for (const [host, url] of Object.entries(hostsValue)) {
      const key = `${s.key('registryHosts')}[${JSON.stringify(host)}]`;
      const parsed = tryParseNormalizedNamed(`${host}/x`);
      if (!parsed.ok || parsed.value.domain !== host || host.includes('/'))
        throw new AdmissionConfigError(
          key,
          'expected a normalized registry host such as docker.io, localhost:5000 or [::1]:5000',
        );
      if (typeof url !== 'string' || !URL_OVERRIDE.test(url))
        throw new AdmissionConfigError(
          key,
          `expected https://host[:port] or http://host[:port], found ${typeName(url)}`,
        );
      registryHosts[host] = url.replace(/\/$/, '');
    }
  }
  const caFile = s.string('caFile');
  const dockerConfig = s.string('dockerConfig');
  const hostsDir = s.string('hostsDir');
  const registriesConf = s.string('registriesConf');
  return {
    registryHosts,
    ...(hostsDir !== undefined && { hostsDir }),
    ...(registriesConf !== undefined && { registriesConf }),
    ...(caFile !== undefined && { caFile }),
    cacheTtlSeconds: s.number(
      'cacheTtlSeconds',
      defaults.cacheTtlSeconds,
      (n) => Number.isInteger(n) && n >= 0,
      'a whole number ≥ 0',
    ),
    staleIfErrorSeconds: s.number(
      'staleIfErrorSeconds',
      defaults.staleIfErrorSeconds,
      (n) => Number.isInteger(n) && n >= 0,
      'a whole number of seconds ≥ 0',
    ),
    registryTimeoutMs: s.number(
      'registryTimeoutMs',
      defaults.registryTimeoutMs,
      (n) => Number.isInteger(n) && n > 0,
      'a whole number of milliseconds > 0',
    ),
    budgetFraction: s.number('budgetFraction', defaults.budgetFraction, (n) => n > 0 && n <= 1, 'a fraction in (0, 1]'),
    maxBudgetMs: s.number(
      'maxBudgetMs',
      defaults.maxBudgetMs,
      (n) => Number.isInteger(n) && n > 0,
      'a whole number of milliseconds > 0',
    ),
    secretSource: parseSecretSource(s.value['secretSource'], s.key('secretSource'), defaults.secretSource),
    ...(dockerConfig !== undefined && { dockerConfig }),
  };
}

function parseSecretSource(value: unknown, where: string, fallback: SecretSourceConfig): SecretSourceConfig {
  if (value === undefined || value === null) return fallback;
  if (value === 'informer' || value === 'none') return value;
  if (isObject(value)) {
    const s = new Section(value, where);
    s.only(['file']);
    const file = s.string('file');
    if (file === undefined) throw new AdmissionConfigError(s.key('file'), 'required');
    return { file };
  }
  throw new AdmissionConfigError(where, `expected "informer", "none" or {file: PATH}, found ${typeName(value)}`);
}

/**
 * Checks the `validate` section (the image policy) and fills in its defaults; an unknown key
 * or bad value is an `AdmissionConfigError` naming `where`.
 */
export function parsePolicyConfig(input: unknown, where = 'validate'): PolicyConfig {
  const s = Section.of(input, where);
  s.only([
    'enforcement',
    'disallowedTags',
    'implicitLatestIsLatest',
    'digestSatisfiesTagRules',
    'requireDigest',
    'digestMustBeValid',
    'rejectInvalidReferences',
    'allowedRepositories',
    'exemptImages',
  ]);
  const d = DEFAULT_POLICY;
  const allowedRepositories = s.strings('allowedRepositories', d.allowedRepositories);
  allowedRepositories.forEach((entry, i) => checkRepositoryEntry(entry, `${s.key('allowedRepositories')}[${i}]`));
  const disallowedTags = s.strings('disallowedTags', d.disallowedTags);
  return {
    enforcement: s.oneOf('enforcement', ['deny', 'warn'], d.enforcement),
    disallowedTags,
    implicitLatestIsLatest: s.boolean('implicitLatestIsLatest', d.implicitLatestIsLatest),
    digestSatisfiesTagRules: s.boolean('digestSatisfiesTagRules', d.digestSatisfiesTagRules),
    requireDigest: s.boolean('requireDigest', d.requireDigest),
    digestMustBeValid: s.boolean('digestMustBeValid', d.digestMustBeValid),
    rejectInvalidReferences: s.boolean('rejectInvalidReferences', d.rejectInvalidReferences),
    allowedRepositories,
    exemptImages: s.strings('exemptImages', d.exemptImages),
  };
}

/**
 * An `allowedRepositories` entry must say exactly what it matches: a normalized repository
 * (`docker.io/library/redis`, not `redis`), or `<prefix>/*` where the prefix is a registry or a
 * normalized repository path. A `*` anywhere else is an error.
 */
export function checkRepositoryEntry(entry: string, where: string): void {
  const wildcard = entry.endsWith('/*');
  const body = wildcard ? entry.slice(0, -2) : entry;
  if (body.includes('*'))
    throw new AdmissionConfigError(where, `${JSON.stringify(entry)}: "*" is allowed only as a final "/*"`);
  // Two more components, so `docker.io/*` is not read as the familiar `docker.io/library/x`.
  const probe = wildcard ? `${body}/x/y` : body;
  const parsed = tryParseNormalizedNamed(probe);
  if (!parsed.ok || parsed.value.kind !== 'name' || parsed.value.toString() !== probe) {
    const hint = parsed.ok
      ? ` (normalized: ${JSON.stringify(wildcard ? `${parsed.value.name.slice(0, -4)}/*` : parsed.value.name)})`
      : '';
    throw new AdmissionConfigError(
      where,
      `${JSON.stringify(entry)} is not a normalized repository or <prefix>/*${hint}`,
    );
  }
}

/** The whole configuration object (docs/semantics.md admission §3); missing sections take their defaults. */
export function parseAdmissionConfig(input: unknown, environment: ConfigEnvironment = {}): AdmissionConfig {
  const s = Section.of(input, '');
  s.only(['mutate', 'validate', 'resolver']);
  return {
    mutate: parseMutateConfig(s.value['mutate'], environment),
    validate: parsePolicyConfig(s.value['validate']),
    resolver: parseResolverConfig(s.value['resolver'], environment),
  };
}
