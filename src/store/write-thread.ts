/**
 * Hashing and writing of large blobs on a worker thread, so that the main thread only receives.
 *
 * Why: a pull is CPU-bound on a small node. Measured on a 1 GiB pull over TLS (2 cores, a local
 * registry on the other core), the main thread spent ≈ 2 CPU s per GiB: sha256 ≈ 0.6, the writes
 * into the page cache ≈ 0.6, TLS and the socket the rest. Moving the first two here lets the
 * receiving thread run at the socket's pace while another core hashes and writes.
 *
 * How: each ingest gets a ring of fixed slots in a SharedArrayBuffer. The main thread copies the
 * received bytes into the current slot; a full slot is posted to the thread, which writes it at
 * its file position, hashes it and posts the slot back. When every slot is out, `take` returns a
 * promise and the socket pauses (back-pressure, bounded memory: `SLOTS × SLOT_BYTES` per ingest).
 * Messages are handled in order, so the digest asked for after the last slot covers every byte.
 */
import { Worker } from 'node:worker_threads';

/** Bytes a slot holds: one write and one hash update each. */
export const SLOT_BYTES = 256 * 1024;
/** Slots per ingest: enough for the thread to lag a little behind a fast socket. */
const SLOTS = 4;

type ToThread =
  | { op: 'open'; id: number; fd: number; algorithm: string; ring: SharedArrayBuffer; slotBytes: number }
  | { op: 'write'; id: number; slot: number; length: number; position: number }
  | { op: 'digest'; id: number }
  | { op: 'close'; id: number };

type FromThread =
  | { op: 'written'; id: number; slot: number }
  | {
      op: 'failed';
      id: number;
      slot: number;
      error: { message: string; code?: string; errno?: number; syscall?: string };
    }
  | { op: 'digest'; id: number; hex: string }
  | { op: 'closed'; id: number };

/**
 * The thread's body. It runs from its source text (`eval`), so it may use nothing from this
 * module's scope: built-in modules come from `process.getBuiltinModule`.
 */
function threadMain(): void {
  const { parentPort } = process.getBuiltinModule('node:worker_threads');
  const { writeSync } = process.getBuiltinModule('node:fs');
  const { createHash } = process.getBuiltinModule('node:crypto');
  type Session = { fd: number; ring: Buffer; hash: ReturnType<typeof createHash>; failed: boolean; slotBytes: number };
  const sessions = new Map<number, Session>();
  parentPort?.on('message', (message: ToThread) => {
    if (message.op === 'open') {
      const ring = Buffer.from(message.ring);
      sessions.set(message.id, {
        fd: message.fd,
        ring,
        hash: createHash(message.algorithm),
        failed: false,
        slotBytes: message.slotBytes,
      });
      return;
    }
    const session = sessions.get(message.id);
    if (session === undefined) return;
    if (message.op === 'write') {
      const bytes = session.ring.subarray(
        message.slot * session.slotBytes,
        message.slot * session.slotBytes + message.length,
      );
      if (!session.failed) {
        try {
          for (let done = 0; done < bytes.byteLength;) {
            done += writeSync(session.fd, bytes, done, bytes.byteLength - done, message.position + done);
          }
          session.hash.update(bytes);
        } catch (err) {
          session.failed = true;
          const { message: text, code, errno, syscall } = err as NodeJS.ErrnoException;
          parentPort?.postMessage({
            op: 'failed',
            id: message.id,
            slot: message.slot,
            error: { message: text, code, errno, syscall },
          });
          return;
        }
      }
      parentPort?.postMessage({ op: 'written', id: message.id, slot: message.slot });
    } else if (message.op === 'digest') {
      parentPort?.postMessage({ op: 'digest', id: message.id, hex: session.hash.digest('hex') });
    } else {
      sessions.delete(message.id);
      parentPort?.postMessage({ op: 'closed', id: message.id });
    }
  });
}

interface Waiting {
  resolve(value: string | undefined): void;
  reject(err: Error): void;
}

/** The process's one write thread; started on first use, and it keeps the process alive only
 * while an ingest waits on it. */
class WriteThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly writers = new Map<number, ThreadWriter>();
  private pending = 0;

  open(writer: ThreadWriter, fd: number, algorithm: string, ring: SharedArrayBuffer): number {
    const id = this.nextId++;
    this.writers.set(id, writer);
    this.post({ op: 'open', id, fd, algorithm, ring, slotBytes: SLOT_BYTES });
    return id;
  }

  post(message: ToThread): void {
    this.start().postMessage(message);
  }

  /** Counts a request the caller waits on, so that the thread keeps the process alive meanwhile. */
  expect(): () => void {
    if (this.pending++ === 0) this.worker?.ref();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.pending === 0) this.worker?.unref();
    };
  }

  forget(id: number): void {
    this.writers.delete(id);
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Under a TypeScript loader the function's text may call the loader's `__name` helper.
    const source = `const __name = (f) => f;\n(${threadMain.toString()})();`;
    const worker = new Worker(source, { eval: true, name: 'kimg blob writer' });
    worker.unref();
    worker.on('message', (message: FromThread) => this.writers.get(message.id)?.received(message));
    const lost = (err: Error) => {
      this.worker = undefined;
      const writers = [...this.writers.values()];
      this.writers.clear();
      for (const writer of writers) writer.lost(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the blob writer thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}

let shared: WriteThread | undefined;

/**
 * Writes a blob's bytes at increasing file positions from `start` and hashes them, off the main
 * thread. Calls are sequential, as on an `Ingest`. The file descriptor must stay open until
 * `finish` or `close` has settled.
 */
export class ThreadWriter {
  private readonly thread: WriteThread;
  private readonly id: number;
  private readonly ring = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
  private readonly view = Buffer.from(this.ring);
  private readonly busy: boolean[] = Array<boolean>(SLOTS).fill(false);
  private slot = 0;
  private used = 0;
  private position: number;
  private error: Error | undefined;
  private slotFreed: (() => void) | undefined;
  private readonly replies: Waiting[] = [];
  private readonly releases: (() => void)[] = [];

  constructor(fd: number, algorithm: string, start = 0) {
    this.thread = shared ??= new WriteThread();
    this.position = start;
    this.id = this.thread.open(this, fd, algorithm, this.ring);
  }

  /** The first write error, once the thread has reported it. */
  get failure(): Error | undefined {
    return this.error;
  }

  /** Copies the chunk into the ring; returns a promise only when it must wait for a free slot. */
  take(chunk: Uint8Array): Promise<void> | undefined {
    if (this.error !== undefined) return Promise.reject(this.error);
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.busy[this.slot] === true) return this.waitThenTake(chunk.subarray(offset));
      const n = Math.min(SLOT_BYTES - this.used, chunk.byteLength - offset);
      this.view.set(chunk.subarray(offset, offset + n), this.slot * SLOT_BYTES + this.used);
      this.used += n;
      offset += n;
      if (this.used === SLOT_BYTES) this.send();
    }
    return undefined;
  }

  /** Sends what is left and resolves with the hex digest of every byte taken. */
  async finish(): Promise<string> {
    if (this.used > 0) {
      while (this.busy[this.slot] === true) await this.slotFree();
      this.send();
    }
    const hex = await this.ask({ op: 'digest', id: this.id });
    if (this.error !== undefined) throw this.error;
    return hex ?? '';
  }

  /** Waits for the thread to finish with this blob; after it the descriptor may be closed. */
  async close(): Promise<void> {
    try {
      await this.ask({ op: 'close', id: this.id });
    } catch {
      // The thread is gone: nothing of this blob runs any more.
    } finally {
      this.thread.forget(this.id);
    }
  }

  /** @internal A message from the thread. */
  received(message: FromThread): void {
    if (message.op === 'written' || message.op === 'failed') {
      if (message.op === 'failed') {
        this.error ??= Object.assign(new Error(message.error.message), message.error);
      }
      this.busy[message.slot] = false;
      this.releases.shift()?.();
      const freed = this.slotFreed;
      this.slotFreed = undefined;
      freed?.();
      return;
    }
    this.releases.shift()?.();
    this.replies.shift()?.resolve(message.op === 'digest' ? message.hex : undefined);
  }

  /** @internal The thread died: every wait fails. */
  lost(err: Error): void {
    this.error ??= err;
    for (const release of this.releases.splice(0)) release();
    for (const reply of this.replies.splice(0)) reply.reject(err);
    const freed = this.slotFreed;
    this.slotFreed = undefined;
    freed?.();
  }

  private send(): void {
    this.busy[this.slot] = true;
    this.releases.push(this.thread.expect());
    this.thread.post({ op: 'write', id: this.id, slot: this.slot, length: this.used, position: this.position });
    this.position += this.used;
    this.used = 0;
    this.slot = (this.slot + 1) % SLOTS;
  }

  private slotFree(): Promise<void> {
    return new Promise((resolve) => (this.slotFreed = resolve));
  }

  private async waitThenTake(rest: Uint8Array): Promise<void> {
    // The caller reuses its chunk as soon as `take` returns, so the rest is copied first.
    const copy = Buffer.from(rest);
    while (this.busy[this.slot] === true) {
      if (this.error !== undefined) throw this.error;
      await this.slotFree();
    }
    const more = this.take(copy);
    if (more !== undefined) await more;
  }

  private ask(message: ToThread): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      this.replies.push({ resolve, reject });
      this.releases.push(this.thread.expect());
      this.thread.post(message);
    });
  }
}
