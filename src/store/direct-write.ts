import { constants, fstatSync, writeSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from './errors.ts';
import { tempName } from './fs-utils.ts';

/** Bytes per direct write, and per buffer. */
const BLOCK_BYTES = 1 << 20;
/** O_DIRECT wants the memory, the length and the file offset aligned to the device's logical
 * block (512 bytes on common disks); 4096 covers every device Linux supports. */
const ALIGN = 4096;
/** Buffers kept per directory between ingests (two per writer: four ingests' worth). */
const POOL_MAX = 8;

/**
 * Aligned buffers kept between ingests, per directory: memory this process already touched,
 * whose reuse costs no page faults. Per directory because a buffer's alignment is only proven
 * for the filesystem it was probed on (tmpfs takes any alignment).
 */
const pools = new Map<string, Buffer[]>();
/** Directories where O_DIRECT was refused (a filesystem without it: some FUSE, older tmpfs). */
const refusedIn = new Set<string>();

/**
 * Two blocks of `BLOCK_BYTES` at addresses aligned for O_DIRECT on `dir`'s filesystem, from the
 * pool or new: JavaScript cannot read a buffer's address, so a new one's aligned offset is found
 * by a direct write of one aligned length at each 16-byte step (the allocator aligns to 16), into
 * a scratch file of its own (never a partial: a crash there would leave a partial that is not a
 * prefix). Undefined when the filesystem refuses every offset (EINVAL); other errors are thrown.
 */
async function alignedPair(dir: string): Promise<[Buffer, Buffer] | undefined> {
  const pool = pools.get(dir) ?? [];
  const found: Buffer[] = [];
  while (found.length < 2 && pool.length > 0) found.push(pool.pop() as Buffer);
  if (found.length === 2) return found as [Buffer, Buffer];
  const scratch = join(dir, tempName('direct-probe'));
  let probe: FileHandle;
  try {
    probe = await open(scratch, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
  } catch (err) {
    // What came from the pool goes back to it.
    release(dir, found);
    throw err;
  }
  try {
    await unlink(scratch);
    while (found.length < 2) {
      const raw = Buffer.allocUnsafeSlow(BLOCK_BYTES + ALIGN);
      let aligned: Buffer | undefined;
      for (let offset = 0; offset < ALIGN && aligned === undefined; offset += 16) {
        try {
          writeSync(probe.fd, raw, offset, ALIGN, 0);
          aligned = raw.subarray(offset, offset + BLOCK_BYTES);
        } catch (err) {
          if (errnoCode(err) !== 'EINVAL') throw err;
        }
      }
      if (aligned === undefined) return undefined;
      found.push(aligned);
    }
  } finally {
    await probe.close();
  }
  return found as [Buffer, Buffer];
}

function shortWrite(bytesWritten: number): Error {
  return Object.assign(new Error(`no space left on device (a direct write stopped after ${bytesWritten} bytes)`), {
    code: 'ENOSPC',
  });
}

/**
 * Writes a new file's bytes with O_DIRECT, straight to the disk from two reused aligned
 * buffers: no page-cache copy of a large blob (on a VM whose free memory goes back to the host,
 * each new page-cache page costs a fault in the host as well). Chunks are copied into one buffer
 * while the other is written on the thread pool; one write at a time, so that the file is a
 * prefix of what was taken whenever the process dies. The last partial block goes through the
 * ordinary descriptor at `finish`. Calls are sequential: `take` after `take` only once the
 * promise it returned (if any) settled; `finish` may come at any time and waits for them.
 */
export class DirectWriter {
  /** The buffer being filled. */
  private buffer: Buffer;
  /** The other buffer, when no write holds it. */
  private spare: Buffer | undefined;
  private filled = 0;
  /** File offset of `buffer[0]`. */
  private position = 0;
  private inflight: { readonly buffer: Buffer; readonly done: Promise<void>; settled: boolean } | undefined;
  /** A `take` waiting for the write in flight. */
  private pending: Promise<void> | undefined;
  private finished: Promise<{ good: number; failure: unknown }> | undefined;
  private failure: unknown;
  /** The lowest file offset whose write failed: the file is good up to here. */
  private goodUntil = Number.POSITIVE_INFINITY;

  private constructor(
    private readonly handle: FileHandle,
    private readonly dir: string,
    /** The ordinary descriptor: the tail, and any block the filesystem refuses to take direct. */
    private readonly bufferedFd: number,
    [first, spare]: [Buffer, Buffer],
  ) {
    this.buffer = first;
    this.spare = spare;
  }

  /** A writer for `path`, which the caller created empty and holds open as `bufferedFd`;
   * undefined when O_DIRECT cannot be used there (the caller writes through the page cache). */
  static async open(path: string, bufferedFd: number): Promise<DirectWriter | undefined> {
    const dir = dirname(path);
    if (process.platform !== 'linux' || refusedIn.has(dir)) return undefined;
    let pair: [Buffer, Buffer] | undefined;
    try {
      pair = await alignedPair(dir);
    } catch (err) {
      // O_DIRECT refused at open; anything else (no space for the probe) only for this file.
      if (errnoCode(err) === 'EINVAL') refusedIn.add(dir);
      return undefined;
    }
    if (pair === undefined) {
      refusedIn.add(dir);
      return undefined;
    }
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW);
    } catch {
      // Out of descriptors, say: this file goes through the page cache.
      release(dir, pair);
      return undefined;
    }
    // Opened again by path: it must be the file the caller holds (not one put at the path since).
    if (!sameFile(handle.fd, bufferedFd)) {
      await handle.close();
      release(dir, pair);
      return undefined;
    }
    return new DirectWriter(handle, dir, bufferedFd, pair);
  }

  /** Bytes taken so far. */
  get bytes(): number {
    return this.position + this.filled;
  }

  /**
   * Copies `chunk` in before returning (its memory is the caller's again at once); a promise
   * when the write in flight must finish before the rest fits. A take while an earlier one still
   * waits (its caller gave up on it: a body cut while paused for the disk, then resumed) queues
   * behind it, in order. Throws, taking nothing, once finished or after a failed write.
   */
  take(chunk: Uint8Array): Promise<void> | undefined {
    if (this.finished !== undefined) throw new Error('the direct writer is finished');
    if (this.failure !== undefined) throw this.failure;
    if (this.pending !== undefined) {
      const copy = Buffer.from(chunk);
      return this.queue(this.pending.then(() => this.takeAfterWrite(copy)));
    }
    let done = this.copyIn(chunk, 0);
    while (this.filled === BLOCK_BYTES) {
      if (this.inflight?.settled === true) {
        this.reclaim();
        // A failed write: what is taken stays taken; the failure surfaces here and at finish.
        if (this.failure !== undefined) return Promise.reject(this.failure);
      }
      if (this.inflight !== undefined) {
        return this.queue(this.takeAfterWrite(Buffer.from(chunk.subarray(done))));
      }
      this.send();
      done = this.copyIn(chunk, done);
    }
    return undefined;
  }

  /** Makes `work` the pending take until it settles. */
  private queue(work: Promise<void>): Promise<void> {
    const pending: Promise<void> = work.finally(() => {
      if (this.pending === pending) this.pending = undefined;
    });
    this.pending = pending;
    return pending;
  }

  /** Copies what fits of `source` from `from`; returns where it stopped. */
  private copyIn(source: Uint8Array, from: number): number {
    const n = Math.min(source.byteLength - from, BLOCK_BYTES - this.filled);
    if (n > 0) this.buffer.set(source.subarray(from, from + n), this.filled);
    this.filled += n;
    return from + n;
  }

  /** The rest of a take, once the write in flight is done. */
  private async takeAfterWrite(rest: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    let done = 0;
    for (;;) {
      if (this.filled === BLOCK_BYTES) {
        await this.settle();
        if (this.failure !== undefined) throw this.failure;
        this.send();
      }
      if (done === rest.byteLength) return;
      done = this.copyIn(rest, done);
    }
  }

  /** Starts writing the full buffer (nothing in flight); the spare becomes the one to fill. */
  private send(): void {
    const { buffer, position } = this;
    const done = this.handle.write(buffer, 0, BLOCK_BYTES, position).then(
      ({ bytesWritten }) => {
        // A short write to a regular file means the disk (or quota) filled up; what it wrote
        // is good, nothing after it is tried.
        if (bytesWritten < BLOCK_BYTES) this.failed(position + bytesWritten, shortWrite(bytesWritten));
      },
      (err: unknown) => {
        if (errnoCode(err) !== 'EINVAL') return this.failed(position, err);
        // Taken at open, refused now (a filesystem that checks alignment per write): this block
        // through the page cache, and no direct writes there from now on.
        refusedIn.add(this.dir);
        pools.delete(this.dir);
        try {
          for (let n = 0; n < BLOCK_BYTES;) n += writeSync(this.bufferedFd, buffer, n, BLOCK_BYTES - n, position + n);
        } catch (fallback) {
          this.failed(position, fallback);
        }
      },
    );
    const flight = { buffer, done, settled: false };
    void done.then(() => (flight.settled = true));
    this.inflight = flight;
    this.position += BLOCK_BYTES;
    this.filled = 0;
    this.buffer = this.spare as Buffer;
    this.spare = undefined;
  }

  /** Waits for the write in flight; its buffer is the spare again. */
  private async settle(): Promise<void> {
    if (this.inflight === undefined) return;
    await this.inflight.done;
    this.reclaim();
  }

  /** The write in flight has settled: its buffer is the spare again. */
  private reclaim(): void {
    const flight = this.inflight;
    if (flight === undefined) return;
    this.inflight = undefined;
    this.spare = flight.buffer;
  }

  private failed(goodUntil: number, err: unknown): void {
    this.failure ??= err;
    this.goodUntil = Math.min(this.goodUntil, goodUntil);
  }

  /**
   * Waits for a pending take and the write in flight, then writes what is left through the
   * ordinary descriptor. Returns the file length known good, and the first failure if any. The
   * buffers go back to the pool only once no write holds them. Idempotent.
   */
  finish(): Promise<{ good: number; failure: unknown }> {
    this.finished ??= this.finishNow();
    return this.finished;
  }

  private async finishNow(): Promise<{ good: number; failure: unknown }> {
    await this.pending?.catch(() => undefined);
    await this.settle();
    if (this.failure === undefined && this.filled > 0) {
      try {
        for (let n = 0; n < this.filled;)
          n += writeSync(this.bufferedFd, this.buffer, n, this.filled - n, this.position + n);
        this.position += this.filled;
        this.filled = 0;
      } catch (err) {
        this.failed(this.position, err);
      }
    }
    await this.handle.close().catch(() => undefined);
    release(this.dir, [this.buffer, this.spare as Buffer]);
    return { good: this.failure === undefined ? this.position : this.goodUntil, failure: this.failure };
  }
}

/** Do two descriptors name one file (device and inode)? */
function sameFile(a: number, b: number): boolean {
  const x = fstatSync(a, { bigint: true });
  const y = fstatSync(b, { bigint: true });
  return x.dev === y.dev && x.ino === y.ino;
}

function release(dir: string, buffers: readonly Buffer[]): void {
  if (refusedIn.has(dir)) return;
  const pool = pools.get(dir) ?? [];
  pools.set(dir, pool);
  for (const buffer of buffers) if (pool.length < POOL_MAX) pool.push(buffer);
}
