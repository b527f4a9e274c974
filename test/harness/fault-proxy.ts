/**
 * A fault-injecting HTTP proxy in front of a real registry. Each request is shown to a rule
 * function (set at runtime) that may answer with faults: delays, hangs, cut or corrupted
 * bodies, wrong lengths, forged headers, error statuses, redirects, Range misbehaviour,
 * trickling. Everything else is forwarded unchanged (Range, Accept, Authorization included).
 * Every request is recorded so tests can also assert what was *not* sent, and concurrency is
 * tracked per path so tests can check a client's parallelism limits.
 */
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** Wait before going on (with the next fault or forwarding). */
  | { kind: 'delay'; ms: number }
  /** Never answer; the connection stays open until the client gives up or the proxy stops. */
  | { kind: 'hang' }
  /** Answer with this status without asking upstream. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Answer with a redirect without asking upstream; `location` may be relative. */
  | { kind: 'redirect'; location: string; status: number }
  /** Forward, then reset the connection after `bytes` body bytes. */
  | { kind: 'cutAfter'; bytes: number }
  /**
   * Forward `bytes` body bytes (headers at once, even for 0), then send nothing more until the
   * client goes away or the proxy is reset: a kill point that no clock decides. The request is
   * marked `held` and {@link FaultProxy.waitForHold} resolves.
   */
  | { kind: 'holdAt'; bytes: number }
  /** Forward with the body byte at `offset` inverted. */
  | { kind: 'flipByte'; offset: number }
  /** Forward with the declared Content-Length but only `bytes` of body (default half), then close. */
  | { kind: 'truncate'; bytes?: number }
  /** Forward, then send `bytes` more than the body; `chunked` drops Content-Length and sends chunked. */
  | { kind: 'extraBytes'; bytes: number; chunked?: boolean }
  /** Send the body chunked (no Content-Length). */
  | { kind: 'chunked' }
  | { kind: 'dropHeader'; name: string }
  | { kind: 'forgeHeader'; name: string; value: string }
  /** Forward without the Range header: upstream answers 200 with the whole body. */
  | { kind: 'ignoreRange' }
  /** Forward a Range request for a shifted start; the answer's Content-Range tells the truth. */
  | { kind: 'misalignedRange'; shift: number }
  /** Send the body at about this rate. */
  | { kind: 'trickle'; bytesPerSecond: number }
  /** Replace the body; Content-Length is the new length unless `declaredLength` says otherwise. */
  | { kind: 'replaceBody'; body: string | Buffer; declaredLength?: number }
  /** Reset the client's connection after `bytes` bytes of its *request* body; with `forward`,
   * those bytes reach upstream first (an upload cut mid-`PATCH`), else nothing is forwarded. */
  | { kind: 'cutRequest'; bytes: number; forward: boolean };

/** Constructors for faults, e.g. `fault.status(503)`, `fault.unauthorized('Bearer realm="…"')`. */
export const fault = {
  delay: (ms: number): Fault => ({ kind: 'delay', ms }),
  hang: (): Fault => ({ kind: 'hang' }),
  status: (status: number, headers?: Record<string, string>, body?: string | Buffer): Fault => ({
    kind: 'status',
    status,
    headers,
    body,
  }),
  unauthorized: (challenge: string): Fault => ({
    kind: 'status',
    status: 401,
    headers: { 'www-authenticate': challenge },
  }),
  forbidden: (): Fault => ({ kind: 'status', status: 403 }),
  notFound: (): Fault => ({ kind: 'status', status: 404 }),
  methodNotAllowed: (): Fault => ({ kind: 'status', status: 405 }),
  tooManyRequests: (retryAfter: number | string): Fault => ({
    kind: 'status',
    status: 429,
    headers: { 'retry-after': String(retryAfter) },
  }),
  serverError: (status: 500 | 502 | 503 | 504 = 500): Fault => ({ kind: 'status', status }),
  redirect: (location: string, status = 307): Fault => ({ kind: 'redirect', location, status }),
  cutAfter: (bytes: number): Fault => ({ kind: 'cutAfter', bytes }),
  holdAt: (bytes: number): Fault => ({ kind: 'holdAt', bytes: Math.max(0, bytes) }),
  flipByte: (offset: number): Fault => ({ kind: 'flipByte', offset }),
  truncate: (bytes?: number): Fault => ({ kind: 'truncate', bytes }),
  extraBytes: (bytes: number, chunked = false): Fault => ({ kind: 'extraBytes', bytes, chunked }),
  chunked: (): Fault => ({ kind: 'chunked' }),
  dropHeader: (name: string): Fault => ({ kind: 'dropHeader', name }),
  forgeHeader: (name: string, value: string): Fault => ({ kind: 'forgeHeader', name, value }),
  ignoreRange: (): Fault => ({ kind: 'ignoreRange' }),
  misalignedRange: (shift = -1): Fault => ({ kind: 'misalignedRange', shift }),
  trickle: (bytesPerSecond: number): Fault => ({ kind: 'trickle', bytesPerSecond }),
  replaceBody: (body: string | Buffer, declaredLength?: number): Fault => ({
    kind: 'replaceBody',
    body,
    declaredLength,
  }),
  cutRequest: (bytes: number, forward = false): Fault => ({ kind: 'cutRequest', bytes, forward }),
} as const;

/** What a rule sees of a request. */
export interface FaultRequest {
  method: string;
  /** Path without query. */
  path: string;
  /** Path and query. */
  url: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** 1-based: how many requests with this method and path the proxy has seen (this one included). */
  count: number;
  /** 1-based ordinal of this request among all requests since start or `reset()`. */
  seq: number;
}

export type FaultRule = (request: FaultRequest) => Fault | readonly Fault[] | undefined;

export interface RecordedRequest {
  seq: number;
  method: string;
  url: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Faults applied. */
  faults: Fault[];
  /** Status sent to the client (0 while none). */
  status: number;
  /** Body bytes sent to the client. */
  bytesSent: number;
  /** Request body bytes received from the client. */
  bytesReceived: number;
  /** Why forwarding failed, if it did. */
  error?: string;
  /** A `holdAt` fault reached its byte: the body is held there. */
  held?: boolean;
}

export interface FaultProxyOptions {
  /** The registry to forward to, e.g. `registry.url`. */
  upstream: string;
  /** PEM CA to trust for an https upstream. */
  ca?: string | Buffer;
  /** Serve HTTPS instead of HTTP. */
  tls?: { certPem: string; keyPem: string };
  /** Rewrite absolute `Location` headers that point at the upstream to point at the proxy. */
  rewriteLocation?: boolean;
  /** Rewrite the `realm` of `WWW-Authenticate` challenges. */
  rewriteRealm?: (realm: string) => string;
  /** Initial rule. */
  rule?: FaultRule;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  requests: RecordedRequest[];
  setRule(rule: FaultRule | undefined): void;
  /** Clears the rule, the records and counters; drops hanging connections. */
  reset(): void;
  /** The most requests whose path starts with `prefix` that were in flight at once. */
  maxConcurrent(prefix?: string): number;
  /** Requests whose path starts with `prefix` in flight now. */
  inFlight(prefix?: string): number;
  /**
   * Resolves with the first request since the last `reset()` whose path starts with `prefix`
   * and whose body a `holdAt` fault holds (at once if one already is).
   */
  waitForHold(prefix?: string): Promise<RecordedRequest>;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

function headerText(value: OutgoingHttpHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** `bytes=S-[E]` with S moved by `shift` (never below 0, never equal to S). */
function shiftRange(range: string, shift: number): string {
  const match = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
  if (!match?.[1]) return range;
  const start = Number(match[1]);
  let shifted = Math.max(0, start + shift);
  if (shifted === start) shifted = start + 1;
  return `bytes=${shifted}-${match[2] ?? ''}`;
}

/** Writes `chunk`, waiting for drain; false when the client went away. */
function write(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const settle = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok && !res.destroyed);
    };
    const onDrain = (): void => settle(true);
    const onClose = (): void => settle(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Writes `chunk` and waits until it reached the socket. */
function flush(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || chunk.length === 0) resolve();
    else res.write(chunk, () => resolve());
  });
}

/** Reads up to `bytes` of a request body (writing them upstream when given), then resets the
 * client's connection and drops the upstream request. */
async function cutRequestBody(req: IncomingMessage, bytes: number, upstream: http.ClientRequest | undefined) {
  let seen = 0;
  const socket = req.socket;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    const part = chunk.subarray(0, Math.max(0, bytes - seen));
    seen += chunk.length;
    if (upstream !== undefined && part.length > 0)
      await new Promise<void>((done) => upstream.write(part, () => done()));
    if (seen >= bytes) break;
  }
  if (upstream !== undefined) await sleep(50);
  upstream?.destroy();
  socket.resetAndDestroy();
}

/** Starts a proxy on 127.0.0.1 (random port) forwarding to `options.upstream`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const upstreamIsTls = upstream.protocol === 'https:';
  const agent = upstreamIsTls
    ? new https.Agent({ keepAlive: true, ca: options.ca })
    : new http.Agent({ keepAlive: true });
  let rule = options.rule;
  let seq = 0;
  let counts = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  /** In-flight start (+1) and end (-1) events, in order, for `maxConcurrent`. */
  let events: { path: string; delta: 1 | -1 }[] = [];
  let active = new Map<number, string>();
  const hanging = new Set<ServerResponse>();
  let holdWaiters: { prefix: string; resolve: (record: RecordedRequest) => void }[] = [];
  let proxyOrigin = '';

  /** Marks `record` held, wakes who waits for it, and waits until the client or a reset ends it. */
  function hold(res: ServerResponse, record: RecordedRequest): Promise<void> {
    record.held = true;
    holdWaiters = holdWaiters.filter((w) => {
      if (!record.path.startsWith(w.prefix)) return true;
      w.resolve(record);
      return false;
    });
    if (res.destroyed) return Promise.resolve();
    hanging.add(res);
    return new Promise((resolve) => res.once('close', () => resolve()));
  }

  async function sendBody(
    res: ServerResponse,
    record: RecordedRequest,
    source: AsyncIterable<Buffer> | Iterable<Buffer>,
    faults: readonly Fault[],
    declaredLength: number | undefined,
  ): Promise<void> {
    const flips = faults.flatMap((f) => (f.kind === 'flipByte' ? [f.offset] : []));
    const cut = faults.find((f) => f.kind === 'cutAfter');
    const held = faults.find((f) => f.kind === 'holdAt');
    const truncate = faults.find((f) => f.kind === 'truncate');
    const trickle = faults.find((f) => f.kind === 'trickle');
    const extra = faults.find((f) => f.kind === 'extraBytes');
    let limit = Infinity;
    if (cut) limit = cut.bytes;
    if (truncate) limit = Math.min(limit, truncate.bytes ?? Math.floor((declaredLength ?? 0) / 2));
    let offset = 0;
    if (held?.bytes === 0) {
      res.flushHeaders();
      await hold(res, record);
      return;
    }
    for await (const input of source) {
      let chunk = input;
      const end = offset + chunk.length;
      if (held !== undefined && end >= held.bytes) {
        const part = chunk.subarray(0, held.bytes - offset);
        await flush(res, part);
        record.bytesSent += part.length;
        await hold(res, record);
        return;
      }
      const inChunk = flips.filter((at) => at >= offset && at < end);
      if (inChunk.length) {
        chunk = Buffer.from(chunk);
        for (const at of inChunk) chunk[at - offset] = (chunk[at - offset] ?? 0) ^ 0xff;
      }
      if (end >= limit) {
        const part = chunk.subarray(0, limit - offset);
        await flush(res, part);
        record.bytesSent += part.length;
        // cutAfter resets the connection; truncate closes it cleanly after too few bytes.
        if (cut && limit === cut.bytes) res.socket?.resetAndDestroy();
        else res.socket?.end();
        return;
      }
      if (trickle) {
        const slice = Math.max(1, Math.floor(trickle.bytesPerSecond / 10));
        for (let at = 0; at < chunk.length; at += slice) {
          const piece = chunk.subarray(at, at + slice);
          if (!(await write(res, piece))) return;
          record.bytesSent += piece.length;
          await sleep((piece.length / trickle.bytesPerSecond) * 1000);
        }
      } else {
        if (!(await write(res, chunk))) return;
        record.bytesSent += chunk.length;
      }
      offset = end;
    }
    if (extra) {
      const junk = Buffer.alloc(extra.bytes, 0x5a);
      if (!(await write(res, junk))) return;
      record.bytesSent += junk.length;
      if (!extra.chunked) {
        // The bytes beyond Content-Length poison the connection: do not let it be reused.
        res.end();
        res.socket?.end();
        return;
      }
    }
    res.end();
  }

  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    faults: readonly Fault[],
  ): Promise<void> {
    const headers = withoutHopByHop(req.headers);
    headers.host = upstream.host;
    for (const f of faults) {
      if (f.kind === 'ignoreRange') {
        delete headers.range;
        delete headers['if-range'];
      } else if (f.kind === 'misalignedRange' && typeof headers.range === 'string') {
        headers.range = shiftRange(headers.range, f.shift);
      }
    }
    const upstreamReq = (upstreamIsTls ? https : http).request({
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    });
    const cutRequest = faults.find((f) => f.kind === 'cutRequest');
    if (cutRequest === undefined) req.pipe(upstreamReq);
    else {
      upstreamReq.on('error', () => undefined);
      await cutRequestBody(req, cutRequest.bytes, upstreamReq);
      return;
    }
    // A client that goes away mid-response takes the upstream request with it.
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
      upstreamReq.once('response', resolve);
      upstreamReq.once('error', reject);
    });

    const out = withoutHopByHop(upstreamRes.headers);
    const location = headerText(out.location);
    if (options.rewriteLocation && location?.startsWith(upstream.origin))
      out.location = proxyOrigin + location.slice(upstream.origin.length);
    const challenge = headerText(out['www-authenticate']);
    if (options.rewriteRealm && challenge) {
      const rewrite = options.rewriteRealm;
      out['www-authenticate'] = challenge.replace(
        /realm="([^"]*)"/,
        (_all, realm: string) => `realm="${rewrite(realm)}"`,
      );
    }
    for (const f of faults) {
      if (f.kind === 'dropHeader') delete out[f.name.toLowerCase()];
      else if (f.kind === 'forgeHeader') out[f.name.toLowerCase()] = f.value;
    }

    const replace = faults.find((f) => f.kind === 'replaceBody');
    const extra = faults.find((f) => f.kind === 'extraBytes');
    const bodyFaults = faults.some((f) =>
      ['cutAfter', 'holdAt', 'flipByte', 'truncate', 'extraBytes', 'trickle', 'replaceBody'].includes(f.kind),
    );
    const declaredHeader = headerText(out['content-length']);
    let declaredLength = declaredHeader === undefined ? undefined : Number(declaredHeader);
    if (replace) {
      upstreamRes.resume();
      declaredLength = replace.declaredLength ?? Buffer.byteLength(replace.body);
      out['content-length'] = String(declaredLength);
    }
    if (faults.some((f) => f.kind === 'chunked') || extra?.chunked) delete out['content-length'];
    if (extra && !extra.chunked) out.connection = 'close';

    record.status = upstreamRes.statusCode ?? 502;
    res.writeHead(record.status, upstreamRes.statusMessage, out);
    const noBody = req.method === 'HEAD' || record.status === 204 || record.status === 304;
    if (noBody) {
      upstreamRes.resume();
      res.end();
      return;
    }
    if (!bodyFaults) {
      upstreamRes.on('data', (chunk: Buffer) => (record.bytesSent += chunk.length));
      upstreamRes.pipe(res);
      upstreamRes.once('error', () => res.destroy());
      return;
    }
    const source: AsyncIterable<Buffer> | Iterable<Buffer> = replace ? [Buffer.from(replace.body)] : upstreamRes;
    try {
      await sendBody(res, record, source, faults, declaredLength);
    } finally {
      upstreamRes.destroy();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const parsed = new URL(url, 'http://proxy.invalid');
    const method = req.method ?? 'GET';
    const countKey = `${method} ${parsed.pathname}`;
    const count = (counts.get(countKey) ?? 0) + 1;
    counts.set(countKey, count);
    const record: RecordedRequest = {
      seq: ++seq,
      method,
      url,
      path: parsed.pathname,
      headers: req.headers,
      faults: [],
      status: 0,
      bytesSent: 0,
      bytesReceived: 0,
    };
    requests.push(record);
    req.on('data', (chunk: Buffer) => (record.bytesReceived += chunk.length));

    const activeMap = active;
    const eventLog = events;
    activeMap.set(record.seq, record.path);
    eventLog.push({ path: record.path, delta: 1 });
    res.once('close', () => {
      if (activeMap.delete(record.seq)) eventLog.push({ path: record.path, delta: -1 });
      hanging.delete(res);
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined);

    let faults: Fault[];
    try {
      const chosen = rule?.({
        method,
        path: parsed.pathname,
        url,
        query: parsed.searchParams,
        headers: req.headers,
        count,
        seq: record.seq,
      });
      faults =
        chosen === undefined ? [] : Array.isArray(chosen) ? [...(chosen as readonly Fault[])] : [chosen as Fault];
    } catch (err) {
      record.error = `rule threw: ${(err as Error).message}`;
      record.status = 500;
      res.writeHead(500, { 'content-type': 'text/plain' }).end(record.error);
      return;
    }
    record.faults = faults;

    for (const f of faults) {
      if (f.kind === 'delay') {
        await sleep(f.ms);
        if (res.destroyed) return;
      } else if (f.kind === 'hang') {
        hanging.add(res);
        req.resume();
        return;
      } else if (f.kind === 'status') {
        record.status = f.status;
        req.resume();
        const body =
          method === 'HEAD'
            ? undefined
            : (f.body ??
              JSON.stringify({ errors: [{ code: 'INJECTED', message: `fault proxy answered ${f.status}` }] }));
        const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', ...f.headers };
        if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
        res.writeHead(f.status, headers).end(body);
        return;
      } else if (f.kind === 'cutRequest' && !f.forward) {
        await cutRequestBody(req, f.bytes, undefined);
        return;
      } else if (f.kind === 'redirect') {
        record.status = f.status;
        req.resume();
        res.writeHead(f.status, { location: f.location, 'content-length': 0 }).end();
        return;
      }
    }

    try {
      await forward(req, res, record, faults);
    } catch (err) {
      record.error = (err as Error).message;
      if (!res.headersSent) {
        record.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`fault proxy: upstream failed: ${record.error}`);
      } else {
        res.destroy();
      }
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res);
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, listener)
    : http.createServer(listener);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  proxyOrigin = `${options.tls ? 'https' : 'http'}://${host}`;

  const dropHanging = (): void => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
  };
  const proxy: FaultProxy = {
    url: proxyOrigin,
    host,
    port,
    requests,
    setRule(next) {
      rule = next;
    },
    reset() {
      rule = undefined;
      seq = 0;
      counts = new Map();
      requests.length = 0;
      events = [];
      active = new Map();
      holdWaiters = [];
      dropHanging();
    },
    maxConcurrent(prefix = '/') {
      let current = 0;
      let max = 0;
      for (const event of events) {
        if (!event.path.startsWith(prefix)) continue;
        current += event.delta;
        max = Math.max(max, current);
      }
      return max;
    },
    inFlight(prefix = '/') {
      return [...active.values()].filter((path) => path.startsWith(prefix)).length;
    },
    waitForHold(prefix = '/') {
      const already = requests.find((r) => r.held === true && r.path.startsWith(prefix));
      if (already !== undefined) return Promise.resolve(already);
      return new Promise((resolve) => holdWaiters.push({ prefix, resolve }));
    },
    async stop() {
      dropHanging();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
  return proxy;
}
