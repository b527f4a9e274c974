/**
 * Large blob bodies read on worker threads: the lean GET of lean-http.ts (the socket, the TLS
 * handshake and decryption, the HTTP framing) runs in lean-worker.ts, and the body comes back to
 * the event loop in whole buffers that change owner, where the caller hashes and writes them as
 * before. Everything that decides (auth, redirects, retries, Range, verification) stays here.
 *
 * Why: measured (perf, 8 × 64 MiB over TLS from a loopback registry), the event loop of a pull
 * over TLS spent more time on what a socket costs (reads, AES-GCM, a callback per TLS record of
 * ≤ 16 KiB) than on sha256; on one thread that is the pull's wall time, and a 2-core node has a
 * second core for it. A socket cannot move between threads, so the thread owns the connection;
 * the main thread resolves the host (its resolver and address policy) and hands over the
 * addresses, the CA certificates (a TLS context cannot move either) and the request.
 */
import { availableParallelism } from 'node:os';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { ResponseHeaders } from './headers.ts';
import { LeanHttpError } from './http1.ts';
import { PumpedBody } from './pumped-body.ts';
import { bareHostname } from './realm.ts';

/** A request for the thread (structured-clone data only). */
export interface ThreadGet {
  readonly type: 'get';
  readonly id: number;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Extra CA certificates (PEM), added to the system roots. */
  readonly ca?: readonly string[];
  readonly rejectUnauthorized?: boolean;
  /** What the host resolved to here; empty for an IP literal. */
  readonly addresses: readonly { address: string; family: number }[];
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export type ToThread =
  | ThreadGet
  /** A buffer given back to fill again. */
  | { readonly type: 'credit'; readonly id: number; readonly buffer: ArrayBuffer }
  /** Drop the request (its connection closes). */
  | { readonly type: 'close'; readonly id: number };

/** An error as it crosses threads: what retry decisions and messages read from it. */
export interface ThreadError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

export type FromThread =
  | { readonly type: 'head'; readonly id: number; readonly statusCode: number; readonly headers: ResponseHeaders }
  | { readonly type: 'data'; readonly id: number; readonly buffer: ArrayBuffer; readonly length: number }
  | { readonly type: 'end'; readonly id: number }
  | { readonly type: 'error'; readonly id: number; readonly error: ThreadError };

export interface ThreadRequestOptions {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly connect: {
    readonly ca?: readonly string[];
    readonly rejectUnauthorized?: boolean;
    readonly lookup?: LookupFunction;
    readonly timeout: number;
  };
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export interface ThreadResponse {
  readonly statusCode: number;
  readonly headers: ResponseHeaders;
  readonly body: ThreadBody;
}

/** Threads at most: one per core is all the decryption can use. */
const MAX_THREADS = Math.max(1, Math.min(4, availableParallelism()));

function rebuild(error: ThreadError): Error {
  const err =
    error.name === 'LeanHttpError' ? new LeanHttpError(error.code ?? '', error.message) : new Error(error.message);
  err.name = error.name;
  if (error.code !== undefined) (err as Error & { code?: string }).code = error.code;
  return err;
}

/** One worker thread and the requests it carries. */
class BlobThread {
  private readonly worker: Worker;
  readonly jobs = new Map<number, (msg: FromThread) => void>();
  failed = false;

  constructor(onGone: (thread: BlobThread) => void) {
    this.worker = startWorker();
    this.worker.unref();
    this.worker.on('message', (msg: FromThread) => this.jobs.get(msg.id)?.(msg));
    const gone = (err: Error) => {
      if (this.failed) return;
      this.failed = true;
      onGone(this);
      const error = { name: 'LeanHttpError', message: `blob thread failed: ${err.message}`, code: 'UND_ERR_SOCKET' };
      for (const [id, deliver] of [...this.jobs]) deliver({ type: 'error', id, error });
      this.jobs.clear();
    };
    this.worker.on('error', gone);
    this.worker.on('exit', (code) => gone(new Error(`exited with ${code}`)));
  }

  post(msg: ToThread, transfer?: ArrayBuffer[]): void {
    if (!this.failed) this.worker.postMessage(msg, transfer);
  }

  add(id: number, deliver: (msg: FromThread) => void): void {
    // A thread with work keeps the process alive; an idle one does not.
    if (this.jobs.size === 0) this.worker.ref();
    this.jobs.set(id, deliver);
  }

  remove(id: number): void {
    if (this.jobs.delete(id) && this.jobs.size === 0) this.worker.unref();
  }
}

/**
 * The worker: the built module next to this one, or from source (tests, benches: `.ts` run
 * through tsx, whose loader a worker thread does not inherit) with tsx registered first.
 */
function startWorker(): Worker {
  const name = 'kimg blob reader';
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./lean-worker.js', import.meta.url), { name });
  const target = new URL('./lean-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(target)}));`;
  return new Worker(code, { eval: true, name });
}

const threads: BlobThread[] = [];
let nextId = 1;

/** The thread with the fewest requests, a new one while there are fewer than MAX_THREADS busy. */
function pickThread(): BlobThread {
  let best: BlobThread | undefined;
  for (const thread of threads) if (best === undefined || thread.jobs.size < best.jobs.size) best = thread;
  if (best !== undefined && (best.jobs.size === 0 || threads.length >= MAX_THREADS)) return best;
  const thread = new BlobThread((gone) => threads.splice(threads.indexOf(gone), 1));
  threads.push(thread);
  return thread;
}

/** Every address of `host` by `lookup` (none for an IP literal: nothing to resolve). */
function resolve(host: string, lookup: LookupFunction | undefined): Promise<{ address: string; family: number }[]> {
  if (isIP(host) !== 0 || lookup === undefined) return Promise.resolve([]);
  return new Promise((done, fail) => {
    lookup(host, { all: true }, (err, addresses) => {
      if (err) fail(err);
      else
        done(
          (Array.isArray(addresses) ? (addresses as LookupAddress[]) : [{ address: addresses, family: 4 }]).map(
            (a) => ({ address: a.address, family: a.family }),
          ),
        );
    });
  });
}

/**
 * {@link leanGet} on a blob thread: resolves once the response head is in; the body stays with
 * the thread (a few buffers run ahead) until it is pumped or read. Same errors (codes) as leanGet.
 */
export async function threadGet(options: ThreadRequestOptions): Promise<ThreadResponse> {
  const { url, signal } = options;
  const host = bareHostname(url.hostname);
  const addresses = await resolve(host, options.connect.lookup);
  signal?.throwIfAborted();
  const thread = pickThread();
  const id = nextId++;
  return new Promise<ThreadResponse>((resolveHead, rejectHead) => {
    let body: ThreadBody | undefined;
    const onAbort = () => {
      const reason: unknown = signal?.reason;
      const err = reason instanceof Error ? reason : new LeanHttpError('ABORT_ERR', 'aborted');
      if (body !== undefined) {
        body.fail(err);
      } else {
        done();
        rejectHead(err);
      }
    };
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      if (thread.jobs.has(id)) thread.post({ type: 'close', id });
      thread.remove(id);
    };
    thread.add(id, (msg) => {
      if (body !== undefined) {
        body.received(msg);
        return;
      }
      if (msg.type === 'head') {
        body = new ThreadBody(thread, id, done);
        resolveHead({ statusCode: msg.statusCode, headers: msg.headers, body });
      } else {
        done();
        rejectHead(msg.type === 'error' ? rebuild(msg.error) : new LeanHttpError('UND_ERR_SOCKET', 'no response head'));
      }
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    thread.post({
      type: 'get',
      id,
      url: url.href,
      headers: options.headers,
      ...(options.connect.ca !== undefined && { ca: options.connect.ca }),
      ...(options.connect.rejectUnauthorized !== undefined && {
        rejectUnauthorized: options.connect.rejectUnauthorized,
      }),
      addresses,
      connectTimeoutMs: options.connect.timeout,
      headersTimeoutMs: options.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
    });
  });
}

/**
 * A body on a blob thread: {@link PumpedBody.pump} hands its buffers to a consumer (as
 * LeanBody's, but each chunk is a whole buffer of many socket reads), or it is read as an
 * ordinary Readable (for small error bodies). Destroying it closes the connection. Messages wait
 * in order while a chunk is with the consumer or the reader is full; a buffer goes back to the
 * thread (credit) once nobody needs its bytes.
 */
export class ThreadBody extends PumpedBody<FromThread, ArrayBuffer> {
  private started = false;
  /** A chunk is with the consumer, or nobody reads yet: what arrives waits. */
  private busy = true;
  /** (Readable mode) A buffer whose copy was pushed over the high-water mark: given back on `_read`. */
  private held: ArrayBuffer | undefined;

  constructor(
    private readonly thread: BlobThread,
    private readonly id: number,
    private readonly done: () => void,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  protected override readingStarted(): boolean {
    return this.started;
  }

  protected override startPump(): void {
    this.begin();
  }

  protected override release(): void {
    this.done();
  }

  private begin(): void {
    this.started = true;
    this.busy = false;
    this.drain();
  }

  override _read(): void {
    if (!this.started) {
      this.begin();
      return;
    }
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.busy = false;
    this.credit(held);
    this.drain();
  }

  /** A message from the thread for this body. */
  received(msg: FromThread): void {
    if (this.finished) return;
    if (this.busy) {
      this.waiting.push(msg);
      return;
    }
    this.handle(msg);
  }

  protected override handle(msg: FromThread): boolean {
    if (this.finished) return false;
    if (msg.type === 'data') {
      const chunk = Buffer.from(msg.buffer, 0, msg.length);
      const consumer = this.consumer;
      if (consumer === undefined) {
        if (this.push(Buffer.from(chunk))) {
          this.credit(msg.buffer);
        } else {
          // Read as a stream and full: what comes next waits (in order) until `_read` asks again.
          this.held = msg.buffer;
          this.busy = true;
        }
      } else if (this.consume(consumer, chunk, msg.buffer)) {
        this.credit(msg.buffer);
      } else {
        this.busy = true;
      }
    } else if (msg.type === 'end') {
      this.ended();
    } else if (msg.type === 'error') {
      this.fail(rebuild(msg.error));
    }
    return !this.busy && !this.finished;
  }

  protected override consumed(buffer: ArrayBuffer): void {
    this.busy = false;
    if (this.finished) return;
    this.credit(buffer);
    this.drain();
  }

  private credit(buffer: ArrayBuffer): void {
    if (!this.finished) this.thread.post({ type: 'credit', id: this.id, buffer }, [buffer]);
  }
}
