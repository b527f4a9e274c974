/**
 * What the registry client consumes from its callers and neighbours. Small local shapes, so the
 * client does not depend on `credentials/`, `store/` or the hosts resolver being written first.
 */

export type Capability = 'pull' | 'resolve';

export interface EndpointTls {
  /** Extra CA certificates (PEM), trusted in addition to Node's bundled roots. */
  readonly ca?: readonly string[];
  /** Accept any certificate from this endpoint. Only for this endpoint's own origin, never
   * for hosts it redirects to. */
  readonly skipVerify?: boolean;
}

/** One place to reach a registry: the registry itself or a mirror, in the order to try them. */
export interface Endpoint {
  /** `https://host:port` (optionally with a path prefix). `http://` requires `insecure`. */
  readonly baseUrl: string;
  /** Permits a plain-http `baseUrl`. Never makes the client try http for an https endpoint. */
  readonly insecure?: boolean;
  readonly tls?: EndpointTls;
  /** A mirror: its failures fall back to the next endpoint; it gets its own credentials. */
  readonly mirror?: boolean;
  /** What the endpoint may be used for; default both. Tag resolution needs `resolve`. */
  readonly capabilities?: readonly Capability[];
  /** The baseUrl path is the API root itself (containerd's `override_path`); else `/v2` is appended. */
  readonly overridePath?: boolean;
  /** The repository path as this endpoint names it, when it differs from the reference's
   * (a registries.conf `location` rewriting a `prefix`). */
  readonly repository?: string;
  /** Query parameters added to every request to this endpoint (e.g. containerd's `ns=`). */
  readonly query?: Readonly<Record<string, string>>;
}

/** A credential for one host. `kind` discriminates. */
export type Credential =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the realm with POST. */
  | { readonly kind: 'identityToken'; readonly token: string; readonly username?: string }
  /** A bearer token sent to the registry as is (Docker's `registrytoken`). */
  | { readonly kind: 'registryToken'; readonly token: string };

/**
 * Looks up the credential for a host actually contacted (`host[:port]` as in the endpoint URL:
 * a mirror's host, not the upstream's). Undefined = anonymous.
 */
export type CredentialSource = (
  host: string,
  context: { readonly registry: string; readonly endpoint: Endpoint },
) => Promise<Credential | undefined>;

/**
 * Where blob bytes go. `offset` = bytes already held (a partial download); the client resumes
 * from there with `Range`. `reset()` discards everything (offset becomes 0).
 */
export interface BlobSink {
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Like `write`, for chunks whose memory is reused as soon as it returns: the sink uses the
   * chunk up (hashes, copies) before returning, and returns a promise only to ask the caller to
   * wait before the next chunk. Without it, such chunks are copied for `write`.
   */
  take?(chunk: Uint8Array): Promise<void> | undefined;
  reset(): Promise<void>;
  /**
   * The bytes already held, from the start, so a resumed download can be verified end to end.
   * A sink without it that starts non-empty is reset when the client verifies (the default).
   */
  read?(): AsyncIterable<Uint8Array>;
}

/**
 * What every client operation takes. `credentials` is ggcr's per-call `WithAuth` on a shared
 * client (`remote.Reuse`): this call asks it, not the client's own source, for the credential of
 * each host it contacts. It is asked on every request and never cached by the client; what the
 * client keeps across calls is keyed so that one call's credential never serves another's:
 * challenges per endpoint (they carry no secret), tokens per (realm, service, scopes,
 * credential identity).
 */
export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly credentials?: CredentialSource;
}

/** A repository: registry name (`docker.io`, `127.0.0.1:5000`) and path (`library/nginx`). */
export interface RepositoryRef {
  readonly registry: string;
  readonly path: string;
}

/** Time, injectable so tests never wait in wall time (one Clock for all of kimg). */
export type { Clock } from '../signals/index.ts';

/** Progress and trouble, for logs and UIs. Never carries credentials or URL queries. */
export type RegistryEvent =
  | {
      readonly type: 'retrying';
      readonly host: string;
      /** Redacted URL. */
      readonly url: string;
      /** `HTTP 503`, `ECONNRESET`, … */
      readonly reason: string;
      /** The attempt that failed (1 = the first). */
      readonly attempt: number;
      readonly delayMs: number;
    }
  | {
      readonly type: 'resuming';
      readonly digest: string;
      readonly host: string;
      readonly offset: number;
      readonly reason: string;
      readonly attemptsWithoutProgress: number;
    }
  | { readonly type: 'rangeIgnored'; readonly digest: string; readonly host: string; readonly offset: number }
  | { readonly type: 'endpointFailed'; readonly endpoint: string; readonly code: string; readonly message: string }
  | { readonly type: 'warning'; readonly host: string; readonly message: string }
  | {
      /** One HTTP exchange (each attempt, each redirect hop, token requests too), reported when
       * its body is done with, for traces (`kimg -v`); only with the `traceRequests` option. */
      readonly type: 'http';
      readonly method: string;
      /** Redacted URL (no query, no user info). */
      readonly url: string;
      /** 0 when no response arrived. */
      readonly status: number;
      /** Body bytes: the Content-Length of a body read to its end; undefined when unknown or cut. */
      readonly bytes?: number;
      /** From sending the request to the end of its body (or the failure). */
      readonly ms: number;
      readonly attempt: number;
      /** The transport error's code when no response arrived. */
      readonly error?: string;
    }
  | {
      readonly type: 'tokenFetched';
      readonly realm: string;
      readonly service?: string;
      readonly scopes: readonly string[];
    };

export type EventSink = (event: RegistryEvent) => void;
