/**
 * containerd's registry host configuration (`config_path`, docs/hosts.md): one directory per
 * registry host under each root, holding `hosts.toml` or, failing that, Docker-style certificate
 * files (`*.crt` CAs, `*.cert` + `*.key` client pairs); `_default` applies to hosts without
 * their own directory.
 *
 * Differences from containerd, each the safer or clearer choice:
 * - a malformed hosts.toml is an error naming the file and line (containerd logs it and silently
 *   falls back to certificate files, dropping the mirrors);
 * - `ns=<registry>` is sent only to hosts marked `ns_query = true` (containerd sends it to every
 *   host that is not the registry);
 * - `fallback = false` on a host stops at that host (containerd always goes on to the next);
 * - credentials in URLs (`https://user:pass@mirror`) are refused.
 * `ns_query` and `fallback` are kimg extensions: containerd ignores keys it does not know.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, posix, resolve } from 'node:path';
import {
  containerdHostDirNames,
  defaultApiHost,
  isInsecureByRule,
  isOtherHost,
  splitHostPort,
  type InsecureHostRule,
} from './address.ts';
import { HostsConfigError } from './errors.ts';
import { TableReader, isTable, parseTomlFile, readConfigFile } from './toml.ts';
import { ALL_CAPABILITIES, type Capability, type ClientCertificate, type RegistryHost } from './types.ts';

/** One host as configured, before the registry's defaults are filled in. */
export interface HostSpec {
  /** Where it was configured, e.g. `/etc/containerd/certs.d/docker.io/hosts.toml [host."https://m"]`. */
  readonly source: string;
  /** From `[host."…"]` or `server`; absent for the root entry without `server`. */
  readonly server?: { readonly scheme: 'http' | 'https'; readonly host: string; readonly path: string };
  /** Absent: all capabilities. */
  readonly capabilities?: readonly Capability[];
  readonly caFiles?: readonly string[];
  readonly clientCerts?: readonly ClientCertificate[];
  readonly skipVerify?: boolean;
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly dialTimeoutMs?: number;
  readonly proxy?: string;
  /** kimg extension: `fallback = false` makes a failure at this host final. */
  readonly fallback?: boolean;
  /** kimg extension: `ns_query = true` marks a proxy that wants `?ns=<registry>`. */
  readonly namespaceQuery?: boolean;
}

/** A host directory: its hosts in order, the root (`server`, or the registry itself) last. */
export interface HostsDirConfig {
  readonly dir: string;
  /** The hosts.toml read; absent when the directory only holds certificate files. */
  readonly file?: string;
  readonly hosts: readonly HostSpec[];
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CAPABILITIES = new Set<string>(ALL_CAPABILITIES);

/** Parses a hosts.toml; relative paths resolve against `dir` (the file's directory). */
export function parseHostsToml(text: string, file: string, dir: string): HostsDirConfig {
  const top = new TableReader(file, parseTomlFile(text, file), '');
  const hosts: HostSpec[] = [];
  const hostTable = top.subtable('host');
  if (hostTable !== undefined) {
    // Table order is file order (first appearance), which is the order to try them in.
    for (const name of Object.keys(hostTable.table)) {
      const table = hostTable.table[name];
      // The key is a URL: never echo credentials someone put in it.
      const where = `host.${JSON.stringify(redactUrl(name))}`;
      if (!isTable(table)) throw new HostsConfigError(file, `${where} must be a table`);
      const entry = new TableReader(file, table, where);
      hosts.push(parseHostEntry(entry, name, dir, `${file} [${where}]`));
    }
  }
  const server = top.string('server');
  hosts.push(parseHostEntry(top, server === '' ? undefined : server, dir, server ? `${file} server` : file));
  return { dir, file, hosts };
}

function parseHostEntry(t: TableReader, server: string | undefined, dir: string, source: string): HostSpec {
  const overridePath = t.boolean('override_path') ?? false;
  const spec: {
    -readonly [K in keyof HostSpec]: HostSpec[K];
  } = { source, headers: parseHeaders(t) };
  if (server !== undefined) {
    // The server is the table's own key for [host."…"], the `server` key at the top.
    const fail = (problem: string): never => (t.where === '' ? t.error('server', problem) : t.errorHere(problem));
    spec.server = parseServer(fail, server, overridePath);
  }

  const capabilities = t.stringArray('capabilities');
  if (capabilities !== undefined && capabilities.length > 0) {
    const set = new Set<Capability>();
    for (const c of capabilities) {
      const lower = c.toLowerCase();
      if (!CAPABILITIES.has(lower)) t.error('capabilities', `has unknown capability ${JSON.stringify(c)}`);
      set.add(lower as Capability);
    }
    spec.capabilities = ALL_CAPABILITIES.filter((c) => set.has(c));
  }
  const ca = t.stringOrArray('ca');
  if (ca !== undefined) spec.caFiles = ca.map((p) => absolute(p, dir));
  const client = parseClient(t, dir);
  if (client !== undefined) spec.clientCerts = client;
  const skipVerify = t.boolean('skip_verify');
  if (skipVerify !== undefined) spec.skipVerify = skipVerify;
  const dialTimeout = t.string('dial_timeout');
  if (dialTimeout !== undefined && dialTimeout !== '') {
    const ms = parseGoDuration(dialTimeout);
    if (ms === undefined || ms <= 0)
      t.error('dial_timeout', `is not a positive duration: ${JSON.stringify(dialTimeout)}`);
    spec.dialTimeoutMs = ms;
  }
  const proxy = t.string('proxy');
  if (proxy !== undefined && proxy !== '') spec.proxy = validateProxy(t, proxy);
  const fallback = t.boolean('fallback');
  if (fallback !== undefined) spec.fallback = fallback;
  const nsQuery = t.boolean('ns_query');
  if (nsQuery !== undefined) spec.namespaceQuery = nsQuery;
  return spec;
}

function parseServer(
  fail: (problem: string) => never,
  server: string,
  overridePath: boolean,
): NonNullable<HostSpec['server']> {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(server) ? server : `https://${server}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return fail(`is not a URL: ${JSON.stringify(redactUrl(server))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return fail(`must be http:// or https://, not ${url.protocol}//`);
  if (url.username !== '' || url.password !== '')
    return fail('must not contain credentials (use a Docker config or credential helper)');
  if (url.search !== '' || url.hash !== '') return fail('must not have a query or fragment');
  // The authority as written: WHATWG URL drops default ports (`:80`), which containerd keeps and
  // which decide plain HTTP vs HTTPS-with-fallback below.
  const host = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(withScheme)?.[1] ?? '';
  if (host === '' || url.host === '') return fail('has no host');
  let path = url.pathname === '/' ? '' : posix.normalize(url.pathname).replace(/\/+$/, '');
  if (!overridePath && !path.endsWith('/v2')) path += '/v2';
  return { scheme: url.protocol === 'http:' ? 'http' : 'https', host, path };
}

function parseHeaders(t: TableReader): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  const table = t.subtable('header');
  if (table === undefined) return headers;
  for (const name of Object.keys(table.table)) {
    if (!HEADER_NAME.test(name)) table.error(name, 'is not a valid header name');
    const values = table.stringOrArray(name) ?? [];
    // Values are not echoed: headers configured here often carry tokens.
    if (values.some((v) => /[\r\n\0]/.test(v))) table.error(name, 'has a value with a line break or NUL');
    headers[name] = values;
  }
  return headers;
}

// client = "a.pem" | ["a.pem", "b.pem"] | [["a.cert", "a.key"], ["b.pem", ""]]
function parseClient(t: TableReader, dir: string): ClientCertificate[] | undefined {
  const v = t.raw('client');
  if (v === undefined) return undefined;
  const one = (cert: string, key?: string): ClientCertificate =>
    key === undefined || key === ''
      ? { certFile: absolute(cert, dir) }
      : { certFile: absolute(cert, dir), keyFile: absolute(key, dir) };
  if (typeof v === 'string') return [one(v)];
  if (!Array.isArray(v))
    return t.error('client', 'must be a path, an array of paths, or an array of [cert, key] pairs');
  return v.map((item) => {
    if (typeof item === 'string') return one(item);
    if (Array.isArray(item) && item.length === 2 && typeof item[0] === 'string' && typeof item[1] === 'string') {
      return one(item[0], item[1]);
    }
    return t.error('client', 'must be a path, an array of paths, or an array of [cert, key] pairs');
  });
}

function validateProxy(t: TableReader, proxy: string): string {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    return t.error('proxy', `is not an absolute URL: ${JSON.stringify(redactUrl(proxy))}`);
  }
  if (!['http:', 'https:', 'socks5:', 'socks5h:'].includes(url.protocol)) {
    t.error('proxy', `must use http, https, socks5 or socks5h, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.host === '') t.error('proxy', 'has no host');
  if (!['', '/'].includes(url.pathname) || url.search !== '' || url.hash !== '') {
    t.error('proxy', 'must not have a path, query or fragment');
  }
  return proxy;
}

/** `user:pass@` removed, for messages. */
export function redactUrl(s: string): string {
  return s.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1***@');
}

function absolute(p: string, dir: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's `time.ParseDuration` (`1s`, `1.5s`, `1m30s`, `300ms`) in milliseconds. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    end = re.lastIndex;
  }
  return end === s.length && end > 0 && Number.isFinite(total) ? total : undefined;
}

/**
 * A directory without hosts.toml: Docker's certificate layout. `*.crt` are CAs, `x.cert` a
 * client certificate with `x.key` its key when present. `names` is the directory listing.
 */
export function certFilesHostSpec(dir: string, names: readonly string[]): HostSpec {
  const sorted = [...names].sort();
  const present = new Set(sorted);
  const caFiles = sorted.filter((n) => n.endsWith('.crt')).map((n) => join(dir, n));
  const clientCerts = sorted
    .filter((n) => n.endsWith('.cert'))
    .map((n): ClientCertificate => {
      const key = `${n.slice(0, -'.cert'.length)}.key`;
      return present.has(key) ? { certFile: join(dir, n), keyFile: join(dir, key) } : { certFile: join(dir, n) };
    });
  return {
    source: `${dir} (certificate files)`,
    headers: {},
    ...(caFiles.length > 0 ? { caFiles } : {}),
    ...(clientCerts.length > 0 ? { clientCerts } : {}),
  };
}

/** Reads one host directory: hosts.toml, else its certificate files. */
export async function loadHostsDir(dir: string): Promise<HostsDirConfig> {
  const file = join(dir, 'hosts.toml');
  const text = await readConfigFile(file, true);
  if (text !== undefined && text.length > 0) return parseHostsToml(text, file, dir);
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
    throw new HostsConfigError(dir, `cannot list: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  });
  return {
    dir,
    hosts: [
      certFilesHostSpec(
        dir,
        entries.filter((e) => !e.isDirectory()).map((e) => e.name),
      ),
    ],
  };
}

/** Host directories read from `config_path` roots; an unreadable directory keeps its error. */
export interface ContainerdHosts {
  readonly roots: readonly {
    readonly root: string;
    readonly dirs: ReadonlyMap<string, HostsDirConfig | HostsConfigError>;
  }[];
}

/**
 * Reads every host directory under the roots (containerd's `config_path`, which may be a
 * `:`-separated list such as `/etc/containerd/certs.d:/etc/docker/certs.d`). Missing roots are
 * skipped. A broken hosts.toml fails only the registries that use it (see findHostsDir).
 */
export async function loadContainerdHosts(configPath: string | readonly string[]): Promise<ContainerdHosts> {
  const roots = (typeof configPath === 'string' ? configPath.split(delimiter) : configPath).filter((r) => r !== '');
  const loaded: { root: string; dirs: Map<string, HostsDirConfig | HostsConfigError> }[] = [];
  for (const root of roots) {
    let entries: Dirent[];
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new HostsConfigError(root, `cannot list: ${code ?? String(err)}`, { cause: err });
    }
    const dirs = new Map<string, HostsDirConfig | HostsConfigError>();
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const dir = join(root, entry.name);
      if (!entry.isDirectory() && !(entry.isSymbolicLink() && (await isDirectory(dir)))) continue;
      try {
        dirs.set(entry.name, await loadHostsDir(dir));
      } catch (err) {
        if (!(err instanceof HostsConfigError)) throw err;
        dirs.set(entry.name, err);
      }
    }
    loaded.push({ root, dirs });
  }
  return { roots: loaded };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The host directory containerd would use for `host`: per root in order, `host_port_`,
 * `host:port`, `_default`; the first that exists wins. Throws the stored error if that
 * directory's hosts.toml is broken.
 */
export function findHostsDir(hosts: ContainerdHosts, host: string): HostsDirConfig | undefined {
  for (const { dirs } of hosts.roots) {
    for (const name of containerdHostDirNames(host)) {
      const found = dirs.get(name);
      if (found instanceof HostsConfigError) throw found;
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Which registries without a configured scheme may be insecure (see InsecureHostRule). */
export type ContainerdHostsOptions = InsecureHostRule;

/**
 * The ordered hosts for registry `domain` (`host[:port]` as in the reference) from its host
 * directory (or none): configured hosts in file order, then `server`, or the registry itself
 * (`docker.io` → `https://registry-1.docker.io`) when there is no `server`.
 */
export function containerdRegistryHosts(
  domain: string,
  config: HostsDirConfig | undefined,
  options: ContainerdHostsOptions = {},
): RegistryHost[] {
  const specs = config?.hosts ?? [{ source: 'default', headers: {} }];
  return specs.map((spec, i) => {
    const isRoot = i === specs.length - 1;
    if (isRoot && spec.server === undefined) return defaultHost(domain, spec, options);
    if (spec.server === undefined) throw new Error('unreachable: only the root entry lacks a server');
    const { scheme, host, path } = spec.server;
    return buildRegistryHost(domain, spec, scheme, host, path, spec.capabilities ?? ALL_CAPABILITIES, spec.skipVerify);
  });
}

// containerd's default host: the registry itself over https, or as registryItself says for
// loopback and named insecure registries.
function defaultHost(domain: string, spec: HostSpec, rule: InsecureHostRule): RegistryHost {
  const source = spec.source === 'default' ? 'default' : `${spec.source} (no server: the registry itself)`;
  return registryItself(domain, defaultApiHost(domain), { ...spec, source }, ALL_CAPABILITIES, rule);
}

/**
 * The registry host contacted without a configured scheme: https, except hosts the insecure-host
 * rule covers (loopback, `insecureRegistries`), which follow containerd/ctr (no port or 443 →
 * https without verification; 80 → plain http; any other port → https without verification,
 * falling back to plain http when the server answers TLS with HTTP).
 */
export function registryItself(
  domain: string,
  host: string,
  spec: HostSpec,
  capabilities: readonly Capability[],
  rule: InsecureHostRule,
): RegistryHost {
  if (isInsecureByRule(host, domain, rule)) {
    const { port } = splitHostPort(host);
    if (port === '80') return buildRegistryHost(domain, spec, 'http', host, '/v2', capabilities, spec.skipVerify);
    const scheme = port === undefined || port === '443' ? 'https' : 'http';
    return buildRegistryHost(domain, spec, scheme, host, '/v2', capabilities, true);
  }
  return buildRegistryHost(domain, spec, 'https', host, '/v2', capabilities, spec.skipVerify);
}

/** A RegistryHost from its parts, applying containerd's rule for http:// hosts with TLS settings. */
export function buildRegistryHost(
  domain: string,
  spec: HostSpec,
  configuredScheme: 'http' | 'https',
  host: string,
  pathPrefix: string,
  capabilities: readonly Capability[],
  skipVerify: boolean | undefined,
): RegistryHost {
  // An http:// host that also has TLS settings, on a port other than 80, is tried over HTTPS
  // first with a fallback to plain HTTP (containerd's rule for ambiguous ports).
  const explicitTls = spec.caFiles !== undefined || spec.clientCerts !== undefined || skipVerify !== undefined;
  const httpFallback = configuredScheme === 'http' && explicitTls && splitHostPort(host).port !== '80';
  const scheme = httpFallback ? 'https' : configuredScheme;
  const isMirror = isOtherHost(host, domain);
  return {
    url: `${scheme}://${host}`,
    host,
    pathPrefix,
    capabilities,
    tls: { caFiles: spec.caFiles ?? [], skipVerify: skipVerify ?? false, clientCerts: spec.clientCerts ?? [] },
    headers: spec.headers,
    insecure: scheme === 'http' || httpFallback,
    httpFallback,
    isMirror,
    namespaceQuery: isMirror && spec.namespaceQuery === true,
    fallback: spec.fallback ?? true,
    ...(spec.dialTimeoutMs !== undefined ? { dialTimeoutMs: spec.dialTimeoutMs } : {}),
    ...(spec.proxy !== undefined ? { proxy: spec.proxy } : {}),
    source: spec.source,
  };
}
