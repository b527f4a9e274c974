/**
 * The registry access seam: host configuration (containerd hosts.toml, registries.conf, the
 * loopback default), extra CAs and credentials → one configured `RegistryClient`. Everything that
 * talks to registries starts here (pull, the kubelet adapter, admission, `kimg pin`, push, copy,
 * the registry server's upstream), so connections, tokens, learned challenges and host back-off
 * are shared by every operation of the client.
 *
 * A client is meant to live as long as its process or component: open it once, pass it around
 * (`new Puller({ registry })`), and give each call its own credential when callers differ
 * (`{ credentials }` on the call, ggcr's `remote.Reuse` + per-call `WithAuth`). `close()` it at
 * the end.
 */
import type { Descriptor } from '../oci/index.ts';
import type { HostsConfig } from '../registry/hosts/index.ts';
import {
  RegistryClient,
  type CallOptions,
  type CredentialSource,
  type EventSink,
  type RegistryClientOptions,
  type RepositoryRef,
} from '../registry/index.ts';
import { EndpointResolver } from './endpoints.ts';

export interface RegistryAccessOptions {
  /** Registry host configuration (mirrors, TLS, plain-HTTP hosts); default none (HTTPS to each
   * registry, loopback as containerd treats it). */
  readonly hosts?: HostsConfig;
  /** Extra CA certificates (PEM) trusted for every registry. */
  readonly caPems?: readonly string[];
  /** Credentials per host contacted, for calls that bring none of their own; default anonymous. */
  readonly credentials?: CredentialSource;
  /** Client settings (retries, timeouts, proxies, clock, realm policy). */
  readonly client?: Omit<RegistryClientOptions, 'endpoints' | 'credentials' | 'onEvent'>;
  /** Retries, resumes and warnings, as the client reports them. */
  readonly onEvent?: EventSink;
}

/**
 * A registry client wired to the host configuration: each registry's endpoints (mirrors first)
 * come from `hosts`, CA files are read once, and a host marked for HTTP fallback is probed once.
 */
export function openRegistry(options: RegistryAccessOptions = {}): RegistryClient {
  const endpoints = new EndpointResolver(options.hosts ?? {}, options.caPems);
  return new RegistryClient({
    ...options.client,
    ...(options.credentials !== undefined && { credentials: options.credentials }),
    ...(options.onEvent !== undefined && { onEvent: options.onEvent }),
    endpoints: (registry, request) =>
      endpoints.forRegistry({ domain: registry, path: request.repository }, { byDigest: request.byDigest }),
  });
}

/**
 * The manifests an index lists, fetched by digest and verified against `index` (size, media
 * type, digest); `[]` when the descriptor turns out to be a manifest.
 */
export async function indexChildren(
  client: RegistryClient,
  repo: RepositoryRef,
  index: Descriptor,
  call: CallOptions = {},
): Promise<readonly Descriptor[]> {
  const fetched = await client.getManifest(repo, index.digest, { ...call, descriptor: index });
  return fetched.document.kind === 'index' ? fetched.document.index.manifests : [];
}

/** `registry/path` (`docker.io/library/nginx`) as a repository reference. */
export function repositoryOf(repository: string): RepositoryRef {
  const slash = repository.indexOf('/');
  return { registry: repository.slice(0, slash), path: repository.slice(slash + 1) };
}
