/**
 * A lean HTTP/1.1 GET for large blob bodies: one connection per request (`Connection: close`),
 * read straight into one reused buffer (`onread`) and handed to a synchronous consumer.
 *
 * Why not undici for these bodies: measured on this machine (loopback registry, 8 × 128 MiB),
 * receiving a GiB through undici costs 2–5 CPU s (a fresh 64 KiB buffer per socket read, the
 * copy into llhttp's memory, stream bookkeeping, page faults), against 1.2 s for a socket that
 * reads into one buffer, sha256 included. On a 2-core node that CPU is the pull's wall time.
 * undici still does everything else (manifests, tokens, small blobs, proxies, keep-alive).
 *
 * Deliberately small: status line, headers, and `Content-Length`, `chunked` or close-delimited
 * framing; anything malformed fails with a `code`, never a guess. Error codes follow undici's
 * where one exists, so retry and resume logic treats both clients alike.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ResponseHeaders } from './headers.ts';
import { HEAD_END, LeanHttpError, checkTrailerLine, parseChunkSize, parseHead, type Framing } from './http1.ts';
import { PumpedBody, type ChunkConsumer } from './pumped-body.ts';
import { bareHostname } from './realm.ts';

export { LeanHttpError } from './http1.ts';

/** How a connection of its own is opened: `tls.connect` options for https (trusted roots,
 * `rejectUnauthorized`), `lookup` for both, and the connect timeout in ms. */
export interface ConnectOptions {
  readonly secureContext?: tls.SecureContext;
  readonly rejectUnauthorized?: boolean;
  readonly lookup?: net.LookupFunction;
  readonly timeout: number;
}

/** The TLS part of a connection of its own: SNI unless the host is an IP, the trusted roots,
 * verification on unless turned off, HTTP/1.1 only. */
export function tlsOptionsFor(host: string, connect: ConnectOptions): tls.ConnectionOptions {
  return {
    ...(net.isIP(host) === 0 && { servername: host }),
    ...(connect.secureContext !== undefined && { secureContext: connect.secureContext }),
    rejectUnauthorized: connect.rejectUnauthorized ?? true,
    ALPNProtocols: ['http/1.1'],
  };
}

export interface LeanRequestOptions {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly connect: ConnectOptions;
  readonly headersTimeoutMs: number;
  /** No body bytes for this long: the body fails with UND_ERR_BODY_TIMEOUT. */
  readonly bodyTimeoutMs: number;
}

export interface LeanResponse {
  readonly statusCode: number;
  readonly headers: ResponseHeaders;
  readonly body: LeanBody;
}

/** Bytes read from the socket at a time; also the largest chunk a consumer sees. */
const READ_BUFFER = 256 * 1024;
/** Status line plus headers of one response, as undici's default `maxHeaderSize`. */
const MAX_HEAD = 16 * 1024;
/**
 * Interim (1xx) responses skipped before the final one. Servers send one or two (100 Continue,
 * 103 Early Hints); a stream of them is an attack on the reader, refused past this many.
 */
const MAX_INTERIM = 8;
/** A chunk-size line or a trailer line. */
const MAX_CHUNK_LINE = 4096;
/** Trailer lines after the last chunk, and their bytes in all (each line is also within MAX_CHUNK_LINE). */
const MAX_TRAILERS = 32;
const MAX_TRAILER_BYTES = MAX_HEAD;

/** Sends a GET and resolves once the response head is in; the body is left on the socket. */
export function leanGet(options: LeanRequestOptions): Promise<LeanResponse> {
  const { url, signal } = options;
  const requestHead = formatRequest(url, options.headers);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const host = bareHostname(url.hostname);
  const body = new LeanBody(options.bodyTimeoutMs);
  const onread = {
    buffer: Buffer.allocUnsafeSlow(READ_BUFFER),
    callback: (n: number, buf: Uint8Array) => body.received(buf.subarray(0, n) as Buffer),
  };
  const common = {
    host,
    port,
    onread,
    ...(options.connect.lookup !== undefined && { lookup: options.connect.lookup }),
  };
  const socket =
    url.protocol === 'https:'
      ? tls.connect({ ...common, ...tlsOptionsFor(host, options.connect) })
      : net.connect(common);
  body.attach(socket);
  return body.start(
    requestHead,
    url.protocol === 'https:' ? 'secureConnect' : 'connect',
    options.connect.timeout,
    options.headersTimeoutMs,
    signal,
  );
}

function formatRequest(url: URL, headers: Readonly<Record<string, string>>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    // A CR or LF would let a value smuggle headers or a second request.
    if (/[\r\n\0]/.test(name) || /[\r\n\0]/.test(value) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new LeanHttpError('UND_ERR_INVALID_ARG', `invalid request header ${JSON.stringify(name)}`);
    }
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection' || lower === 'content-length' || lower === 'transfer-encoding')
      continue;
    lines.push(`${name}: ${value}`);
  }
  lines.push('connection: close', '', '');
  return lines.join('\r\n');
}

/**
 * The response: head first, then the body, which is either pumped to a {@link ChunkConsumer}
 * (the fast path, no copies) or read as an ordinary Readable (copies; for small error bodies).
 * Destroying it closes the connection.
 */
export class LeanBody extends PumpedBody<Buffer, undefined> {
  private socket: net.Socket | undefined;
  private head: Buffer | undefined = Buffer.alloc(0);
  private framing: Framing = { kind: 'close' };
  /** Chunked decoding: bytes of the current chunk still to come, or the line being read. */
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  /** Trailer lines and bytes seen so far (bounded). */
  private trailerLines = 0;
  private trailerBytes = 0;
  /** Interim (1xx) responses skipped so far. */
  private interim = 0;
  /** The deadline for the whole response head, interim responses included. */
  private headTimer: NodeJS.Timeout | undefined;
  private onHead: ((err: Error | undefined, res?: LeanResponse) => void) | undefined;
  private resumeWhenRead = false;
  /** Body bytes that arrived with the head, held until someone reads. */
  private leftover: Buffer | undefined;
  /** The error for the socket's idle timeout in the current phase (connect, head, body). */
  private idle: () => Error = () => new LeanHttpError('UND_ERR_SOCKET', 'idle');

  constructor(private readonly bodyTimeoutMs: number) {
    super({ highWaterMark: READ_BUFFER });
  }

  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.socketClosed());
  }

  start(
    requestHead: string,
    connectEvent: string,
    connectTimeoutMs: number,
    headersTimeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<LeanResponse> {
    const socket = this.socket as net.Socket;
    return new Promise((resolve, reject) => {
      const onAbort = () =>
        this.fail(signal?.reason instanceof Error ? signal.reason : new LeanHttpError('ABORT_ERR', 'aborted'));
      if (signal?.aborted) {
        onAbort();
      } else {
        signal?.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal?.removeEventListener('abort', onAbort));
      }
      this.onHead = (err, res) => {
        this.onHead = undefined;
        if (err !== undefined) reject(err);
        else resolve(res as LeanResponse);
      };
      socket.on('timeout', () => this.fail(this.idle()));
      this.idle = () => new LeanHttpError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${connectTimeoutMs} ms`);
      socket.setTimeout(connectTimeoutMs);
      socket.once(connectEvent, () => {
        // A deadline, not an idle timer: a server dribbling a byte at a time (or a stream of
        // interim responses) must not hold the request open for longer than this.
        socket.setTimeout(0);
        this.headTimer = setTimeout(
          () =>
            this.fail(
              new LeanHttpError('UND_ERR_HEADERS_TIMEOUT', `no complete response head within ${headersTimeoutMs} ms`),
            ),
          headersTimeoutMs,
        );
        socket.write(requestHead, 'latin1');
      });
    });
  }

  protected override readingStarted(): boolean {
    return this.readableFlowing !== null || this.readableLength > 0;
  }

  protected override startPump(): void {
    this.resumeWhenRead = false;
    if (this.finished) this.complete();
    else this.flow();
  }

  protected override release(): void {
    this.clearHeadTimer();
    this.socket?.destroy();
  }

  override _read(): void {
    if (this.resumeWhenRead) {
      this.resumeWhenRead = false;
      this.flow();
    }
  }

  /**
   * The onread callback: false pauses the socket. It runs inside the socket's read path, where
   * a throw would be an uncaught exception: everything unexpected fails the response instead.
   */
  received(data: Buffer): boolean {
    try {
      if (this.head !== undefined) return this.receivedHead(data);
      return this.receivedBody(data);
    } catch (err) {
      return this.failed(err instanceof Error ? err : new LeanHttpError('UND_ERR_SOCKET', String(err)));
    }
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== undefined) clearTimeout(this.headTimer);
    this.headTimer = undefined;
  }

  /** Collects response heads; interim (1xx) ones are skipped in a bounded loop. */
  private receivedHead(data: Buffer): boolean {
    let buffer = Buffer.concat([this.head as Buffer, data]);
    for (;;) {
      const end = buffer.indexOf(HEAD_END);
      if (end < 0 || end > MAX_HEAD) {
        if (end > MAX_HEAD || buffer.length > MAX_HEAD + HEAD_END.length)
          return this.failed(new LeanHttpError('UND_ERR_HEADERS_OVERFLOW', `response head over ${MAX_HEAD} bytes`));
        // Copied by concat: the read buffer is overwritten by the next read.
        this.head = buffer;
        return true;
      }
      const parsed = parseHead(buffer.subarray(0, end).toString('latin1'));
      buffer = buffer.subarray(end + HEAD_END.length);
      if (parsed.statusCode === 101)
        return this.failed(new LeanHttpError('UND_ERR_INVALID_ARG', 'unexpected 101 Switching Protocols'));
      if (parsed.statusCode < 200) {
        // llhttp: an HTTP/1.0 message ends the connection, so nothing may follow an interim one.
        if (parsed.version === '1.0')
          return this.failed(new LeanHttpError('HPE_CLOSED_CONNECTION', 'an interim (1xx) response from HTTP/1.0'));
        // An interim response (100 Continue, 103 Early Hints): the real head follows.
        if (++this.interim > MAX_INTERIM)
          return this.failed(new LeanHttpError('UND_ERR_INVALID_ARG', `over ${MAX_INTERIM} interim (1xx) responses`));
        continue;
      }
      return this.headDone(parsed.statusCode, parsed.headers, parsed.framing, buffer);
    }
  }

  private headDone(
    statusCode: number,
    headers: Record<string, string | string[]>,
    framing: Framing,
    rest: Buffer,
  ): boolean {
    this.clearHeadTimer();
    this.framing = framing;
    this.head = undefined;
    const socket = this.socket as net.Socket;
    this.idle = () => new LeanHttpError('UND_ERR_BODY_TIMEOUT', `no body bytes for ${this.bodyTimeoutMs} ms`);
    socket.setTimeout(this.bodyTimeoutMs);
    // Nobody reads yet: hold the socket until pump() or _read() asks.
    socket.pause();
    if (this.framing.kind === 'length' && this.framing.remaining === 0) this.finish();
    // The bytes after the head live in the read buffer, which the next read overwrites.
    if (rest.length > 0 && !this.finished) this.leftover = Buffer.from(rest);
    this.resumeWhenRead = true;
    this.onHead?.(undefined, { statusCode, headers, body: this });
    return false;
  }

  /** Starts the flow of body bytes: what came with the head first, then the socket. */
  private flow(): void {
    const leftover = this.leftover;
    this.leftover = undefined;
    if (leftover !== undefined && !this.received(leftover)) return;
    if (!this.finished) this.socket?.resume();
  }

  /** Applies the framing and hands the payload on; false asks for a pause. */
  private receivedBody(data: Buffer): boolean {
    if (this.finished || this.destroyed) return false;
    const framing = this.framing;
    if (framing.kind === 'length') {
      const payload = data.length > framing.remaining ? data.subarray(0, framing.remaining) : data;
      framing.remaining -= payload.length;
      const goOn = payload.length === 0 || this.deliver(payload);
      if (framing.remaining === 0) this.finish();
      return goOn && !this.finished;
    }
    if (framing.kind === 'close') return this.deliver(data);
    return this.receivedChunked(data);
  }

  private receivedChunked(data: Buffer): boolean {
    let goOn = true;
    let at = 0;
    while (at < data.length && !this.finished) {
      if (this.chunkState === 'data') {
        const n = Math.min(this.chunkLeft, data.length - at);
        goOn = this.deliver(data.subarray(at, at + n)) && goOn;
        this.chunkLeft -= n;
        at += n;
        if (this.chunkLeft === 0) this.chunkState = 'data-end';
        continue;
      }
      const newline = data.indexOf(10, at);
      const piece = data.subarray(at, newline < 0 ? data.length : newline + 1).toString('latin1');
      at += piece.length;
      this.line += piece;
      if (this.line.length > MAX_CHUNK_LINE)
        return this.failed(new LeanHttpError('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunked body: line too long'));
      if (newline < 0) break;
      const raw = this.line;
      this.line = '';
      // Every line ends in CRLF, and a CR nowhere else (llhttp refuses bare LF and bare CR).
      const line = raw.slice(0, -2);
      if (!raw.endsWith('\r\n') || line.includes('\r'))
        return this.failed(new LeanHttpError('HPE_CR_EXPECTED', 'chunked body: a line without CRLF'));
      if (this.chunkState === 'data-end') {
        if (line !== '')
          return this.failed(new LeanHttpError('HPE_STRICT', 'chunked body: missing CRLF after a chunk'));
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        this.chunkLeft = parseChunkSize(line);
        this.chunkState = this.chunkLeft === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.finish();
      } else {
        this.trailerBytes += raw.length;
        if (++this.trailerLines > MAX_TRAILERS || this.trailerBytes > MAX_TRAILER_BYTES)
          return this.failed(
            new LeanHttpError(
              'HPE_HEADER_OVERFLOW',
              `chunked body: trailers over ${MAX_TRAILERS} lines or ${MAX_TRAILER_BYTES} bytes`,
            ),
          );
        checkTrailerLine(line);
      }
    }
    return goOn && !this.finished;
  }

  private failed(err: Error): false {
    this.fail(err);
    return false;
  }

  /** Gives a chunk to the pump's consumer or the Readable; false = pause the socket. */
  private deliver(chunk: Buffer): boolean {
    const consumer = this.consumer;
    if (consumer === undefined) {
      if (this.push(Buffer.from(chunk))) return true;
      this.resumeWhenRead = true;
      return false;
    }
    // A TLS socket decrypts all it has read in one go and hands over every record, even after a
    // pause was asked for: those wait, copied, until the consumer is done with the one before.
    if (this.pendingWait !== undefined) {
      this.waiting.push(Buffer.from(chunk));
      return false;
    }
    return this.consume(consumer, chunk, undefined);
  }

  /** A chunk that waited, to the consumer. */
  protected override handle(chunk: Buffer): boolean {
    return this.consume(this.consumer as ChunkConsumer, chunk, undefined);
  }

  /** The consumer is ready again: the held chunks first, then the socket (or the end). */
  protected override consumed(): void {
    if (!this.drain()) return;
    if (!this.finished) this.socket?.resume();
    else if (this.pumping) this.complete();
  }

  private finish(): void {
    if (this.finished) return;
    this.socket?.setTimeout(0);
    this.ended();
  }

  private socketClosed(): void {
    if (this.finished) return;
    if (this.head !== undefined) {
      this.fail(new LeanHttpError('UND_ERR_SOCKET', 'other side closed before the response head'));
      return;
    }
    if (this.framing.kind === 'close') {
      this.finish();
      return;
    }
    this.fail(new LeanHttpError('UND_ERR_SOCKET', 'other side closed before the end of the body'));
  }

  /** As {@link PumpedBody.fail}; before the head, `leanGet`'s promise rejects instead. */
  override fail(err: Error): void {
    this.clearHeadTimer();
    const onHead = this.onHead;
    if (onHead === undefined) {
      super.fail(err);
      return;
    }
    this.finished = true;
    this.release();
    onHead(err);
    this.destroy();
  }
}
