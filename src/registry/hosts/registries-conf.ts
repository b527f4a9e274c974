/**
 * containers-registries.conf(5), as CRI-O, podman, skopeo and buildah read it: version 2
 * (`[[registry]]` tables) and the deprecated version 1 (`[registries.search]` etc.), plus
 * drop-in files merged in order.
 *
 * Differences from containers/image, each the safer choice:
 * - a prefix that is only a host (`example.com`) does not match `example.com:5000` (containers/image
 *   matches it, and documents that as a bug not to rely on);
 * - a location rewrite that would change the tag or digest of the reference is an error;
 * - a mirror may carry `fallback = false` (kimg extension, ignored by containers/image with a
 *   warning) to make a failure at that mirror final.
 */
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HostsConfigError, RegistryBlockedError } from './errors.ts';
import { TableReader, parseTomlFile, readConfigFile } from './toml.ts';
import type { PullKind, RepositoryName } from './types.ts';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface MirrorEntry {
  /** `host[:port][/path]`. */
  readonly location: string;
  readonly insecure: boolean;
  readonly pullFromMirror: PullFromMirror;
  /** kimg extension; default true. */
  readonly fallback: boolean;
}

export interface RegistryEntry {
  /** `host[:port][/path][:tag|@digest]` or `*.domain`. */
  readonly prefix: string;
  /** Where the prefix is pulled from; '' for a wildcard prefix that is not rewritten. */
  readonly location: string;
  readonly insecure: boolean;
  readonly blocked: boolean;
  readonly mirrorByDigestOnly: boolean;
  readonly mirrors: readonly MirrorEntry[];
  /** The file that defined it. */
  readonly file: string;
}

/** One file's content. Fields the file does not set are absent (a drop-in leaves them alone). */
export interface RegistriesConfFile {
  readonly file: string;
  readonly registries: readonly RegistryEntry[];
  readonly unqualifiedSearchRegistries?: readonly string[];
  readonly shortNameMode?: ShortNameMode;
  readonly aliases?: Readonly<Record<string, string>>;
  readonly credentialHelpers?: readonly string[];
}

/** The merged configuration. */
export interface RegistriesConf {
  /** Files read, in merge order. */
  readonly files: readonly string[];
  /** Unique by prefix, sorted by prefix (as containers/image keeps them). */
  readonly registries: readonly RegistryEntry[];
  /** Registries tried, in order, for short names (`nginx`); for the reference parser. */
  readonly unqualifiedSearchRegistries: readonly string[];
  readonly shortNameMode?: ShortNameMode;
  /** Short-name aliases (`[aliases]`), name → fully-qualified reference. */
  readonly aliases: Readonly<Record<string, string>>;
  readonly credentialHelpers?: readonly string[];
}

const PULL_FROM_MIRROR = new Set<string>(['all', 'digest-only', 'tag-only']);
const SHORT_NAME_MODES = new Set<string>(['enforcing', 'permissive', 'disabled']);
const LABEL = '(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])';
const HOSTNAME = `${LABEL}(?:\\.${LABEL})*`;
/** `host[:port]`, `[v6][:port]`: the reference grammar's domain. */
const DOMAIN = new RegExp(`^(?:${HOSTNAME}|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]+)?$`);
const WILDCARD_PREFIX = new RegExp(`^\\*\\.${HOSTNAME}$`);

/** Parses one registries.conf (v2, or v1 converted to v2) and checks it as containers/image does. */
export function parseRegistriesConf(text: string, file: string): RegistriesConfFile {
  const top = new TableReader(file, parseTomlFile(text, file), '');
  const v1 = top.subtable('registries');
  const v2Registries = top.tableArray('registry');
  const unqualified = top.stringArray('unqualified-search-registries');

  let registries: RegistryEntry[];
  let search = unqualified;
  if (v1 !== undefined && hasV1Content(v1)) {
    if ((v2Registries?.length ?? 0) > 0 || (unqualified?.length ?? 0) > 0) {
      throw new HostsConfigError(file, 'mixes version 1 ([registries.*]) and version 2 ([[registry]]) settings');
    }
    const converted = convertV1(v1);
    registries = converted.registries;
    search = converted.search;
  } else {
    registries = (v2Registries ?? []).map((t) => parseRegistry(t, file));
  }
  checkConflicts(registries, file);

  const result: { -readonly [K in keyof RegistriesConfFile]: RegistriesConfFile[K] } = {
    file,
    registries: uniqueSorted(registries),
  };
  if (search !== undefined) {
    result.unqualifiedSearchRegistries = search.map((s) => {
      const location = trimLocation(s);
      if (!DOMAIN.test(location)) {
        throw new HostsConfigError(
          file,
          `unqualified-search-registries entry ${JSON.stringify(s)} is not a host[:port]`,
        );
      }
      return location;
    });
  }
  const mode = top.string('short-name-mode');
  if (mode !== undefined && mode !== '') {
    if (!SHORT_NAME_MODES.has(mode)) top.error('short-name-mode', 'must be enforcing, permissive or disabled');
    result.shortNameMode = mode as ShortNameMode;
  }
  const aliases = top.subtable('aliases');
  if (aliases !== undefined) {
    const map: Record<string, string> = {};
    for (const name of Object.keys(aliases.table)) map[name] = aliases.string(name) ?? '';
    result.aliases = map;
  }
  const helpers = top.stringArray('credential-helpers');
  if (helpers !== undefined) result.credentialHelpers = helpers;
  return result;
}

function hasV1Content(v1: TableReader): boolean {
  return ['search', 'insecure', 'block'].some((k) => (v1.subtable(k)?.stringArray('registries')?.length ?? 0) > 0);
}

function convertV1(v1: TableReader): { registries: RegistryEntry[]; search: string[] } {
  const byLocation = new Map<string, { insecure: boolean; blocked: boolean }>();
  const touch = (raw: string, what: (e: { insecure: boolean; blocked: boolean }) => void) => {
    const location = parseLocation(v1, 'registries', raw);
    const entry = byLocation.get(location) ?? { insecure: false, blocked: false };
    what(entry);
    byLocation.set(location, entry);
  };
  for (const r of v1.subtable('block')?.stringArray('registries') ?? []) touch(r, (e) => (e.blocked = true));
  for (const r of v1.subtable('insecure')?.stringArray('registries') ?? []) touch(r, (e) => (e.insecure = true));
  const registries = [...byLocation].map(([location, flags]) => ({
    prefix: location,
    location,
    ...flags,
    mirrorByDigestOnly: false,
    mirrors: [],
    file: v1.file,
  }));
  return { registries, search: v1.subtable('search')?.stringArray('registries') ?? [] };
}

// containers/image's parseLocation: trailing slashes dropped, URI schemes refused.
function parseLocation(t: TableReader, key: string, input: string): string {
  const trimmed = trimLocation(input);
  if (/^https?:\/\//.test(trimmed)) t.error(key, `${JSON.stringify(input)}: URI schemes are not supported`);
  if (/\s/.test(trimmed)) t.error(key, `${JSON.stringify(input)} contains whitespace`);
  return trimmed;
}

function trimLocation(s: string): string {
  return s.replace(/\/+$/, '');
}

function parseRegistry(t: TableReader, file: string): RegistryEntry {
  const location = parseLocation(t, 'location', t.string('location') ?? '');
  let prefix = t.string('prefix') ?? '';
  if (prefix === '') {
    if (location === '') t.errorHere('has neither prefix nor location');
    prefix = location;
  } else {
    prefix = parseLocation(t, 'prefix', prefix);
    if (prefix.includes('*')) {
      if (!WILDCARD_PREFIX.test(prefix)) {
        t.error('prefix', `${JSON.stringify(prefix)}: a wildcard is only allowed as *.domain (no port or path)`);
      }
    } else if (location === '') {
      t.error('location', 'is unset and the prefix is not of the form *.example.com');
    }
  }
  checkDomain(t, 'prefix', prefix.startsWith('*.') ? prefix.slice(2) : prefix);
  if (location !== '') checkDomain(t, 'location', location);
  if (t.has('pull-from-mirror')) t.error('pull-from-mirror', 'is only for [[registry.mirror]], not the registry');

  const mirrorByDigestOnly = t.boolean('mirror-by-digest-only') ?? false;
  const mirrors = (t.tableArray('mirror') ?? []).map((m): MirrorEntry => {
    const mirrorLocation = parseLocation(m, 'location', m.string('location') ?? '');
    if (mirrorLocation === '') m.error('location', 'is unset');
    checkDomain(m, 'location', mirrorLocation);
    const pull = m.string('pull-from-mirror') ?? '';
    if (pull !== '') {
      if (!PULL_FROM_MIRROR.has(pull)) m.error('pull-from-mirror', 'must be all, digest-only or tag-only');
      if (mirrorByDigestOnly) {
        m.error('pull-from-mirror', 'cannot be set when the registry has mirror-by-digest-only = true');
      }
    }
    return {
      location: mirrorLocation,
      insecure: m.boolean('insecure') ?? false,
      pullFromMirror: mirrorByDigestOnly ? 'digest-only' : pull === '' ? 'all' : (pull as PullFromMirror),
      fallback: m.boolean('fallback') ?? true,
    };
  });
  return {
    prefix,
    location,
    insecure: t.boolean('insecure') ?? false,
    blocked: t.boolean('blocked') ?? false,
    mirrorByDigestOnly,
    mirrors,
    file,
  };
}

function checkDomain(t: TableReader, key: string, location: string): void {
  const domain = (location.split('/')[0] ?? '').replace(/@.*$/, '');
  if (!DOMAIN.test(domain)) t.error(key, `${JSON.stringify(location)} does not start with a registry host[:port]`);
}

// A registry named several times (to give several prefixes their own mirrors) must agree on
// `insecure` and `blocked`.
function checkConflicts(registries: readonly RegistryEntry[], file: string): void {
  const seen = new Map<string, RegistryEntry>();
  for (const r of registries) {
    const key = r.location === '' ? r.prefix : r.location;
    const other = seen.get(key);
    if (other === undefined) {
      seen.set(key, r);
      continue;
    }
    for (const flag of ['insecure', 'blocked'] as const) {
      if (other[flag] !== r[flag]) {
        throw new HostsConfigError(
          file,
          `registry ${JSON.stringify(key)} is defined several times with conflicting '${flag}'`,
        );
      }
    }
  }
}

// The first entry for a prefix wins (later ones could never match: longest prefix, first wins).
function uniqueSorted(registries: readonly RegistryEntry[]): RegistryEntry[] {
  const byPrefix = new Map<string, RegistryEntry>();
  for (const r of registries) if (!byPrefix.has(r.prefix)) byPrefix.set(r.prefix, r);
  return [...byPrefix.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
}

/**
 * Merges files in order (main file, then drop-ins): a later `[[registry]]` replaces one with the
 * same prefix; a later `unqualified-search-registries` (even empty), `short-name-mode` or
 * `credential-helpers` replaces the earlier one; aliases merge by name.
 */
export function mergeRegistriesConf(files: readonly RegistriesConfFile[]): RegistriesConf {
  const byPrefix = new Map<string, RegistryEntry>();
  let search: readonly string[] = [];
  let mode: ShortNameMode | undefined;
  let helpers: readonly string[] | undefined;
  const aliases: Record<string, string> = {};
  for (const f of files) {
    for (const r of f.registries) byPrefix.set(r.prefix, r);
    if (f.unqualifiedSearchRegistries !== undefined) search = f.unqualifiedSearchRegistries;
    if (f.shortNameMode !== undefined) mode = f.shortNameMode;
    if (f.credentialHelpers !== undefined) helpers = f.credentialHelpers;
    Object.assign(aliases, f.aliases ?? {});
  }
  return {
    files: files.map((f) => f.file),
    registries: uniqueSorted([...byPrefix.values()]),
    unqualifiedSearchRegistries: search,
    ...(mode !== undefined ? { shortNameMode: mode } : {}),
    aliases,
    ...(helpers !== undefined ? { credentialHelpers: helpers } : {}),
  };
}

export interface RegistriesConfPaths {
  /** The main file. */
  readonly file: string;
  /** Whether a missing main file is fine (true for the default locations). */
  readonly optional: boolean;
  /** Drop-in directories; their `*.conf` files are read in name order, directory by directory. */
  readonly dropInDirs: readonly string[];
}

/**
 * Where containers/image looks: `$CONTAINERS_REGISTRIES_CONF` alone if set; else
 * `~/.config/containers/registries.conf` (with only the per-user drop-in directory) if it
 * exists; else `/etc/containers/registries.conf` with the system and per-user drop-ins.
 */
export async function defaultRegistriesConfPaths(
  env: Readonly<Record<string, string | undefined>> = process.env,
  home: string = homedir(),
): Promise<RegistriesConfPaths> {
  const userFile = join(home, '.config/containers/registries.conf');
  const userDropIns = join(home, '.config/containers/registries.conf.d');
  const systemDropIns = '/etc/containers/registries.conf.d';
  const explicit = env['CONTAINERS_REGISTRIES_CONF'];
  if (explicit) return { file: explicit, optional: false, dropInDirs: [systemDropIns, userDropIns] };
  if ((await readConfigFile(userFile, true)) !== undefined) {
    return { file: userFile, optional: true, dropInDirs: [userDropIns] };
  }
  return { file: '/etc/containers/registries.conf', optional: true, dropInDirs: [systemDropIns, userDropIns] };
}

/** Reads and merges the main file and its drop-ins. */
export async function loadRegistriesConf(paths: RegistriesConfPaths): Promise<RegistriesConf> {
  const files: RegistriesConfFile[] = [];
  const main = await readConfigFile(paths.file, paths.optional);
  if (main !== undefined) files.push(parseRegistriesConf(main, paths.file));
  for (const dir of paths.dropInDirs) {
    let names: string[];
    try {
      names = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => !e.isDirectory() && e.name.endsWith('.conf'))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new HostsConfigError(dir, `cannot list: ${code ?? String(err)}`, { cause: err });
    }
    for (const name of names) {
      const file = join(dir, name);
      const text = await readConfigFile(file, true);
      if (text !== undefined) files.push(parseRegistriesConf(text, file));
    }
  }
  return mergeRegistriesConf(files);
}

/**
 * Where `ref` (`domain/path[:tag][@digest]`) matches `prefix`: the length of `ref` covered by
 * the prefix, or -1. A host-only prefix matches at a `/` boundary only; a prefix with a path also
 * at `:` (tag) and `@` (digest). `*.example.com` matches any subdomain (`a.example.com`,
 * `a.b.example.com:5000`), never `example.com` itself.
 */
export function prefixMatchLength(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1);
    const hostEnd = ref.search(/[/@]/);
    const host = hostEnd === -1 ? ref : ref.slice(0, hostEnd);
    const hostname = host.replace(/:[0-9]+$/, '');
    if (hostname.length <= suffix.length || !hostname.endsWith(suffix)) return -1;
    // The port belongs to the matched host, so a rewrite never carries it to another host.
    return host.length;
  }
  if (ref === prefix) return prefix.length;
  if (!ref.startsWith(prefix)) return -1;
  const next = ref[prefix.length];
  if (next === '/') return prefix.length;
  if ((next === ':' || next === '@') && prefix.includes('/')) return prefix.length;
  return -1;
}

/** The entry with the longest matching prefix (containers/image's FindRegistry). */
export function findRegistry(conf: RegistriesConf, ref: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  for (const r of conf.registries) {
    if (prefixMatchLength(ref, r.prefix) !== -1 && (best === undefined || r.prefix.length > best.prefix.length))
      best = r;
  }
  return best;
}

/** One place to pull from, with the repository as it is named there. */
export interface PullSource {
  readonly domain: string;
  readonly path: string;
  readonly insecure: boolean;
  readonly mirror: boolean;
  /** Only for pulls by digest (pull-from-mirror = digest-only, or mirror-by-digest-only). */
  readonly digestOnly: boolean;
  readonly fallback: boolean;
  readonly source: string;
}

/**
 * The pull sources registries.conf gives for a repository: usable mirrors in order, then the
 * registry's location, each with the repository rewritten from the prefix to its location.
 * Undefined when no `[[registry]]` matches. Throws RegistryBlockedError for a blocked registry.
 */
export function registriesConfSources(
  conf: RegistriesConf,
  repository: RepositoryName,
  pull: PullKind,
): { readonly entry: RegistryEntry; readonly sources: readonly PullSource[] } | undefined {
  const name = `${repository.domain}/${repository.path}`;
  const ref =
    name + (pull.tag !== undefined ? `:${pull.tag}` : '') + (pull.digest !== undefined ? `@${pull.digest}` : '');
  const entry = findRegistry(conf, ref);
  if (entry === undefined) return undefined;
  if (entry.blocked) throw new RegistryBlockedError(name, entry.prefix, entry.file);

  const matched = prefixMatchLength(ref, entry.prefix);
  const rest = ref.slice(matched);
  const rewrite = (location: string, what: string): { domain: string; path: string } => {
    if (location === '') return { domain: repository.domain, path: repository.path };
    const parsed = splitReference(location + rest);
    if (parsed === undefined || parsed.path === '') {
      throw new HostsConfigError(
        entry.file,
        `${what} ${JSON.stringify(location)} turns ${ref} into an invalid reference`,
      );
    }
    if (parsed.tag !== pull.tag || parsed.digest !== pull.digest) {
      throw new HostsConfigError(
        entry.file,
        `${what} ${JSON.stringify(location)} would change the tag or digest of ${ref}`,
      );
    }
    return { domain: parsed.domain, path: parsed.path };
  };
  const where = `${entry.file} [[registry]] prefix=${JSON.stringify(entry.prefix)}`;

  const sources: PullSource[] = [];
  for (const m of entry.mirrors) {
    if (m.pullFromMirror === 'digest-only' && !pull.byDigest) continue;
    if (m.pullFromMirror === 'tag-only' && pull.byDigest) continue;
    sources.push({
      ...rewrite(m.location, 'mirror location'),
      insecure: m.insecure,
      mirror: true,
      digestOnly: m.pullFromMirror === 'digest-only',
      fallback: m.fallback,
      source: `${where} mirror ${JSON.stringify(m.location)}`,
    });
  }
  sources.push({
    ...rewrite(entry.location, 'location'),
    insecure: entry.insecure,
    mirror: false,
    digestOnly: false,
    fallback: true,
    source: where,
  });
  return { entry, sources };
}

/** Splits `domain/path[:tag][@digest]`, normalising Docker Hub (`library/` for one component). */
function splitReference(ref: string): { domain: string; path: string; tag?: string; digest?: string } | undefined {
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at !== -1) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/') && name.includes('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  const slash = name.indexOf('/');
  if (slash <= 0) return undefined;
  let domain = name.slice(0, slash);
  let path = name.slice(slash + 1);
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && path !== '' && !path.includes('/')) path = `library/${path}`;
  return {
    domain,
    path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}
