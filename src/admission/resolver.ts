/**
 * Looking digests up: the DigestResolver interface the Pinner uses, and its implementation on
 * one registry client from the access seam (`openRegistry`: HEAD with all four manifest types,
 * GET fallback hashing the exact bytes, Bearer/Basic auth, custom CAs, HTTPS_PROXY), with
 * `registryHosts` endpoint overrides, the pull engine's host configuration (containerd hosts.toml
 * directories, registries.conf: mirrors, insecure and blocked registries) and a credential chosen
 * per call. Nothing is stored, so the webhook needs no writable disk.
 */
import type { Descriptor } from '../oci/index.ts';
import {
  isIndexMediaType,
  normalizePlatform,
  parsePlatform,
  isAttestationPlatform,
  type Platform,
} from '../oci/index.ts';
import { indexChildren, openRegistry, repositoryOf } from '../pull/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import { parseHostsToml, type HostsConfig, type HostsDirConfig } from '../registry/hosts/index.ts';
import type {
  Credential,
  CredentialSource,
  Endpoint,
  EventSink,
  RegistryClient,
  RegistryClientOptions,
} from '../registry/index.ts';

/** A credential for the registry client (`basic`, `identityToken`, `registryToken`). */
export type RegistryCredential = Credential;

export interface ResolveContext {
  /** Sent to the image's registry (and its `registryHosts` endpoint); never to a mirror. Absent = anonymous. */
  readonly credential?: RegistryCredential;
  readonly signal?: AbortSignal;
}

/** Looks digests up. Implementations must not cache answers: the Pinner caches, per credential. */
export interface DigestResolver {
  /**
   * What a normalized reference (`docker.io/library/nginx:1.25`) points at now: the top-level
   * descriptor (an index for a multi-platform image). One HEAD, or a GET when HEAD is unusable.
   */
  resolve(reference: string, context?: ResolveContext): Promise<Descriptor>;
  /** The manifests an index lists, fetched by digest and verified. `repository` = `docker.io/library/nginx`. */
  indexManifests(repository: string, index: Descriptor, context?: ResolveContext): Promise<readonly Descriptor[]>;
  close?(): Promise<void>;
}

export interface RegistryResolverOptions {
  /** Normalized registry host → `https://h:p` / `http://h:p`: where to connect; the logical host still selects credentials. */
  readonly registryHosts?: Readonly<Record<string, string>>;
  /**
   * Host configuration as the pull engine reads it (`loadHostsConfig`: hosts.toml directories,
   * registries.conf). `registryHosts` wins for the hosts it names. Mirrors get no credentials.
   */
  readonly hosts?: HostsConfig;
  /** Extra CAs (PEM) trusted for every registry. */
  readonly caPems?: readonly string[];
  /** Loopback registries without configuration may be unverified TLS or plain HTTP, as containerd
   * allows and as every kimg command does (the one rule: `isInsecureByRule`); false verifies them.
   * Default true. */
  readonly insecureLoopback?: boolean;
  /** Per HTTP call: connect and response-header timeout; default 5000 ms. */
  readonly registryTimeoutMs?: number;
  /** Registry client settings (retries, proxies, user agent). */
  readonly client?: Omit<RegistryClientOptions, 'endpoints' | 'credentials' | 'onEvent' | 'credentialCacheMs'>;
  /** Every event of the registry client, HTTP exchanges included (traces, counts of look-ups). */
  readonly onRegistryEvent?: EventSink;
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
  insecureLoopback?: boolean,
): HostsConfig {
  const dirs = new Map<string, HostsDirConfig>();
  for (const [host, url] of Object.entries(registryHosts)) {
    const source = `resolver.registryHosts[${JSON.stringify(host)}]`;
    dirs.set(host, parseHostsToml(`server = ${JSON.stringify(url)}\n`, source, '/'));
  }
  return {
    containerd: { roots: [{ root: 'resolver.registryHosts', dirs }] },
    ...(insecureLoopback !== undefined && { insecureLoopback }),
  };
}

/**
 * `registryHosts` in front of loaded host configuration: its root is searched first, so an
 * explicit override wins over a hosts.toml for the same host, and a host no containerd directory
 * names falls through to registries.conf as in the pull engine.
 */
export function combineHostsConfig(
  registryHosts: Readonly<Record<string, string>>,
  loaded: HostsConfig | undefined,
  insecureLoopback?: boolean,
): HostsConfig {
  const own = registryHostsConfig(registryHosts, insecureLoopback);
  if (loaded === undefined) return own;
  return {
    ...loaded,
    containerd: { roots: [...(own.containerd?.roots ?? []), ...(loaded.containerd?.roots ?? [])] },
    ...(insecureLoopback !== undefined && { insecureLoopback }),
  };
}

/**
 * A DigestResolver on one registry client. One instance serves every request: connections,
 * tokens, learned challenges and host back-off are shared, while each call brings its own
 * credential (the client's per-call `credentials`), so tokens stay keyed per credential and a
 * credential is never used for another pod's call.
 */
export class RegistryResolver implements DigestResolver {
  readonly client: RegistryClient;
  private readonly overrideHosts: ReadonlyMap<string, string>;

  constructor(options: RegistryResolverOptions = {}) {
    const registryHosts = options.registryHosts ?? {};
    const overrides = new Map<string, string>();
    for (const [host, url] of Object.entries(registryHosts)) overrides.set(host, new URL(url).host);
    this.overrideHosts = overrides;
    const timeout = options.registryTimeoutMs ?? 5000;
    this.client = openRegistry({
      hosts: combineHostsConfig(registryHosts, options.hosts, options.insecureLoopback),
      ...(options.caPems !== undefined && { caPems: options.caPems }),
      ...(options.onRegistryEvent !== undefined && { onEvent: options.onRegistryEvent }),
      client: {
        connectTimeoutMs: timeout,
        headersTimeoutMs: timeout,
        // Admission has seconds, not minutes: fail fast rather than wait out a long Retry-After.
        retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1000, maxRetryAfterMs: 2000 },
        ...options.client,
      },
    });
  }

  /** The call's credential, only for the image's own registry (or its `registryHosts` endpoint). */
  private credentialsFor(registry: string, credential: RegistryCredential | undefined): CredentialSource {
    const override = this.overrideHosts.get(registry);
    return (host, context) => {
      if (credential === undefined || context.registry !== registry) return Promise.resolve(undefined);
      const own =
        override !== undefined
          ? host === override && endpointHost(context.endpoint) === override
          : context.endpoint.mirror !== true;
      return Promise.resolve(own ? credential : undefined);
    };
  }

  async resolve(reference: string, context: ResolveContext = {}): Promise<Descriptor> {
    const ref = parseDockerRef(reference);
    const found = await this.client.resolve(
      { registry: ref.domain, path: ref.path },
      ref.digest ?? ref.tag ?? 'latest',
      {
        credentials: this.credentialsFor(ref.domain, context.credential),
        ...(context.signal !== undefined && { signal: context.signal }),
      },
    );
    return found.descriptor;
  }

  indexManifests(repository: string, index: Descriptor, context: ResolveContext = {}): Promise<readonly Descriptor[]> {
    const repo = repositoryOf(repository);
    return indexChildren(this.client, repo, index, {
      credentials: this.credentialsFor(repo.registry, context.credential),
      ...(context.signal !== undefined && { signal: context.signal }),
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * The child of an index for `platform` (docs/semantics.md admission §4.6): `os` and `architecture` match exactly
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
