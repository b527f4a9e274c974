/**
 * The thread side of lean-thread.ts: runs lean GETs (lean-http.ts: the socket, TLS, the HTTP
 * framing) on a worker thread and hands each body on to the event loop in whole buffers that
 * change owner (transferred, not copied), at most {@link BUFFERS} per body in flight: the main
 * thread gives each one back once it has used it (credit), and the socket waits meanwhile.
 */
import type { LookupFunction } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { parentPort } from 'node:worker_threads';
import { leanGet, type LeanBody } from './lean-http.ts';
import type { FromThread, ThreadError, ToThread, ThreadGet } from './lean-thread.ts';
import { errorCode } from './redact.ts';

/** Bytes per buffer handed to the main thread; a socket read (≤ 256 KiB, a TLS record ≤ 16 KiB)
 * is copied into it, so one message carries many reads. */
const BUFFER_BYTES = 512 * 1024;
/** Buffers per body: its memory bound here (with what the main thread holds). */
const BUFFERS = 4;

interface Job {
  readonly id: number;
  readonly abort: AbortController;
  body?: LeanBody;
  /** Buffers given back, ready to fill. */
  readonly free: ArrayBuffer[];
  allocated: number;
  /** The buffer being filled and how far. */
  current?: Buffer;
  filled: number;
  /** Bytes of a read that found no buffer free: copied, they go first into the next one. */
  overflow?: Buffer;
  /** Resolves the consumer's wait when a buffer comes back. */
  wake?: () => void;
}

const port = parentPort;
if (port === null) throw new Error('lean-worker.ts runs on a worker thread');
const jobs = new Map<number, Job>();
/** One TLS context per extra-CA set, as Transport keeps them on the main thread. */
const contexts = new Map<string, SecureContext>();

port.on('message', (msg: ToThread) => {
  const job = jobs.get(msg.id);
  switch (msg.type) {
    case 'get':
      void start(msg);
      break;
    case 'credit':
      if (job !== undefined) {
        job.free.push(msg.buffer);
        const wake = job.wake;
        job.wake = undefined;
        wake?.();
      }
      break;
    case 'close':
      if (job !== undefined) {
        jobs.delete(msg.id);
        job.abort.abort();
        job.body?.destroy();
        job.wake?.();
      }
      break;
  }
});

function post(msg: FromThread, transfer?: ArrayBuffer[]): void {
  port?.postMessage(msg, transfer);
}

function describe(err: unknown): ThreadError {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = errorCode(e);
  return { name: e.name, message: e.message, ...(code !== undefined && { code }) };
}

function context(ca: readonly string[]): SecureContext {
  const key = ca.join('\n');
  let found = contexts.get(key);
  if (found === undefined) {
    found = createSecureContext({ ca: [...rootCertificates, ...ca] });
    contexts.set(key, found);
  }
  return found;
}

/** The addresses the main thread resolved (with its resolver and address policy), as a lookup. */
function fixedLookup(addresses: ThreadGet['addresses']): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0];
    if (first === undefined) {
      callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), '', 0);
      return;
    }
    if (options.all === true)
      callback(
        null,
        addresses.map((a) => ({ ...a })),
      );
    else callback(null, first.address, first.family);
  };
}

async function start(msg: ThreadGet): Promise<void> {
  const job: Job = { id: msg.id, abort: new AbortController(), free: [], allocated: 0, filled: 0 };
  jobs.set(msg.id, job);
  try {
    const res = await leanGet({
      url: new URL(msg.url),
      headers: msg.headers,
      signal: job.abort.signal,
      connect: {
        ...(msg.ca !== undefined && msg.ca.length > 0 && { secureContext: context(msg.ca) }),
        ...(msg.rejectUnauthorized !== undefined && { rejectUnauthorized: msg.rejectUnauthorized }),
        ...(msg.addresses.length > 0 && { lookup: fixedLookup(msg.addresses) }),
        timeout: msg.connectTimeoutMs,
      },
      headersTimeoutMs: msg.headersTimeoutMs,
      bodyTimeoutMs: msg.bodyTimeoutMs,
    });
    if (!jobs.has(msg.id)) {
      res.body.destroy();
      return;
    }
    job.body = res.body;
    post({ type: 'head', id: msg.id, statusCode: res.statusCode, headers: res.headers });
    // At once: a TLS socket hands over what it has decrypted even when paused, and a body not
    // being pumped would take it as a Readable. The buffers bound what runs ahead of the reader.
    pump(job);
  } catch (err) {
    if (jobs.delete(msg.id)) post({ type: 'error', id: msg.id, error: describe(err) });
  }
}

/** Sends the filled part of the current buffer (its memory goes with it). */
function send(job: Job): void {
  const buffer = job.current;
  if (buffer === undefined || job.filled === 0) return;
  job.current = undefined;
  post({ type: 'data', id: job.id, buffer: buffer.buffer as ArrayBuffer, length: job.filled }, [
    buffer.buffer as ArrayBuffer,
  ]);
  job.filled = 0;
}

/** A buffer to fill: a given-back one, a new one within the bound, or none (wait). */
function nextBuffer(job: Job): Buffer | undefined {
  const free = job.free.pop();
  if (free !== undefined) return Buffer.from(free);
  if (job.allocated >= BUFFERS) return undefined;
  job.allocated++;
  // A buffer of its own (not a slice of the shared pool), so that it can change threads.
  return Buffer.allocUnsafeSlow(BUFFER_BYTES);
}

/** Copies `bytes` into the job's buffers, sending each as it fills; false when it must wait. */
function fill(job: Job, bytes: Buffer): boolean {
  for (let at = 0; at < bytes.length;) {
    job.current ??= nextBuffer(job);
    const current = job.current;
    if (current === undefined) {
      job.overflow = Buffer.from(bytes.subarray(at));
      return false;
    }
    const n = Math.min(bytes.length - at, current.length - job.filled);
    current.set(at === 0 && n === bytes.length ? bytes : bytes.subarray(at, at + n), job.filled);
    job.filled += n;
    at += n;
    if (job.filled === current.length) send(job);
  }
  return true;
}

/** Waits for a buffer to come back, then places what overflowed. */
async function makeRoom(job: Job): Promise<void> {
  for (;;) {
    if (!jobs.has(job.id)) throw new Error('closed');
    if (job.free.length > 0 || job.allocated < BUFFERS) {
      const overflow = job.overflow;
      job.overflow = undefined;
      if (overflow === undefined || fill(job, overflow)) return;
      continue;
    }
    await new Promise<void>((resolve) => (job.wake = resolve));
  }
}

function pump(job: Job): void {
  const body = job.body;
  if (body === undefined) return;
  body
    .pump((chunk) => (fill(job, chunk) ? undefined : makeRoom(job)))
    .then(
      () => {
        if (!jobs.delete(job.id)) return;
        send(job);
        post({ type: 'end', id: job.id });
      },
      (err: unknown) => {
        if (!jobs.delete(job.id)) return;
        // What arrived before the break is good: it goes first, so that a resume starts after it.
        send(job);
        const overflow = job.overflow;
        job.overflow = undefined;
        if (overflow !== undefined) {
          const copy = Buffer.allocUnsafeSlow(overflow.length);
          copy.set(overflow);
          post({ type: 'data', id: job.id, buffer: copy.buffer as ArrayBuffer, length: copy.length }, [
            copy.buffer as ArrayBuffer,
          ]);
        }
        post({ type: 'error', id: job.id, error: describe(err) });
      },
    );
}
