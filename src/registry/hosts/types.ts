/** What registry host configuration resolves to. All plain data: no I/O, no live clients. */

/**
 * What a host may be used for (containerd's host capabilities). `resolve` turns a tag into a
 * digest and must only be given to hosts trusted to do so; `pull` fetches content by digest,
 * which is verified, so it needs less trust.
 */
export type Capability = 'pull' | 'resolve' | 'push' | 'referrers';

export const ALL_CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push', 'referrers'];

/** A client certificate; without `keyFile` the key is in `certFile` too. */
export interface ClientCertificate {
  readonly certFile: string;
  readonly keyFile?: string;
}

/** TLS for one host. Verification against the system roots is always on unless `skipVerify`. */
export interface TlsSettings {
  /** Extra CA files (PEM), added to the system roots. Absolute paths. */
  readonly caFiles: readonly string[];
  readonly skipVerify: boolean;
  readonly clientCerts: readonly ClientCertificate[];
}

/** Everything about contacting a host that does not depend on the repository. */
export interface HostSettings {
  readonly capabilities: readonly Capability[];
  readonly tls: TlsSettings;
  /** Extra request headers (names as configured; values may be secrets: never log them). */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /**
   * Plain HTTP may be spoken to this host: its URL is `http://`, or `httpFallback` is set. Only
   * hosts configured so (an `http://` host in hosts.toml, `insecure = true` in registries.conf)
   * or loopback hosts under `insecureLoopback` are ever insecure.
   */
  readonly insecure: boolean;
  /**
   * Try HTTPS first and repeat the request over plain HTTP only when the server answered the
   * TLS handshake with plain HTTP (containerd's HTTPFallback, docker's insecure registries). Any
   * other TLS failure stays an error.
   */
  readonly httpFallback: boolean;
  /**
   * Whether a failure here (including not found) moves on to the next host. `false` makes the
   * host final: with a mirror first, the upstream is never contacted (containerd #9206).
   */
  readonly fallback: boolean;
  /** hosts.toml `dial_timeout`. */
  readonly dialTimeoutMs?: number;
  /** hosts.toml `proxy`: overrides HTTPS_PROXY/NO_PROXY for this host. May hold credentials. */
  readonly proxy?: string;
  /** Where this host came from, for `--explain` and errors. */
  readonly source: string;
}

/** One host for a registry, in the order to try them. */
export interface RegistryHost extends HostSettings {
  /** `scheme://host[:port]`. */
  readonly url: string;
  /** `host[:port]` contacted: the key for credentials, connection pools and back-off. */
  readonly host: string;
  /** API root path: `/v2` normally; anything with hosts.toml `override_path`. */
  readonly pathPrefix: string;
  /** The host is not the registry itself (containerd's `isProxy`). */
  readonly isMirror: boolean;
  /** Requests carry `?ns=<registry>` (hosts.toml `ns_query = true`, a kimg extension). */
  readonly namespaceQuery: boolean;
}

/** One place to pull a repository from, in the order to try them. */
export interface Endpoint extends HostSettings {
  /** `scheme://host[:port]` + API root, e.g. `https://registry-1.docker.io/v2`. */
  readonly baseUrl: string;
  /** `host[:port]` contacted (credentials are chosen per this host, never the upstream's). */
  readonly host: string;
  /** The repository as this endpoint names it (after registries.conf prefix rewriting). */
  readonly repository: string;
  /** When set, append `?ns=<namespace>` to every request (marked proxies only). */
  readonly namespace?: string;
  /** From a mirror entry rather than the registry itself. */
  readonly mirror: boolean;
}

/** The repository being pulled, as the reference names it (normalised: `docker.io`, `library/x`). */
export interface RepositoryName {
  readonly domain: string;
  readonly path: string;
}

export interface PullKind {
  /** The pull names a digest: digest-only mirrors apply, tag-only mirrors do not. */
  readonly byDigest: boolean;
  /** The tag, when the reference has one; only matters for registries.conf prefixes with a tag. */
  readonly tag?: string;
  /** The digest, when the reference has one; likewise. */
  readonly digest?: string;
}
