/**
 * Docker `config.json` and containers `auth.json` as the registry client reads them
 * (docs/semantics.md registry §7): per file, `credHelpers[host]` > `credsStore` > `auths`. Keys are
 * normalised (scheme and a leading `/v1/` or `/v2/` stripped, host lowercased, Docker Hub's
 * `index.docker.io` and `registry-1.docker.io` folded into `docker.io`), and a key may name a
 * namespace (`host/ns/repo`, as auth.json allows): the most specific namespace wins. Matching is
 * exact per host (Docker's rule), unlike the kubelet keyring's globs. Pure: text in, decisions out.
 */
import { BasicCredential, IdentityTokenCredential, RegistryTokenCredential, type Credential } from './credential.ts';
import { DockerConfigError } from './errors.ts';
import { decodeGoBase64 } from './go-base64.ts';
import { InputProblem, isJsonObject, jsonTypeName, parseJsonQuietly, readField, readStringFields } from './go-json.ts';

export const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/';

/** One `auths` entry: its credential, nothing (an empty entry), or why it cannot be used. */
export interface DockerAuthEntry {
  readonly key: string;
  readonly normalizedKey: string;
  readonly credential: Credential | undefined;
  /** Set for an entry that is malformed; raised only when the entry is the one selected. */
  readonly error: DockerConfigError | undefined;
}

export interface DockerConfigFile {
  readonly path: string;
  readonly auths: readonly DockerAuthEntry[];
  readonly credHelpers: ReadonlyArray<{
    readonly key: string;
    readonly normalizedKey: string;
    readonly helper: string;
  }>;
  readonly credsStore: string | undefined;
}

/** The registry actually contacted (a mirror is its own host) and, optionally, the repository. */
export interface RegistryTarget {
  /** `host[:port]`, e.g. `registry-1.docker.io`, `mirror.local:5000`. */
  readonly host: string;
  /** Repository path without the host, e.g. `library/nginx`, for namespace keys. */
  readonly repository?: string;
}

export type DockerConfigResolution =
  | { readonly kind: 'helper'; readonly helper: string; readonly serverURL: string; readonly key: string | undefined }
  | { readonly kind: 'credential'; readonly key: string; readonly credential: Credential }
  | { readonly kind: 'none' };

/**
 * Parses a config.json/auth.json text. Unusable JSON or wrong top-level types throw a
 * DockerConfigError naming the file; a bad entry is kept with its error (see DockerAuthEntry).
 */
export function parseDockerConfigFile(text: string, path: string): DockerConfigFile {
  let document: unknown;
  try {
    document = parseJsonQuietly(text, 'the file');
  } catch (err) {
    if (err instanceof InputProblem) throw new DockerConfigError(path, err.message);
    throw err;
  }
  if (document === null) return { path, auths: [], credHelpers: [], credsStore: undefined };
  if (!isJsonObject(document)) throw new DockerConfigError(path, `expected an object, found ${jsonTypeName(document)}`);

  const auths: DockerAuthEntry[] = [];
  const authsValue = readField(document, 'auths');
  if (authsValue !== undefined && authsValue !== null) {
    if (!isJsonObject(authsValue))
      throw new DockerConfigError(path, `auths: expected an object, found ${jsonTypeName(authsValue)}`);
    for (const [key, value] of Object.entries(authsValue)) auths.push(decodeAuthEntry(path, key, value));
  }

  const credHelpers: { key: string; normalizedKey: string; helper: string }[] = [];
  const helpersValue = readField(document, 'credHelpers');
  if (helpersValue !== undefined && helpersValue !== null) {
    if (!isJsonObject(helpersValue)) {
      throw new DockerConfigError(path, `credHelpers: expected an object, found ${jsonTypeName(helpersValue)}`);
    }
    for (const [key, helper] of Object.entries(helpersValue)) {
      if (typeof helper !== 'string') {
        throw new DockerConfigError(path, `credHelpers value: expected a string, found ${jsonTypeName(helper)}`, key);
      }
      if (helper !== '') credHelpers.push({ key, normalizedKey: normalizeAuthKey(key), helper });
    }
  }

  const store = readField(document, 'credsStore');
  if (store !== undefined && store !== null && typeof store !== 'string') {
    throw new DockerConfigError(path, `credsStore: expected a string, found ${jsonTypeName(store)}`);
  }
  return { path, auths, credHelpers, credsStore: typeof store === 'string' && store !== '' ? store : undefined };
}

function decodeAuthEntry(path: string, key: string, value: unknown): DockerAuthEntry {
  const normalizedKey = normalizeAuthKey(key);
  try {
    return { key, normalizedKey, credential: decodeDockerAuth(value), error: undefined };
  } catch (err) {
    if (!(err instanceof InputProblem)) throw err;
    return { key, normalizedKey, credential: undefined, error: new DockerConfigError(path, err.message, key) };
  }
}

/**
 * A Docker `AuthConfig` entry as a credential: `registrytoken` > `identitytoken` > `auth`
 * (base64 `user:password`) > `username`/`password`. Undefined for an entry with none of them.
 */
function decodeDockerAuth(value: unknown): Credential | undefined {
  if (value === null) return undefined;
  if (!isJsonObject(value)) throw new InputProblem(`expected an object, found ${jsonTypeName(value)}`);
  const fields = readStringFields(
    value,
    ['username', 'password', 'auth', 'email', 'identitytoken', 'registrytoken'],
    '',
  );
  let username = fields.username ?? '';
  let password = fields.password ?? '';
  if (fields.auth !== undefined && fields.auth !== '') {
    const decoded = decodeGoBase64(fields.auth, fields.auth.trim().endsWith('='));
    if (!decoded.ok) throw new InputProblem(`auth: not valid base64 (illegal data at input byte ${decoded.offset})`);
    const text = decoded.bytes.toString('utf8');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new InputProblem('auth: must be base64 of "username:password" with a non-empty username');
    username = text.slice(0, colon);
    password = text.slice(colon + 1).replace(/\0+$/, '');
  }
  if (fields.registrytoken !== undefined && fields.registrytoken !== '')
    return new RegistryTokenCredential(fields.registrytoken);
  if (fields.identitytoken !== undefined && fields.identitytoken !== '')
    return new IdentityTokenCredential(fields.identitytoken, username);
  if (username === '' && password === '') return undefined;
  return new BasicCredential(username, password, fields.email ?? '');
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** `docker.io` for any Docker Hub host name, else the host lowercased. */
export function normalizeRegistryHost(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_HOSTS.has(lower) ? 'docker.io' : lower;
}

/**
 * A config key as `host[/namespace]`: scheme dropped, a leading `/v1` or `/v2` path segment and
 * trailing slashes removed, host normalised. `https://index.docker.io/v1/` → `docker.io`.
 */
export function normalizeAuthKey(key: string): string {
  let rest = key.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '');
  rest = rest.replace(/[?#].*$/, '');
  const slash = rest.indexOf('/');
  const host = slash < 0 ? rest : rest.slice(0, slash);
  let path = slash < 0 ? '' : rest.slice(slash);
  path = path.replace(/^\/v[12](?=\/|$)/, '').replace(/\/+$/, '');
  return normalizeRegistryHost(host) + path;
}

/** The server URL a credential helper is asked about: Docker's Hub key, else the host. */
export function helperServerURL(host: string): string {
  return normalizeRegistryHost(host) === 'docker.io' ? DOCKER_HUB_SERVER_URL : host;
}

/** Candidate keys for a target, most specific first: `host/a/b`, `host/a`, `host`. */
export function candidateKeys(target: RegistryTarget): string[] {
  const host = normalizeRegistryHost(target.host);
  const segments = (target.repository ?? '').split('/').filter((segment) => segment !== '');
  const keys: string[] = [];
  for (let n = segments.length; n > 0; n--) keys.push(`${host}/${segments.slice(0, n).join('/')}`);
  keys.push(host);
  return keys;
}

/**
 * What one file says for a target: a helper to run, a stored credential, or nothing. Throws the
 * entry's DockerConfigError when the most specific matching entry is malformed.
 */
export function resolveInDockerConfig(file: DockerConfigFile, target: RegistryTarget): DockerConfigResolution {
  const candidates = candidateKeys(target);
  const serverURL = helperServerURL(target.host);
  for (const candidate of candidates) {
    const helper = preferExact(
      file.credHelpers.filter((entry) => entry.normalizedKey === candidate),
      candidate,
    );
    if (helper !== undefined) return { kind: 'helper', helper: helper.helper, serverURL, key: helper.key };
  }
  if (file.credsStore !== undefined) return { kind: 'helper', helper: file.credsStore, serverURL, key: undefined };
  for (const candidate of candidates) {
    const entries = file.auths.filter(
      (entry) => entry.normalizedKey === candidate && (entry.credential !== undefined || entry.error !== undefined),
    );
    const entry = preferExact(entries, candidate);
    if (entry === undefined) continue;
    if (entry.error !== undefined) throw entry.error;
    if (entry.credential !== undefined) return { kind: 'credential', key: entry.key, credential: entry.credential };
  }
  return { kind: 'none' };
}

/** Among keys normalising alike, the one written exactly as the candidate, else the first. */
function preferExact<T extends { readonly key: string }>(entries: readonly T[], candidate: string): T | undefined {
  return entries.find((entry) => entry.key === candidate) ?? entries[0];
}
