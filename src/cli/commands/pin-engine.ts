// The pinning engine as `kimg pin` configures it: the admission engine's Pinner, with flags laid
// over the configuration (docs/semantics.md admission §3), resolving through the registry flags, a `--config` resolver
// section, or a lock file.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  Pinner,
  checkPlatform,
  classifyImage,
  dockerConfigCredentials,
  loadAdmissionConfig,
  parseAdmissionConfig,
  parseExtraPodSpecPaths,
  resolverFromConfig,
  type AdmissionConfig,
  type CredentialLookup,
  type ExistingDigestMode,
  type DigestResolver,
  type MutateConfig,
  type OutputFormat,
} from '../../admission/index.ts';
import type { Descriptor } from '../../oci/index.ts';
import {
  ImageLockError,
  LockResolver,
  LockedResolutions,
  parseImageLock,
  type ImageSlot,
} from '../../manifests/index.ts';
import { indexChildren, repositoryOf } from '../../pull/index.ts';
import { parseDockerRef } from '../../reference/index.ts';
import type { RegistryClient } from '../../registry/index.ts';
import { durationFlag, type Io } from '../io.ts';
import { loggerFrom } from '../log.ts';
import { registryFrom, type RegistryFlags } from '../registry-options.ts';
import { UsageError } from './pin-input.ts';

/** Flags `kimg pin` and `kimg lint` share. */
export interface ManifestFlags {
  readonly filename?: string[];
  readonly output: string;
  readonly podSpecPath?: string[];
  readonly extraPath?: string[];
  readonly config?: string;
  readonly krm?: boolean;
}

export interface PinFlags extends ManifestFlags, RegistryFlags {
  readonly write?: boolean;
  readonly lock?: string;
  readonly fromLock?: string;
  readonly check?: boolean;
  readonly outputFormat?: string;
  readonly form?: string;
  readonly platform?: string;
  readonly existingDigest?: string;
  readonly onMismatch?: string;
  readonly skipPrefix?: string[];
  readonly timeout?: string;
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The docs/semantics.md admission §3 configuration of `--config FILE`, or the defaults. */
export async function loadConfig(path: string | undefined, io: Io): Promise<AdmissionConfig> {
  // Offline: the in-cluster defaults (informer, POD_NAMESPACE) never apply to the CLI.
  const environment = { env: { ...io.env, KUBERNETES_SERVICE_HOST: '' } };
  return path === undefined ? parseAdmissionConfig({}, environment) : loadAdmissionConfig(path, environment);
}

const OUTPUT_FORMATS: Readonly<Record<string, OutputFormat>> = {
  preserve: 'preserve',
  'tag+digest': 'preserve',
  canonical: 'canonical',
  'digest-only': 'digest-only',
  digest: 'digest-only',
};

const EXISTING_DIGEST: Readonly<Record<string, ExistingDigestMode>> = {
  keep: 'keep',
  'verify-warn': 'verify-warn',
  warn: 'verify-warn',
  'verify-deny': 'verify-deny',
  deny: 'verify-deny',
};

function oneOf<T>(table: Readonly<Record<string, T>>, flags: readonly [string, string | undefined][]): T | undefined {
  let chosen: { flag: string; value: T } | undefined;
  for (const [flag, raw] of flags) {
    if (raw === undefined) continue;
    const value = table[raw];
    if (value === undefined) throw new UsageError(`${flag} "${raw}" is not one of ${Object.keys(table).join(', ')}`);
    if (chosen !== undefined && chosen.value !== value) throw new UsageError(`${chosen.flag} and ${flag} disagree`);
    chosen = { flag, value };
  }
  return chosen?.value;
}

/**
 * The slot-finding flags pin, relocate and lint share: `--pod-spec-path` (parsed by
 * `podSpecPathFlags`) and `--extra-path`, whose help says what `verb` does to the string there.
 */
export function addSlotFlags(command: Command, verb: string): Command {
  return command
    .option(
      '--pod-spec-path <group/Kind=path>',
      'where a custom kind keeps its pod spec, e.g. argoproj.io/Rollout=spec.template.spec (repeatable)',
      collect,
    )
    .option(
      '--extra-path <path>',
      `also ${verb} the string at this dotted path from each document root, e.g. spec.image or jobs[*].image (repeatable)`,
      collect,
    );
}

/** `group/Kind=a.b` (repeatable) as `extraPodSpecPaths`; a bare `Kind` is the core group. */
export function podSpecPathFlags(values: readonly string[] = []): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0)
      throw new UsageError(
        `--pod-spec-path must be group/Kind=path (e.g. argoproj.io/Rollout=spec.template.spec), got "${value}"`,
      );
    const kind = value.slice(0, eq);
    (out[kind.includes('/') ? kind : `/${kind}`] ??= []).push(value.slice(eq + 1));
  }
  try {
    parseExtraPodSpecPaths(out, '--pod-spec-path');
  } catch (err) {
    throw new UsageError(
      err instanceof Error ? err.message.replace(/^invalid admission configuration: /, '') : String(err),
    );
  }
  return out;
}

/** The `mutate` section with the command-line flags laid over it. */
export function mutateFromFlags(base: MutateConfig, flags: PinFlags): MutateConfig {
  const outputFormat = oneOf(OUTPUT_FORMATS, [
    ['--output-format', flags.outputFormat],
    ['--form', flags.form],
  ]);
  const existingDigest = oneOf(EXISTING_DIGEST, [
    ['--existing-digest', flags.existingDigest],
    ['--on-mismatch', flags.onMismatch],
  ]);
  if (flags.platform !== undefined) {
    try {
      checkPlatform(flags.platform, '--platform');
    } catch (err) {
      throw new UsageError(
        err instanceof Error ? err.message.replace(/^invalid admission configuration: /, '') : String(err),
      );
    }
  }
  const extra = podSpecPathFlags(flags.podSpecPath);
  const extraPodSpecPaths: Record<string, readonly string[]> = { ...base.extraPodSpecPaths };
  for (const [kind, paths] of Object.entries(extra))
    extraPodSpecPaths[kind] = [...(extraPodSpecPaths[kind] ?? []), ...paths];
  return {
    ...base,
    ...(outputFormat !== undefined && { outputFormat }),
    ...(existingDigest !== undefined && { existingDigest }),
    ...(flags.platform !== undefined && { resolve: { platform: flags.platform } }),
    skipPrefixes: [...base.skipPrefixes, ...(flags.skipPrefix ?? [])],
    extraPodSpecPaths,
  };
}

/** `index`, or the platform: how the lock file names the resolve mode. */
export function resolveModeOf(mutate: MutateConfig): string {
  return mutate.resolve === 'index' ? 'index' : mutate.resolve.platform;
}

/** `--timeout`: a Go duration (`30s`, `500ms`, `2m`), as every time flag of kimg. */
export function parseTimeout(value: string | undefined): number {
  return value === undefined ? DEFAULT_LOOKUP_TIMEOUT_MS : durationFlag('--timeout', value);
}

/** How long one image's lookup (HEAD, a GET fallback, retries) may take before it fails with `timeout`. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 30_000;

/** True when pinning `image` needs a registry (or lock) lookup under these settings. */
function needsLookup(image: string, mutate: MutateConfig): boolean {
  const c = classifyImage(image, mutate.skipPrefixes);
  return c.kind === 'tag' || (c.kind === 'digest' && c.tag !== undefined && mutate.existingDigest !== 'keep');
}

export interface PinEngineHandle {
  readonly pinner: Pinner;
  close(): Promise<void>;
}

/** Reads `--from-lock FILE` (exit 2 when unreadable, invalid or for another resolve mode). */
export async function readLock(file: string, resolveMode: string): Promise<LockedResolutions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ImageLockError(
      'ErrLockInvalid',
      `${file}: cannot read the lock: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { file },
    );
  }
  const resolutions = new LockedResolutions(parseImageLock(text, file), file);
  resolutions.assertResolve(resolveMode);
  return resolutions;
}

/**
 * The Pinner for this run. Nothing connects to a registry until an image needs a lookup; with
 * `--from-lock` nothing ever does.
 */
export async function createPinEngine(
  flags: PinFlags,
  config: AdmissionConfig,
  mutate: MutateConfig,
  slots: readonly ImageSlot[],
  io: Io,
): Promise<PinEngineHandle> {
  const pinnerFor = (resolver: DigestResolver, credentials?: CredentialLookup) =>
    Pinner.fromConfig(mutate, config.resolver, resolver, credentials === undefined ? {} : { credentials });

  if (flags.fromLock !== undefined) {
    const resolutions = await readLock(flags.fromLock, resolveModeOf(mutate));
    return { pinner: pinnerFor(new LockResolver(resolutions)), close: () => Promise.resolve() };
  }

  const lookups = slots.map((s) => s.image).filter((image) => needsLookup(image, mutate));
  const r = config.resolver;
  const configured =
    Object.keys(r.registryHosts).length > 0 ||
    [r.caFile, r.dockerConfig, r.hostsDir, r.registriesConf].some((v) => v !== undefined);
  if (configured) {
    if (
      flags.hostsDir !== undefined ||
      flags.registriesConf !== undefined ||
      flags.creds !== undefined ||
      flags.authfile !== undefined
    ) {
      throw new UsageError(
        '--config has resolver settings (registryHosts, caFile, dockerConfig, hostsDir, registriesConf): use them or the registry flags, not both',
      );
    }
    const caPems = await Promise.all((flags.caFile ?? []).map((f) => readFile(f, 'utf8')));
    const trace = loggerFrom(flags, io).registryEvents;
    const resolver = await resolverFromConfig(r, {
      ...(flags.tlsVerifyLoopback === true && { insecureLoopback: false }),
      ...(trace !== undefined && { onRegistryEvent: trace, client: { traceRequests: true } }),
      caPems,
    });
    const credentials = await dockerConfigCredentials(r.dockerConfig, io.env);
    return { pinner: pinnerFor(resolver, credentials), close: () => resolver.close() };
  }

  const image = credsImage(flags, lookups);
  const lazy = new LazyRegistryResolver(() => registryFrom(flags, io, image), parseTimeout(flags.timeout));
  // Set up now when lookups are due, so that a bad flag (an unreadable CA, a broken hosts.toml)
  // is a usage error rather than one resolution failure per image.
  if (lookups.length > 0) await lazy.start();
  return { pinner: pinnerFor(lazy), close: () => lazy.close() };
}

/** `--creds` names no registry: it is for the one registry the manifests' images need. */
function credsImage(flags: RegistryFlags, lookups: readonly string[]): string | undefined {
  if (flags.creds === undefined) return undefined;
  const registries = [...new Set(lookups.map((image) => parseDockerRef(image).domain))];
  if (registries.length > 1) {
    throw new UsageError(
      `--creds is for one registry, and these manifests need ${registries.join(', ')}: put the credentials in a file for --authfile instead`,
    );
  }
  return lookups[0];
}

/**
 * A DigestResolver on one registry client as the registry flags configure it (mirrors from
 * `--hosts-dir`/`--registries-conf`, CAs, credentials from `--creds`, `--authfile` and the
 * Docker config), opened at the first lookup. No store is opened: pinning keeps nothing.
 */
class LazyRegistryResolver implements DigestResolver {
  #client: Promise<RegistryClient> | undefined;

  constructor(
    private readonly open: () => Promise<RegistryClient>,
    private readonly timeoutMs: number,
  ) {}

  private signal(given: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    return given === undefined ? timeout : AbortSignal.any([given, timeout]);
  }

  private client(): Promise<RegistryClient> {
    return (this.#client ??= this.open());
  }

  async start(): Promise<void> {
    await this.client();
  }

  async resolve(reference: string, context: { signal?: AbortSignal } = {}): Promise<Descriptor> {
    const client = await this.client();
    const ref = parseDockerRef(reference);
    const found = await client.resolve({ registry: ref.domain, path: ref.path }, ref.digest ?? ref.tag ?? 'latest', {
      signal: this.signal(context.signal),
    });
    return found.descriptor;
  }

  async indexManifests(
    repository: string,
    index: Descriptor,
    context: { signal?: AbortSignal } = {},
  ): Promise<readonly Descriptor[]> {
    const client = await this.client();
    return indexChildren(client, repositoryOf(repository), index, { signal: this.signal(context.signal) });
  }

  async close(): Promise<void> {
    if (this.#client !== undefined) await (await this.#client).close();
  }
}
