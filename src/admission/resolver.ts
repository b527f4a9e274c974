/**
 * Looking digests up (spec §3.2, §4.7): the ImageResolver interface the Pinner uses, and its
 * implementation on kimg's Puller (HEAD with all four manifest types, GET fallback hashing the
 * exact bytes, Bearer/Basic auth, custom CAs, HTTPS_PROXY), with `registryHosts` endpoint
 * overrides, the pull engine's host configuration (containerd hosts.toml directories,
 * registries.conf: mirrors, insecure and blocked registries) and a credential chosen per call.
 * Nothing is stored: the Puller gets a store that refuses every write, so the webhook needs no
 * writable disk.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { KimgError } from '../errors/index.ts';
import {
  isIndexMediaType,
  normalizePlatform,
  parsePlatform,
  isAttestationPlatform,
  type Descriptor,
  type Platform,
} from '../oci/index.ts';
import { Puller } from '../pull/index.ts';
import { parseHostsToml, type HostsConfig, type HostsDirConfig } from '../registry/hosts/index.ts';
import type { Credential, CredentialSource, Endpoint, RegistryClientOptions } from '../registry/index.ts';
import type { Store } from '../store/index.ts';

/** A credential for the registry client (`basic`, `identityToken`, `registryToken`). */
export type RegistryCredential = Credential;

export interface ResolveContext {
  /** Sent to the image's registry (and its `registryHosts` endpoint); never to a mirror. Absent = anonymous. */
  readonly credential?: RegistryCredential;
  readonly signal?: AbortSignal;
}

/** Looks digests up. Implementations must not cache: the Pinner caches, per credential. */
export interface ImageResolver {
  /**
   * What a normalized reference (`docker.io/library/nginx:1.25`) points at now: the top-level
   * descriptor (an index for a multi-platform image). One HEAD, or a GET when HEAD is unusable.
   */
  resolve(reference: string, context?: ResolveContext): Promise<Descriptor>;
  /** The manifests an index lists, fetched by digest and verified. `repository` = `docker.io/library/nginx`. */
  indexManifests(repository: string, index: Descriptor, context?: ResolveContext): Promise<readonly Descriptor[]>;
  close?(): Promise<void>;
}

export interface PullerResolverOptions {
  /** Normalized registry host → `https://h:p` / `http://h:p`: where to connect; the logical host still selects credentials. */
  readonly registryHosts?: Readonly<Record<string, string>>;
  /**
   * Host configuration as the pull engine reads it (`loadHostsConfig`: hosts.toml directories,
   * registries.conf). `registryHosts` wins for the hosts it names. Mirrors get no credentials.
   */
  readonly hosts?: HostsConfig;
  /** Extra CAs (PEM) trusted for every registry. */
  readonly caPems?: readonly string[];
  /** Treat loopback registries without configuration as containerd does (unverified TLS or plain HTTP). Default false: HTTPS, verified. */
  readonly insecureLoopback?: boolean;
  /** Per HTTP call: connect and response-header timeout; default 5000 ms. */
  readonly registryTimeoutMs?: number;
  /** Registry client settings (retries, proxies, user agent). */
  readonly client?: Omit<RegistryClientOptions, 'endpoints' | 'credentials' | 'onEvent' | 'credentialCacheMs'>;
}

/**
 * A store that keeps nothing (digest resolution never writes): reads find nothing, anything
 * else is refused. A Proxy, so that methods the Store interface gains later are refused too.
 */
function noStore(): Store {
  const refused = () =>
    Promise.reject(new KimgError('ErrNoStore', 'digest resolution keeps no images: this Puller has no store'));
  const known: Partial<Store> = {
    root: '',
    hasBlob: () => Promise.resolve(false),
    getImage: () => Promise.resolve(undefined),
    listImages: () => Promise.resolve([]),
    lock: (fn) => fn(),
  };
  return new Proxy(known, {
    get: (target, property) => {
      if (property in target) return target[property as keyof Store];
      // Not a thenable (Promise.resolve(store) must not call it), nor inspectable as a method.
      if (typeof property === 'symbol' || property === 'then' || property === 'toJSON') return undefined;
      return refused;
    },
  }) as Store;
}

interface CallCredential {
  readonly registry: string;
  readonly credential: RegistryCredential | undefined;
}

/** The registry host of an endpoint URL (`host[:port]`). */
function endpointHost(endpoint: Endpoint): string {
  try {
    return new URL(endpoint.baseUrl).host;
  } catch {
    return '';
  }
}

/** `registryHosts` as an in-memory containerd hosts configuration: `server = <url>` per registry. */
export function registryHostsConfig(
  registryHosts: Readonly<Record<string, string>>,
  insecureLoopback: boolean,
): HostsConfig {
  const dirs = new Map<string, HostsDirConfig>();
  for (const [host, url] of Object.entries(registryHosts)) {
    const source = `resolver.registryHosts[${JSON.stringify(host)}]`;
    dirs.set(host, parseHostsToml(`server = ${JSON.stringify(url)}\n`, source, '/'));
  }
  return { containerd: { roots: [{ root: 'resolver.registryHosts', dirs }] }, insecureLoopback };
}

/**
 * `registryHosts` in front of loaded host configuration: its root is searched first, so an
 * explicit override wins over a hosts.toml for the same host, and a host no containerd directory
 * names falls through to registries.conf as in the pull engine.
 */
export function combineHostsConfig(
  registryHosts: Readonly<Record<string, string>>,
  loaded: HostsConfig | undefined,
  insecureLoopback: boolean,
): HostsConfig {
  const own = registryHostsConfig(registryHosts, insecureLoopback);
  if (loaded === undefined) return own;
  return {
    ...loaded,
    containerd: { roots: [...(own.containerd?.roots ?? []), ...(loaded.containerd?.roots ?? [])] },
    insecureLoopback,
  };
}

/**
 * An ImageResolver on kimg's Puller (`resolve`) and registry client (`getManifest`). One
 * instance serves every request: connections, tokens and host back-off are shared, while the
 * credential travels with each call (AsyncLocalStorage), so token caches stay keyed per
 * credential and a credential is never reused for another pod's call.
 */
export class PullerResolver implements ImageResolver {
  readonly puller: Puller;
  private readonly calls = new AsyncLocalStorage<CallCredential>();
  private readonly overrideHosts: ReadonlyMap<string, string>;

  constructor(options: PullerResolverOptions = {}) {
    const registryHosts = options.registryHosts ?? {};
    const overrides = new Map<string, string>();
    for (const [host, url] of Object.entries(registryHosts)) overrides.set(host, new URL(url).host);
    this.overrideHosts = overrides;
    const timeout = options.registryTimeoutMs ?? 5000;
    const credentials: CredentialSource = (host, context) =>
      Promise.resolve(this.credentialFor(host, context.registry, context.endpoint));
    this.puller = new Puller({
      store: noStore(),
      credentials,
      hosts: combineHostsConfig(registryHosts, options.hosts, options.insecureLoopback ?? false),
      ...(options.caPems !== undefined && { caPems: options.caPems }),
      client: {
        connectTimeoutMs: timeout,
        headersTimeoutMs: timeout,
        // Admission has seconds, not minutes: fail fast rather than wait out a long Retry-After.
        retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1000, maxRetryAfterMs: 2000 },
        ...options.client,
        credentialCacheMs: 0,
      },
    });
  }

  /** The call's credential, only for the image's own registry (or its `registryHosts` endpoint). */
  private credentialFor(host: string, registry: string, endpoint: Endpoint): RegistryCredential | undefined {
    const call = this.calls.getStore();
    if (call === undefined || call.registry !== registry) return undefined;
    const override = this.overrideHosts.get(registry);
    const own = override !== undefined ? host === override && endpointHost(endpoint) === override : !endpoint.mirror;
    return own ? call.credential : undefined;
  }

  resolve(reference: string, context: ResolveContext = {}): Promise<Descriptor> {
    const registry = reference.slice(0, reference.indexOf('/'));
    return this.calls.run({ registry, credential: context.credential }, async () => {
      const found = await this.puller.resolve(
        reference,
        context.signal === undefined ? {} : { signal: context.signal },
      );
      return found.descriptor;
    });
  }

  indexManifests(repository: string, index: Descriptor, context: ResolveContext = {}): Promise<readonly Descriptor[]> {
    const slash = repository.indexOf('/');
    const registry = repository.slice(0, slash);
    const path = repository.slice(slash + 1);
    return this.calls.run({ registry, credential: context.credential }, async () => {
      const fetched = await this.puller.client.getManifest({ registry, path }, index.digest, {
        descriptor: index,
        ...(context.signal !== undefined && { signal: context.signal }),
      });
      return fetched.document.kind === 'index' ? fetched.document.index.manifests : [];
    });
  }

  async close(): Promise<void> {
    await this.puller.close();
  }
}

/**
 * The child of an index for `platform` (spec §4.6): `os` and `architecture` match exactly
 * (after the usual aliases: `aarch64` = `arm64`, `x86_64` = `amd64`), `variant` only when asked
 * (`arm64` = `arm64/v8`); `unknown/unknown` entries (attestations) are skipped; the first match
 * in index order wins.
 */
export function selectPlatformManifest(
  manifests: readonly Descriptor[],
  platform: string | Platform,
): Descriptor | undefined {
  const wanted = typeof platform === 'string' ? parsePlatform(platform) : platform;
  const want = normalizePlatform(wanted);
  for (const child of manifests) {
    if (child.platform === undefined || isAttestationPlatform(child.platform)) continue;
    if (isIndexMediaType(child.mediaType)) continue;
    const have = normalizePlatform(child.platform);
    if (have.os !== want.os || have.architecture !== want.architecture) continue;
    if (wanted.variant !== undefined && (have.variant ?? '') !== (want.variant ?? '')) continue;
    return child;
  }
  return undefined;
}
