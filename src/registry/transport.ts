/**
 * One HTTP exchange with retries, per-host admission and back-off, over shared keep-alive
 * connection pools (undici). Dispatchers are per TLS configuration; HTTP(S)_PROXY / NO_PROXY are
 * honoured through undici's EnvHttpProxyAgent.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { discard } from './body.ts';
import { bulkUpload, copiedChunks, isChunkedBody, type BulkUploadResponse, type ChunkedBody } from './bulk-upload.ts';
import { leanGet, type LeanResponse } from './lean-http.ts';
import { threadGet, type ThreadResponse } from './lean-thread.ts';
import { RegistryError, type RegistryErrorFacts } from './errors.ts';
import { classifyHost, type AddressClass } from './realm.ts';
import { headerValue, type ResponseHeaders } from './headers.ts';
import { errorCode, redactUrl, sanitizeCause } from './redact.ts';
import {
  DEFAULT_RETRY_POLICY,
  HostGate,
  decideRetry,
  isPlainHttpAnswer,
  isTlsError,
  systemClock,
  type RetryPolicy,
} from './retry.ts';
import type { Clock, EndpointTls, EventSink } from './types.ts';

export interface ProxySettings {
  readonly httpProxy?: string;
  readonly httpsProxy?: string;
  readonly noProxy?: string;
}

export interface TransportOptions {
  readonly clock?: Clock;
  /** Random numbers in [0, 1) for back-off jitter. */
  readonly random?: () => number;
  readonly retry?: Partial<RetryPolicy>;
  /** Requests in flight per host (`host:port`), bodies included; default 8. */
  readonly maxConcurrentPerHost?: number;
  readonly onEvent?: EventSink;
  /** Proxies; default from HTTPS_PROXY / HTTP_PROXY / NO_PROXY. `false` = never. */
  readonly proxy?: ProxySettings | false;
  /** Default 30 s. */
  readonly connectTimeoutMs?: number;
  /** Time to wait for response headers; default 60 s. */
  readonly headersTimeoutMs?: number;
  /** Resolver hook (tests map names to loopback); default dns.lookup. */
  readonly lookup?: LookupFunction;
  readonly userAgent?: string;
  /** Also report every HTTP exchange to `onEvent` as an `http` event (traces, `kimg -v`). */
  readonly traceRequests?: boolean;
  /** Read large blob bodies (`bulk`) over TLS on worker threads (lean-thread.ts); default true. */
  readonly blobThreads?: boolean;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a request may carry: bytes, a function returning a fresh stream for each attempt, or
 * chunks whose memory is reused (see bulk-upload.ts). */
export type RequestBody = string | Uint8Array | (() => Readable) | ChunkedBody;

export interface HttpRequest {
  readonly url: URL;
  readonly method: HttpMethod;
  readonly headers: Readonly<Record<string, string>>;
  /** A body; a function is called for each attempt and must return the body from its start
   * (uploads stream from a re-openable source). */
  readonly body?: RequestBody;
  readonly signal?: AbortSignal;
  /** TLS settings for this request's origin. */
  readonly tls?: EndpointTls;
  /** Abort when no body bytes arrive for this long (stall); default 60 s. */
  readonly bodyTimeoutMs?: number;
  /** Connect only to resolved addresses of these classes (strict realm mode). */
  readonly allowedAddressClasses?: readonly AddressClass[];
  /** No retries (the caller has its own loop). */
  readonly noRetry?: boolean;
  /** A large body the caller pumps ({@link LeanBody.pump}): read outside undici when no proxy
   * applies (see lean-http.ts); for a `PATCH` or `PUT` with a {@link ChunkedBody}, a large body
   * sent outside undici (see bulk-upload.ts). */
  readonly bulk?: boolean;
  /** Names the operation in errors: `resolve docker.io/library/nginx:1.25`. */
  readonly description: string;
  readonly facts?: RegistryErrorFacts;
}

export interface HttpResponse {
  readonly url: URL;
  readonly status: number;
  readonly headers: ResponseHeaders;
  /** Must be consumed or discarded: the host slot is held until the body closes. */
  readonly body: Readable;
  /** Attempts made (1 = first try succeeded or failed for good). */
  readonly attempts: number;
}

const DEFAULT_USER_AGENT = 'kimg/0.1 (+registry client)';

export class Transport {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly policy: RetryPolicy;
  private readonly maxPerHost: number;
  private readonly gates = new Map<string, HostGate>();
  private readonly dispatchers = new Map<string, Dispatcher>();
  /** One TLS context per extra-CA set: building one parses every root certificate again, which
   * measured ≈ 30 ms a connection, and blob downloads open a connection each. */
  private readonly secureContexts = new Map<string, SecureContext>();
  private closed = false;

  constructor(private readonly options: TransportOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.maxPerHost = options.maxConcurrentPerHost ?? 8;
  }

  get userAgent(): string {
    return this.options.userAgent ?? DEFAULT_USER_AGENT;
  }

  gate(host: string): HostGate {
    let gate = this.gates.get(host);
    if (gate === undefined) {
      gate = new HostGate(this.maxPerHost, this.clock);
      this.gates.set(host, gate);
    }
    return gate;
  }

  /**
   * Sends a request, retrying 408/429/5xx and broken connections with back-off shared per host.
   * Returns the final response (possibly a retryable status after the last attempt), its body
   * unread. Throws RegistryError for transport failures (ErrTLS, ErrConnection,
   * ErrRegistryUnavailable after retries) and the signal's reason on abort.
   */
  async exchange(req: HttpRequest): Promise<HttpResponse> {
    if (this.closed)
      throw new RegistryError('ErrInvalidArgument', `${req.description}: the registry client is closed`, req.facts);
    const host = req.url.host;
    const gate = this.gate(host);
    const dispatcher = this.dispatcher(req.tls, req.allowedAddressClasses);
    const direct = req.bulk === true && this.proxySettings() === undefined;
    const upload =
      direct && (req.method === 'PATCH' || req.method === 'PUT') && isChunkedBody(req.body)
        ? {
            method: req.method,
            body: req.body,
            connect: this.connectOptions(req.tls, req.allowedAddressClasses),
            idleTimeoutMs: Math.max(req.bodyTimeoutMs ?? 60_000, this.options.headersTimeoutMs ?? 60_000),
          }
        : undefined;
    const lean =
      direct && req.method === 'GET'
        ? {
            connect: this.connectOptions(req.tls, req.allowedAddressClasses),
            headersTimeoutMs: this.options.headersTimeoutMs ?? 60_000,
            bodyTimeoutMs: req.bodyTimeoutMs ?? 60_000,
          }
        : undefined;
    // Over TLS only: measured over plain HTTP (8 × 64 MiB, A/B), the thread took 0.4 CPU s per
    // GiB off the event loop but cost 0.2 s more in all, and the pull was no faster.
    const onThread = lean !== undefined && req.url.protocol === 'https:' && this.options.blobThreads !== false;
    for (let attempt = 1; ; attempt++) {
      const release = await gate.enter(req.signal);
      const sent = performance.now();
      let response:
        | Pick<Dispatcher.ResponseData, 'statusCode' | 'headers' | 'body'>
        | LeanResponse
        | ThreadResponse
        | BulkUploadResponse;
      try {
        response =
          upload !== undefined
            ? await bulkUpload({
                ...upload,
                url: req.url,
                headers: { 'user-agent': this.userAgent, ...req.headers },
                ...(req.signal !== undefined && { signal: req.signal }),
              })
            : lean !== undefined && onThread
              ? await threadGet({
                  url: req.url,
                  headers: { 'user-agent': this.userAgent, ...req.headers },
                  ...(req.signal !== undefined && { signal: req.signal }),
                  connect: {
                    ...(req.tls?.ca !== undefined && { ca: req.tls.ca }),
                    ...(req.tls?.skipVerify === true && { rejectUnauthorized: false }),
                    lookup: lean.connect.lookup,
                    timeout: lean.connect.timeout,
                  },
                  headersTimeoutMs: lean.headersTimeoutMs,
                  bodyTimeoutMs: lean.bodyTimeoutMs,
                })
              : lean !== undefined
                ? await leanGet({
                    ...lean,
                    url: req.url,
                    headers: { 'user-agent': this.userAgent, ...req.headers },
                    ...(req.signal !== undefined && { signal: req.signal }),
                  })
                : await dispatcher.request({
                    origin: req.url.origin,
                    path: `${req.url.pathname}${req.url.search}`,
                    method: req.method,
                    headers: { 'user-agent': this.userAgent, ...req.headers },
                    body:
                      typeof req.body === 'function'
                        ? req.body()
                        : isChunkedBody(req.body)
                          ? copiedChunks(req.body)
                          : (req.body ?? null),
                    signal: req.signal ?? null,
                    headersTimeout: this.options.headersTimeoutMs ?? 60_000,
                    bodyTimeout: req.bodyTimeoutMs ?? 60_000,
                    highWaterMark: 256 * 1024,
                  });
      } catch (err) {
        release();
        this.traced(req, attempt, sent, 0, undefined, errorCode(err) ?? 'transport error');
        if (req.signal?.aborted) throw req.signal.reason;
        const decision = req.noRetry
          ? { retry: false as const, reason: errorCode(err) ?? 'transport error' }
          : decideRetry({ error: err }, attempt, this.policy, this.clock.now(), this.random);
        if (decision.retry) {
          this.retrying(req, attempt, decision.delayMs, decision.reason);
          gate.backOff(decision.delayMs);
          continue;
        }
        throw transportError(err, req, attempt);
      }

      let released = false;
      const releaseOnce = () => {
        if (!released) {
          released = true;
          release();
        }
      };
      response.body.once('close', releaseOnce);
      response.body.once('error', releaseOnce);
      response.body.once('end', releaseOnce);
      if (this.options.traceRequests === true && this.options.onEvent !== undefined) {
        // Listening for `end` and `close` leaves the body paused: nothing is read for the trace.
        let ended = false;
        const status = response.statusCode;
        const declared = headerValue(response.headers, 'content-length');
        response.body.once('end', () => (ended = true));
        response.body.once('close', () =>
          this.traced(
            req,
            attempt,
            sent,
            status,
            ended && declared !== undefined && req.method !== 'HEAD' ? Number(declared) : undefined,
          ),
        );
      }

      const retryAfter = headerValue(response.headers, 'retry-after');
      const decision = req.noRetry
        ? { retry: false as const }
        : decideRetry(
            { status: response.statusCode, ...(retryAfter !== undefined && { retryAfter }) },
            attempt,
            this.policy,
            this.clock.now(),
            this.random,
          );
      if (decision.retry) {
        await discard(response.body);
        releaseOnce();
        this.retrying(req, attempt, decision.delayMs, decision.reason);
        gate.backOff(decision.delayMs);
        continue;
      }
      return {
        url: req.url,
        status: response.statusCode,
        headers: response.headers,
        body: response.body,
        attempts: attempt,
      };
    }
  }

  private traced(
    req: HttpRequest,
    attempt: number,
    sent: number,
    status: number,
    bytes: number | undefined,
    error?: string,
  ): void {
    if (this.options.traceRequests !== true) return;
    this.options.onEvent?.({
      type: 'http',
      method: req.method,
      url: redactUrl(req.url),
      status,
      ...(bytes !== undefined && Number.isSafeInteger(bytes) && { bytes }),
      ms: performance.now() - sent,
      attempt,
      ...(error !== undefined && { error }),
    });
  }

  private retrying(req: HttpRequest, attempt: number, delayMs: number, reason: string): void {
    this.options.onEvent?.({ type: 'retrying', host: req.url.host, url: redactUrl(req.url), reason, attempt, delayMs });
  }

  /** One pool set per TLS configuration (and address restriction); connections are reused. */
  private dispatcher(tls: EndpointTls | undefined, allowed: readonly AddressClass[] | undefined): Dispatcher {
    const key = JSON.stringify([
      tls?.ca ?? [],
      tls?.skipVerify === true,
      allowed === undefined ? null : [...allowed].sort(),
    ]);
    const existing = this.dispatchers.get(key);
    if (existing !== undefined) return existing;

    const connect = this.connectOptions(tls, allowed);
    const agentOptions = { connect, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000 };
    const proxy = this.proxySettings();
    const dispatcher: Dispatcher =
      proxy === undefined
        ? new Agent(agentOptions)
        : new EnvHttpProxyAgent({ ...agentOptions, ...proxy, requestTls: connect });
    this.dispatchers.set(key, dispatcher);
    return dispatcher;
  }

  /** Socket and TLS options for one TLS configuration and address restriction. */
  private connectOptions(tls: EndpointTls | undefined, allowed: readonly AddressClass[] | undefined) {
    const baseLookup = this.options.lookup ?? (dnsLookup as unknown as LookupFunction);
    return {
      timeout: this.options.connectTimeoutMs ?? 30_000,
      ...(tls?.ca !== undefined && tls.ca.length > 0 && { secureContext: this.secureContext(tls.ca) }),
      ...(tls?.skipVerify === true && { rejectUnauthorized: false }),
      lookup:
        allowed === undefined
          ? baseLookup
          : filteringLookup(baseLookup, (address) => allowed.includes(classifyHost(address))),
    };
  }

  /** The system roots plus `ca`, built once per distinct set. */
  private secureContext(ca: readonly string[]): SecureContext {
    const key = ca.join('\n');
    let context = this.secureContexts.get(key);
    if (context === undefined) {
      context = createSecureContext({ ca: [...rootCertificates, ...ca] });
      this.secureContexts.set(key, context);
    }
    return context;
  }

  private proxySettings(): ProxySettings | undefined {
    if (this.options.proxy === false) return undefined;
    if (this.options.proxy !== undefined) return this.options.proxy;
    const env = process.env;
    const httpProxy = env.http_proxy ?? env.HTTP_PROXY;
    const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY;
    if (!httpProxy && !httpsProxy) return undefined;
    const noProxy = env.no_proxy ?? env.NO_PROXY;
    return {
      ...(httpProxy && { httpProxy }),
      ...(httpsProxy && { httpsProxy }),
      ...(noProxy !== undefined && { noProxy }),
    };
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(all.map((d) => d.close().catch(() => undefined)));
  }
}

/** Wraps a lookup so that only allowed addresses are connected to. */
function filteringLookup(base: LookupFunction, allow: (address: string) => boolean): LookupFunction {
  return (hostname, options, callback) => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const list = (Array.isArray(addresses) ? addresses : [{ address: addresses, family: 4 }]).filter(
        (a: LookupAddress) => allow(a.address),
      );
      if (list.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to addresses the realm policy refuses`), {
          code: 'ERR_KIMG_ADDRESS_REFUSED',
        });
        callback(refused, '', 0);
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, list[0]?.address ?? '', list[0]?.family ?? 4);
    });
  };
}

/** A transport failure as a RegistryError naming the operation, host and what was retried. */
export function transportError(err: unknown, req: HttpRequest, attempts: number): RegistryError {
  const code = errorCode(err) ?? 'unknown';
  const where = `${req.method} ${redactUrl(req.url)}`;
  const retried = attempts > 1 ? `; gave up after ${attempts} attempts` : '';
  const facts = { ...req.facts, host: req.url.host, url: redactUrl(req.url), attempts };
  const cause = sanitizeCause(err);
  if (isPlainHttpAnswer(err)) {
    return new RegistryError(
      'ErrTLS',
      `${req.description}: server gave HTTP response to HTTPS client: ${req.url.host} speaks plain HTTP, not TLS (nothing was sent over plain http); if it is meant to, mark it insecure (kimg --insecure-registry ${req.url.host}, an http:// server in its hosts.toml, or insecure = true in registries.conf)`,
      facts,
      { cause },
    );
  }
  if (isTlsError(err)) {
    return new RegistryError(
      'ErrTLS',
      `${req.description}: TLS handshake with ${req.url.host} failed (${code}: ${cause.message}); configure the registry's CA certificate for this host, nothing was sent over plain http`,
      facts,
      { cause },
    );
  }
  if (code === 'ERR_KIMG_ADDRESS_REFUSED') {
    return new RegistryError('ErrRealmRefused', `${req.description}: ${cause.message} (${where})`, facts, { cause });
  }
  const retryable =
    attempts > 1 ||
    [
      'ECONNRESET',
      'EPIPE',
      'ETIMEDOUT',
      'UND_ERR_SOCKET',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
    ].includes(code);
  return new RegistryError(
    retryable ? 'ErrRegistryUnavailable' : 'ErrConnection',
    `${req.description}: ${where} failed: ${code} (${cause.message})${retried}`,
    facts,
    { cause },
  );
}
