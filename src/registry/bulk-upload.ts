/**
 * A large upload body (`PATCH` or `PUT` of a blob) sent on a connection of its own through
 * Node's HTTP client, each chunk written out before the next is asked for.
 *
 * Why not undici for these bodies: undici holds on to a chunk for as long as the socket buffers
 * it, so every chunk had to be a fresh allocation. Measured on a registry-to-registry copy of a
 * GiB over TLS, those allocations (4096 buffers of 256 KiB) drove ≈ 37 full garbage collections
 * and ≈ 0.5 CPU s per GiB of collector threads. Knowing when a chunk is written lets the producer
 * reuse a handful of buffers instead. Responses are parsed by Node's own parser (llhttp).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import type { ResponseHeaders } from './headers.ts';
import { tlsOptionsFor, type ConnectOptions } from './lean-http.ts';
import { bareHostname } from './realm.ts';

/**
 * A request body of chunks whose memory the producer may reuse once the next chunk is asked
 * for: whoever sends it writes each chunk out (or copies it) before asking for the next.
 */
export interface ChunkedBody {
  readonly chunks: () => AsyncIterable<Uint8Array>;
}

export function isChunkedBody(body: unknown): body is ChunkedBody {
  return typeof body === 'object' && body !== null && typeof (body as ChunkedBody).chunks === 'function';
}

/** The chunks copied, for a sender that may hold on to them (undici, through a proxy). */
export function copiedChunks(body: ChunkedBody): Readable {
  async function* copies(): AsyncGenerator<Buffer> {
    for await (const chunk of body.chunks()) yield Buffer.from(chunk);
  }
  return Readable.from(copies(), { objectMode: false, highWaterMark: 1 << 20 });
}

export interface BulkUploadOptions {
  readonly url: URL;
  readonly method: 'PATCH' | 'PUT' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ChunkedBody;
  readonly signal?: AbortSignal;
  readonly connect: ConnectOptions;
  /** No byte written or read for this long (a stalled upload, a silent server): fails with
   * UND_ERR_BODY_TIMEOUT. */
  readonly idleTimeoutMs: number;
}

export interface BulkUploadResponse {
  readonly statusCode: number;
  readonly headers: ResponseHeaders;
  readonly body: Readable;
}

/** An error with a `code`, as the retry and resume logic reads it. */
class BulkUploadError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'BulkUploadError';
  }
}

/**
 * Sends the request and resolves with the response once its head is in (the body unread). A
 * response that comes before the whole body was sent (a refusal) stops the body and is returned.
 * Rejects with the body's own error when the body fails, and with a coded error otherwise.
 */
export function bulkUpload(options: BulkUploadOptions): Promise<BulkUploadResponse> {
  const { url, connect, signal } = options;
  const secure = url.protocol === 'https:';
  const host = bareHostname(url.hostname);
  const requestOptions: https.RequestOptions = {
    host,
    port: Number(url.port) || (secure ? 443 : 80),
    method: options.method,
    path: `${url.pathname}${url.search}`,
    headers: { ...options.headers, connection: 'close' },
    agent: false,
    timeout: connect.timeout,
    ...(connect.lookup !== undefined && { lookup: connect.lookup }),
    ...(secure && tlsOptionsFor(host, connect)),
  };
  return new Promise<BulkUploadResponse>((resolve, reject) => {
    let settled = false;
    let iterator: AsyncIterator<Uint8Array> | undefined;
    const stopBody = () => {
      const it = iterator;
      iterator = undefined;
      void it?.return?.()?.catch(() => undefined);
    };
    const settle = (err: Error | undefined, res?: BulkUploadResponse) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        stopBody();
        req.destroy();
        reject(err);
      } else resolve(res as BulkUploadResponse);
    };
    const onAbort = () =>
      settle(signal?.reason instanceof Error ? signal.reason : new BulkUploadError('ABORT_ERR', 'aborted'));

    const req = (secure ? https : http).request(requestOptions);
    req.on('error', (err) => settle(err));
    let connected = false;
    req.on('timeout', () => {
      settle(
        connected
          ? new BulkUploadError('UND_ERR_BODY_TIMEOUT', `upload idle for ${options.idleTimeoutMs} ms`)
          : new BulkUploadError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${connect.timeout} ms`),
      );
    });
    req.on('socket', (socket) => {
      // The connect timeout first, then the idle one.
      const onConnect = () => {
        connected = true;
        req.setTimeout(options.idleTimeoutMs);
      };
      if (socket.connecting) socket.once(secure ? 'secureConnect' : 'connect', onConnect);
      else onConnect();
    });
    req.on('response', (res) => {
      // A response before the body ended is a refusal: the rest of the body is not wanted.
      stopBody();
      res.on('error', () => undefined);
      settle(undefined, { statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });

    const written = (chunk: Uint8Array) =>
      new Promise<void>((done, fail) => {
        // The callback runs once the chunk is handed to the socket (encrypted, for TLS): its
        // memory is free again. A request destroyed meanwhile never calls it: `close` settles.
        const closed = () => fail(new BulkUploadError('UND_ERR_SOCKET', 'connection closed while sending the body'));
        req.once('close', closed);
        req.write(chunk, (err) => {
          req.off('close', closed);
          if (err) fail(err);
          else done();
        });
      });
    void (async () => {
      iterator = options.body.chunks()[Symbol.asyncIterator]();
      for (;;) {
        const it = iterator;
        if (it === undefined || settled) return;
        const next = await it.next();
        if (next.done === true) break;
        if (settled) return;
        await written(next.value);
      }
      iterator = undefined;
      req.end();
    })().catch((err: unknown) => {
      // After a response the body's failure no longer matters (the response says what happened).
      settle(err instanceof Error ? err : new BulkUploadError('UND_ERR_SOCKET', String(err)));
    });
  });
}
