/**
 * `kimg registry serve`: the store served as an OCI distribution registry over node:http or
 * node:https. Loopback only unless TLS (or `insecureListen`) is asked for; bounded headers,
 * bodies and idle time; one access-log line per request, never with credentials; Prometheus
 * `/metrics`, `/healthz` and `/readyz` for probes.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { constants as cryptoConstants } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';
import { DEFAULT_CIPHERS } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { KimgError } from '../errors/index.ts';
import { DigestError } from '../digest/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { BasicAuthenticator } from './auth.ts';
import { ContentReader, DEFAULT_MAX_MANIFEST_BYTES } from './content.ts';
import { clientGone } from './body.ts';
import { DistributionError } from './errors.ts';
import { ServerMetrics } from './metrics.ts';
import { checkHost, repositoryOf, type RepositoryName } from './names.ts';
import { PullThrough } from './pull-through.ts';
import { ReadHandler } from './read.ts';
import { ReferrersIndex } from './referrers.ts';
import { API_VERSION_HEADER, send, sendError } from './respond.ts';
import { matchRoute, type Route } from './routes.ts';
import { IndexView } from './view.ts';
import { refuseWrite } from './write-refused.ts';

/** The write side, when pushes are allowed (see uploads.ts). */
export interface WriteSide {
  handle(
    route: Route,
    repo: RepositoryName,
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
  ): Promise<void>;
  /** Called once when the server closes, after its connections: stops timers and drops what
   * only this server could finish (uploads in progress). */
  close?(): Promise<void>;
}

/** What the write side works on: the server's store and its read-side views. */
export interface WriteContext {
  readonly store: Store;
  readonly content: ContentReader;
  readonly view: IndexView;
  readonly referrers: ReferrersIndex;
  readonly metrics: ServerMetrics;
  readonly maxManifestBytes: number;
}

/** What the server needs to build its write side (kept as a factory so the read side does not
 * load the upload machinery). */
export type WriteSideFactory = (context: WriteContext) => WriteSide;

export interface RegistryServerOptions {
  readonly store: Store;
  /** Address to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** Default 5000; 0 = a free port. */
  readonly port?: number;
  /** Serve HTTPS with this PEM certificate chain and key. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Permit a non-loopback address without TLS. */
  readonly insecureListen?: boolean;
  /** The registry a name without `ns` and without a host of its own belongs to; default docker.io. */
  readonly defaultUpstream?: string;
  /** Pull-through: misses are fetched with this registry client (a Puller's: hosts, credentials,
   * TLS), tags asked again after `tagTtlMs` (default 0: every time, as Distribution's proxy). */
  readonly pullThrough?: {
    readonly client: RegistryClient;
    readonly tagTtlMs?: number;
    /** A string in the `User-Agent` of the client's requests: a request carrying it is this
     * server asking itself (the node's hosts.toml names the mirror for the very registry it
     * pulls from) and is answered from the store only, never pulled through again. */
    readonly loopToken?: string;
  };
  /** The write side (`--allow-push`); without it writes answer UNSUPPORTED. */
  readonly writes?: WriteSideFactory;
  /** Basic authentication (htpasswd); without it every client may read. */
  readonly auth?: BasicAuthenticator;
  /** Largest manifest served or accepted; default 4 MiB. */
  readonly maxManifestBytes?: number;
  /** A client must send its request headers within this time; default 15 s. */
  readonly headersTimeoutMs?: number;
  /** A connection with no bytes moving either way for this long is closed; default 60 s. */
  readonly idleTimeoutMs?: number;
  /** Most connections at once; default 4096. */
  readonly maxConnections?: number;
  /** Notable events (pull-through failures, stale tags served). */
  readonly log?: (line: string) => void;
  /** One line per request. */
  readonly accessLog?: (line: string) => void;
  readonly metrics?: ServerMetrics;
}

/** True for an address only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h.startsWith('::ffff:127.');
}

/**
 * TLS 1.3 suites in the order Go's crypto/tls (so Distribution) prefers them where the CPU has
 * AES instructions (go/src/crypto/tls/cipher_suites.go, `defaultCipherSuitesTLS13`): AES-128-GCM
 * first. OpenSSL's default puts AES-256-GCM first, which costs the server and the client (both
 * on the node's CPUs) more per byte; ChaCha20 still wins when the client ranks it first (a
 * client without AES instructions), as Go's server does. TLS 1.2 keeps Node's default list.
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_256_GCM_SHA384'];
const SERVER_CIPHERS = [...TLS13_SUITES, ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_'))].join(':');

/** Most repository names remembered; past it the memory starts afresh. */
const MAX_REMEMBERED_NAMES = 4096;

/** The signal of requests that nothing cancels. */
const NEVER_ABORTED = new AbortController().signal;

/** What the access log shows of a request target: printable, bounded. */
function shownTarget(url: string): string {
  const printable = url.replace(/[^\x21-\x7e]/g, '?');
  return printable.length > 300 ? `${printable.slice(0, 300)}…` : printable;
}

/**
 * `kimg registry serve`: the store served as an OCI distribution registry (read-only unless
 * uploads are allowed, optionally pulling through from an upstream). Loopback only unless TLS or
 * `insecureListen` is asked for; headers, bodies and idle time are bounded; one access-log line
 * per request, never with credentials.
 */
export class RegistryServer {
  readonly metrics: ServerMetrics;
  readonly defaultUpstream: string;
  private readonly server: Server;
  private readonly view: IndexView;
  private readonly read: ReadHandler;
  /** The read side without pull-through, for requests this server sent itself. */
  private readonly readLocal: ReadHandler;
  private readonly loopToken: string | undefined;
  private readonly writes: WriteSide | undefined;
  private readonly maxManifestBytes: number;
  private readonly scheme: 'http' | 'https';
  /** Valid repository names met (`ns` and name → parsed); invalid ones are not kept. */
  private readonly repositories = new Map<string, RepositoryName>();

  private constructor(private readonly options: RegistryServerOptions) {
    this.metrics = options.metrics ?? new ServerMetrics();
    this.defaultUpstream = checkHost(options.defaultUpstream ?? 'docker.io', '--default-upstream');
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    const content = new ContentReader(options.store, this.maxManifestBytes);
    const view = new IndexView(options.store);
    this.view = view;
    const referrers = new ReferrersIndex(content, this.maxManifestBytes);
    const upstream =
      options.pullThrough === undefined
        ? undefined
        : new PullThrough({
            store: options.store,
            content,
            client: options.pullThrough.client,
            metrics: this.metrics,
            onIndexChanged: () => view.invalidate(),
            ...(options.pullThrough.tagTtlMs !== undefined && { tagTtlMs: options.pullThrough.tagTtlMs }),
            ...(options.log !== undefined && { log: options.log }),
          });
    const counters = { bytesServed: (n: number) => this.metrics.bytesServed.inc({}, n) };
    this.read = new ReadHandler(view, content, referrers, this.defaultUpstream, counters, upstream);
    this.readLocal = new ReadHandler(view, content, referrers, this.defaultUpstream, counters, undefined);
    this.loopToken = options.pullThrough?.loopToken;
    this.writes = options.writes?.({
      store: options.store,
      content,
      view,
      referrers,
      metrics: this.metrics,
      maxManifestBytes: this.maxManifestBytes,
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const common = { maxHeaderSize: 16 * 1024, keepAliveTimeout: 65_000, requestTimeout: 0 };
    this.scheme = options.tls === undefined ? 'http' : 'https';
    this.server =
      options.tls === undefined
        ? createHttpServer(common, handler)
        : createHttpsServer(
            {
              ...common,
              cert: options.tls.cert,
              key: options.tls.key,
              minVersion: 'TLSv1.2',
              ciphers: SERVER_CIPHERS,
              honorCipherOrder: true,
              secureOptions: cryptoConstants.SSL_OP_PRIORITIZE_CHACHA,
            },
            handler,
          );
    this.server.headersTimeout = options.headersTimeoutMs ?? 15_000;
    // Idle sockets (slow readers and writers included) are closed.
    this.server.setTimeout(options.idleTimeoutMs ?? 60_000, (socket) => socket.destroy());
    this.server.maxConnections = options.maxConnections ?? 4096;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable || socket.destroyed) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
  }

  /** Checks the options, listens, and resolves once the port is bound. */
  static async start(options: RegistryServerOptions): Promise<RegistryServer> {
    const host = options.host ?? '127.0.0.1';
    if (!isLoopback(host) && options.tls === undefined && options.insecureListen !== true) {
      throw new KimgError(
        'ErrInsecureListen',
        `refusing to serve plain HTTP on ${host}, which other machines can reach: give --tls-cert and --tls-key, or --insecure-listen`,
      );
    }
    const server = new RegistryServer(options);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port ?? 5000, host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `http://127.0.0.1:PORT` (IPv6 addresses bracketed). */
  get url(): string {
    const address = this.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.scheme}://${host}:${address.port}`;
  }

  /** Stops listening; requests in progress get up to `graceMs` (default 0: closed at once). */
  async close(graceMs = 0): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.server.closeAllConnections();
    await closed;
    this.view.close();
    await this.writes?.close?.();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    // Only pull-through work is cancelled when the client goes; without it no request needs a
    // signal of its own (one per request is a measurable part of a manifest HEAD).
    const controller = this.options.pullThrough === undefined ? undefined : new AbortController();
    let routeName = 'other';
    let user: string | undefined;
    // Read now: a socket cut mid-request is detached from the request by the time it closes.
    const remote = this.options.accessLog === undefined ? '-' : (req.socket.remoteAddress ?? '-');
    res.once('close', () => {
      if (!res.writableFinished) controller?.abort(new Error('the client went away'));
      const status = res.writableFinished || res.headersSent ? res.statusCode : 0;
      this.metrics.requests.inc({ method: req.method ?? '', route: routeName, status: String(status) });
      const accessLog = this.options.accessLog;
      if (accessLog === undefined) return;
      const ms = (performance.now() - started).toFixed(1);
      accessLog(
        `${remote} ${user ?? '-'} "${req.method ?? ''} ${shownTarget(req.url ?? '')}" ${status}${res.writableFinished ? '' : ' (cut)'} ${ms}ms`,
      );
    });
    this.dispatch(
      req,
      res,
      controller?.signal ?? NEVER_ABORTED,
      (name) => (routeName = name),
      (name) => (user = name),
    ).catch((err: unknown) => this.fail(req, res, err));
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const head = req.method === 'HEAD';
    // The client went away (or its socket was cut) while sending: no one to answer, nothing to log.
    if (clientGone(req) && res.destroyed) return;
    if (err instanceof DistributionError) {
      if (err.status >= 400 && !req.readableEnded && req.method !== 'GET' && req.method !== 'HEAD')
        res.setHeader('connection', 'close');
      sendError(res, err, head);
      return;
    }
    if (err instanceof DigestError) {
      sendError(res, new DistributionError('DIGEST_INVALID', err.message), head);
      return;
    }
    if (res.headersSent) {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.options.log?.(
      `request ${req.method ?? ''} ${shownTarget(req.url ?? '')} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    res.setHeader('connection', 'close');
    sendError(res, new DistributionError('UNAVAILABLE', 'internal error', { status: 500 }), head);
  }

  private async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    signal: AbortSignal,
    setRoute: (name: string) => void,
    setUser: (name: string) => void,
  ): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1, q + 4097));
    const method = req.method ?? '';
    const readOnly = method === 'GET' || method === 'HEAD';
    if (!path.startsWith('/v2')) {
      setRoute(path === '/healthz' || path === '/readyz' || path === '/metrics' ? path.slice(1) : 'other');
      if (readOnly) req.resume();
      if (path === '/healthz' || path === '/readyz') {
        if (!readOnly) throw new DistributionError('UNSUPPORTED', `${path} takes GET`);
        send(res, 200, 'ok\n', { 'content-type': 'text/plain; charset=utf-8' }, method === 'HEAD');
        return;
      }
      if (path === '/metrics') {
        if (!readOnly) throw new DistributionError('UNSUPPORTED', '/metrics takes GET');
        setUser(await this.authenticate(req));
        send(
          res,
          200,
          this.metrics.render(),
          { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
          method === 'HEAD',
        );
        return;
      }
      throw new DistributionError('UNSUPPORTED', `no such endpoint: ${shownTarget(path).slice(0, 100)}`, {
        status: 404,
      });
    }
    const route = matchRoute(path);
    setRoute(route?.kind ?? 'other');
    if (readOnly) req.resume();
    if (route === undefined)
      throw new DistributionError('UNSUPPORTED', `no such endpoint: ${shownTarget(path).slice(0, 100)}`, {
        status: 404,
      });
    setUser(await this.authenticate(req));
    if (route.kind === 'base') {
      if (!readOnly) throw new DistributionError('UNSUPPORTED', '/v2/ takes GET');
      send(res, 200, '{}', {}, method === 'HEAD');
      return;
    }
    if (route.kind === 'catalog') {
      if (method !== 'GET') throw new DistributionError('UNSUPPORTED', '/v2/_catalog takes GET');
      await this.read.catalog(query, res);
      return;
    }
    const ns = query.get('ns') ?? undefined;
    const repo = this.repositoryOf(route.name, ns);
    const agent = req.headers['user-agent'];
    const read =
      this.loopToken !== undefined && typeof agent === 'string' && agent.includes(this.loopToken)
        ? this.readLocal
        : this.read;
    switch (route.kind) {
      case 'manifest':
        if (readOnly) return read.getManifest(repo, route.reference, req, res, signal);
        break;
      case 'blob':
        if (readOnly) return read.getBlob(repo, route.digest, req, res);
        break;
      case 'tags':
        if (method !== 'GET') throw new DistributionError('UNSUPPORTED', 'tags/list takes GET');
        return this.read.listTags(repo, query, res);
      case 'referrers':
        if (method !== 'GET') throw new DistributionError('UNSUPPORTED', 'referrers takes GET');
        return this.read.referrers(repo, route.digest, query, res);
      default:
        break;
    }
    if (this.writes === undefined) return refuseWrite(route.kind, req, res, query, this.maxManifestBytes);
    return this.writes.handle(route, repo, req, res, query);
  }

  /** `repositoryOf`, remembered: clients ask for the same few names over and over. */
  private repositoryOf(name: string, ns: string | undefined): RepositoryName {
    const key = ns === undefined ? name : `${ns}\n${name}`;
    let repo = this.repositories.get(key);
    if (repo === undefined) {
      repo = repositoryOf(name, ns, this.defaultUpstream);
      if (this.repositories.size >= MAX_REMEMBERED_NAMES) this.repositories.clear();
      this.repositories.set(key, repo);
    }
    return repo;
  }

  /** The user a request authenticated as ('-' without auth); UNAUTHORIZED otherwise. */
  private async authenticate(req: IncomingMessage): Promise<string> {
    const auth = this.options.auth;
    if (auth === undefined) return '-';
    const user = await auth.check(req.headers.authorization);
    if (user === undefined)
      throw new DistributionError('UNAUTHORIZED', 'authentication required', {
        headers: { 'www-authenticate': `Basic realm="${auth.realm}"` },
      });
    return user;
  }
}

export { API_VERSION_HEADER };
