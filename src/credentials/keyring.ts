/**
 * The kubelet keyring (docs/semantics.md kubelet §6, `pkg/credentialprovider/keyring.go`): credentials indexed
 * by registry key, matched against an image's normalized repository with host-label globs, exact
 * ports and plain string path prefixes, most specific key first, with the Docker Hub fallback.
 * Pure: callers feed it decoded documents; file and process I/O live elsewhere.
 */
import type { BasicCredential } from './credential.ts';
import { credentialHash } from './credential-hash.ts';
import { goPathMatch } from './go-glob.ts';
import { parseGoUrl, parseSchemelessUrl, splitHostPort } from './go-url.ts';
import type { KubeletDockerConfig } from './kubelet-config.ts';

/** Where a credential came from, for `explain`, logs and KEP-2535 records. */
export type CredentialOrigin =
  | { readonly kind: 'secret'; readonly namespace: string; readonly name: string; readonly uid: string }
  | { readonly kind: 'node'; readonly path: string }
  | { readonly kind: 'plugin'; readonly provider: string }
  /** A plugin in service-account token mode, run with this account's token. */
  | {
      readonly kind: 'serviceAccount';
      readonly namespace: string;
      readonly name: string;
      readonly uid: string;
      readonly provider: string;
    }
  | { readonly kind: 'dockerConfig'; readonly path: string; readonly helper?: string }
  | { readonly kind: 'explicit' };

/** A short human label: `secret default/regcred`, `plugin ecr-credential-provider`, … */
export function describeSource(source: CredentialOrigin): string {
  switch (source.kind) {
    case 'secret':
      return `secret ${source.namespace}/${source.name}`;
    case 'node':
      return `node config ${source.path}`;
    case 'plugin':
      return `credential provider ${source.provider}`;
    case 'serviceAccount':
      return `credential provider ${source.provider} for service account ${source.namespace}/${source.name}`;
    case 'dockerConfig':
      return source.helper === undefined
        ? `docker config ${source.path}`
        : `credential helper docker-credential-${source.helper} (from ${source.path})`;
    case 'explicit':
      return 'explicit credentials';
  }
}

/** One credential that applies to an image, in the order the kubelet would try it. */
export interface KeyringMatch {
  readonly credential: BasicCredential;
  readonly source: CredentialOrigin;
  readonly sourceLabel: string;
  /** The index key that matched, e.g. `quay.io/coreos`, `*.example.com:5000`, `index.docker.io`. */
  readonly key: string;
  /** The kubelet's credentialHash of this credential (docs/semantics.md kubelet §10). */
  readonly hash: string;
  /** True when no key matched and the Docker Hub credentials were used for a Hub image. */
  readonly viaDockerHubFallback: boolean;
}

/** A normalized repository without tag or digest: `docker.io/library/nginx` or its parts. */
export type ImageName = string | { readonly domain: string; readonly path: string };

export function imageNameString(image: ImageName): string {
  if (typeof image === 'string') return image;
  return image.path === '' ? image.domain : `${image.domain}/${image.path}`;
}

const DOCKER_HUB_INDEX_KEY = 'index.docker.io';

interface Tracked {
  readonly credential: BasicCredential;
  readonly source: CredentialOrigin;
  readonly hash: string;
}

/**
 * The kubelet keyring: credentials indexed by registry key and matched against an image's
 * normalized repository (host-label globs, exact ports, path prefixes, most specific key first,
 * with the Docker Hub fallback). `lookup(image)` returns every matching credential in the order
 * the kubelet tries them. Pure: callers add decoded documents; no file or process I/O.
 */
export class Keyring {
  /** Distinct index keys in reverse byte order, so `quay.io/coreos` precedes `quay.io`. */
  #index: string[] = [];
  readonly #credentials = new Map<string, Tracked[]>();

  /** Adds every entry of one document; unparseable keys are skipped, as the kubelet does. */
  add(source: CredentialOrigin, config: KubeletDockerConfig): this {
    for (const [configKey, credential] of config) {
      const key = indexKey(configKey);
      if (key === undefined) continue;
      const tracked: Tracked = { credential, source, hash: credentialHash(credential) };
      const list = this.#credentials.get(key);
      if (list === undefined) {
        this.#credentials.set(key, [tracked]);
        this.#index.push(key);
      } else {
        list.push(tracked);
      }
    }
    this.#index.sort(compareUtf8).reverse();
    return this;
  }

  /** Index keys in match order. */
  get keys(): readonly string[] {
    return [...this.#index];
  }

  get isEmpty(): boolean {
    return this.#index.length === 0;
  }

  /** Every credential whose key matches, in index order; else the Docker Hub fallback. */
  lookup(image: ImageName): KeyringMatch[] {
    const target = imageNameString(image);
    const matches: KeyringMatch[] = [];
    for (const key of this.#index) {
      if (!urlsMatch(key, target)) continue;
      for (const tracked of this.#credentials.get(key) ?? []) matches.push(toMatch(key, tracked, false));
    }
    if (matches.length > 0 || !isDockerHubFallbackTarget(target)) return matches;
    return (this.#credentials.get(DOCKER_HUB_INDEX_KEY) ?? []).map((tracked) =>
      toMatch(DOCKER_HUB_INDEX_KEY, tracked, true),
    );
  }
}

function toMatch(key: string, tracked: Tracked, viaDockerHubFallback: boolean): KeyringMatch {
  return { ...tracked, key, sourceLabel: describeSource(tracked.source), viaDockerHubFallback };
}

/**
 * The index key of a config key: `https://` is prefixed unless a scheme is there, Go parses it,
 * a leading `/v1/` or `/v2/` loses its first three characters, and the key is host + path unless
 * the path is empty or `/`. Undefined for keys Go cannot parse.
 */
export function indexKey(configKey: string): string | undefined {
  const withScheme =
    configKey.startsWith('https://') || configKey.startsWith('http://') ? configKey : `https://${configKey}`;
  const parsed = parseGoUrl(withScheme);
  if (parsed === undefined) return undefined;
  let path = parsed.path;
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
  return path === '' || path === '/' ? parsed.host : parsed.host + path;
}

/**
 * The kubelet's `URLsMatchStr(key, target)`: same port, same number of host labels, each key
 * label a Go glob over the target label, key path a string prefix of the target path.
 */
export function urlsMatch(key: string, target: string): boolean {
  const keyUrl = parseSchemelessUrl(key);
  const targetUrl = parseSchemelessUrl(target);
  if (keyUrl === undefined || targetUrl === undefined) return false;
  const keyHost = splitHost(keyUrl.host);
  const targetHost = splitHost(targetUrl.host);
  if (keyHost.port !== targetHost.port) return false;
  if (keyHost.labels.length !== targetHost.labels.length) return false;
  if (!targetUrl.path.startsWith(keyUrl.path)) return false;
  return keyHost.labels.every((label, i) => goPathMatch(label, targetHost.labels[i] ?? '') === true);
}

function splitHost(hostport: string): { labels: string[]; port: string } {
  const split = splitHostPort(hostport);
  const host = split === undefined ? hostport : split.host;
  return { labels: host.split('.'), port: split?.port ?? '' };
}

/**
 * The kubelet's `isDefaultRegistryMatch`: a non-empty name without `/`, or one whose first
 * component is `docker.io`/`index.docker.io` or contains neither `.` nor `:`.
 */
export function isDockerHubFallbackTarget(image: string): boolean {
  const slash = image.indexOf('/');
  const first = slash < 0 ? image : image.slice(0, slash);
  if (first === '') return false;
  if (slash < 0) return true;
  if (first === 'docker.io' || first === 'index.docker.io') return true;
  return !first.includes('.') && !first.includes(':');
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Lookups across several keyrings in order (docs/semantics.md kubelet §8: pod secrets → node → plugins). Each
 * keyring applies its own Docker Hub fallback; results are concatenated, never merged.
 */
export function lookupInOrder(image: ImageName, keyrings: readonly Keyring[]): KeyringMatch[] {
  return keyrings.flatMap((keyring) => keyring.lookup(image));
}
