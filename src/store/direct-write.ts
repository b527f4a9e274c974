import { constants, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from './errors.ts';

/** Bytes per direct write, and per buffer of the pool. */
const BLOCK_BYTES = 1 << 20;
/** O_DIRECT wants the memory, the length and the file offset aligned to the device's logical
 * block (512 bytes on common disks); 4096 covers every device Linux supports. */
const ALIGN = 4096;

/** Aligned buffers kept between ingests: memory this process already touched, whose reuse costs
 * no page faults. At most POOL_MAX (two per ingest: four ingests' worth). */
const pool: Buffer[] = [];
const POOL_MAX = 8;
/** Directories where O_DIRECT was refused (a filesystem without it: some FUSE, older tmpfs). */
const refusedIn = new Set<string>();

/**
 * A block of `BLOCK_BYTES` at an address aligned for O_DIRECT, found by trying a direct write
 * of one aligned length at each 16-byte step (JavaScript cannot read a buffer's address; the
 * allocator aligns to 16).
 */
function alignedBlock(fd: number): Buffer | undefined {
  const reused = pool.pop();
  if (reused !== undefined) return reused;
  const raw = Buffer.allocUnsafeSlow(BLOCK_BYTES + ALIGN);
  for (let offset = 0; offset < ALIGN; offset += 16) {
    try {
      writeSync(fd, raw, offset, ALIGN, 0);
      return raw.subarray(offset, offset + BLOCK_BYTES);
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL') throw err;
    }
  }
  return undefined;
}

function shortWrite(bytesWritten: number): Error {
  return Object.assign(new Error(`no space left on device (a direct write stopped after ${bytesWritten} bytes)`), {
    code: 'ENOSPC',
  });
}

interface Flight {
  readonly position: number;
  readonly buffer: Buffer;
  readonly done: Promise<void>;
}

/**
 * Writes a new file's bytes with O_DIRECT, from a few reused aligned buffers, straight to the
 * disk: no page-cache copy of a large blob (on a VM whose free memory goes back to the host, each
 * new page-cache page costs a fault in the host as well). Chunks are copied into the current
 * buffer; a full one is written on the thread pool while the next fills. The last partial block
 * goes through the ordinary descriptor at `finish`. The file is always a prefix of what was
 * taken up to the last successful write.
 */
export class DirectWriter {
  private buffer: Buffer;
  private filled = 0;
  /** File offset of `buffer[0]`. */
  private position = 0;
  private readonly flights: Flight[] = [];
  private failure: unknown;
  /** The lowest file offset whose write failed: the file is good up to here. */
  private goodUntil = Number.POSITIVE_INFINITY;

  private constructor(
    private readonly handle: FileHandle,
    first: Buffer,
    /** The second buffer, until the first write takes it. */
    private spare: Buffer | undefined,
  ) {
    this.buffer = first;
  }

  /** A writer for `path`, which the caller created empty; undefined when O_DIRECT cannot be
   * used here (the caller writes through the page cache as before). */
  static async open(path: string): Promise<DirectWriter | undefined> {
    const dir = dirname(path);
    if (process.platform !== 'linux' || refusedIn.has(dir)) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL') throw err;
      refusedIn.add(dir);
      return undefined;
    }
    let buffers: [Buffer | undefined, Buffer | undefined] = [undefined, undefined];
    try {
      buffers = [alignedBlock(handle.fd), alignedBlock(handle.fd)];
      // The alignment probe may have written a block at offset 0.
      if (buffers[0] !== undefined && buffers[1] !== undefined) await handle.truncate(0);
    } catch {
      // A probe that failed otherwise than on alignment (no space): this file goes the usual way.
      buffers = [undefined, undefined];
    }
    const [first, spare] = buffers;
    if (first === undefined || spare === undefined) {
      if (first === undefined) refusedIn.add(dir);
      await handle.close();
      return undefined;
    }
    return new DirectWriter(handle, first, spare);
  }

  /** Bytes taken so far. */
  get bytes(): number {
    return this.position + this.filled;
  }

  /** Copies `chunk` in (its memory is free again on return); a promise when the write in
   * progress must finish before more fits (or one failed). */
  take(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let done = 0;
    while (done < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - done, BLOCK_BYTES - this.filled);
      this.buffer.set(chunk.subarray(done, done + n), this.filled);
      this.filled += n;
      done += n;
      if (this.filled === BLOCK_BYTES) {
        const wait = this.launch();
        if (wait !== undefined) {
          const rest = chunk.subarray(done);
          return wait.then(() => (rest.byteLength > 0 ? this.take(Buffer.from(rest)) : undefined));
        }
      }
    }
    return undefined;
  }

  /** Sends the full buffer once the write before it is done (one write at a time, so that the
   * file stays a prefix of the blob whenever the process dies); a promise while that one runs. */
  private launch(): Promise<void> | undefined {
    const previous = this.flights[0];
    if (previous === undefined) {
      // Only the first write finds nothing in flight; later ones reuse the buffer written last.
      this.send(this.spare as Buffer);
      this.spare = undefined;
      return undefined;
    }
    return previous.done.then(() => {
      this.flights.shift();
      if (this.failure !== undefined) throw this.failure;
      this.send(previous.buffer);
    });
  }

  /** Starts writing the full buffer; `next` becomes the one to fill. */
  private send(next: Buffer): void {
    const buffer = this.buffer;
    const position = this.position;
    this.flights.push({
      position,
      buffer,
      done: this.handle.write(buffer, 0, BLOCK_BYTES, position).then(
        ({ bytesWritten }) => {
          // A short write to a regular file means the disk (or quota) filled up; what it wrote
          // is good, nothing after it is tried.
          if (bytesWritten < BLOCK_BYTES) this.failed(position + bytesWritten, shortWrite(bytesWritten));
        },
        (err: unknown) => this.failed(position, err),
      ),
    });
    this.position += BLOCK_BYTES;
    this.filled = 0;
    this.buffer = next;
  }

  private failed(goodUntil: number, err: unknown): void {
    this.failure ??= err;
    this.goodUntil = Math.min(this.goodUntil, goodUntil);
  }

  /** Waits for the writes in flight; then writes what is left through `fd` (the page cache).
   * Returns the file length that is known good, and the first failure if any. */
  async finish(fd: number): Promise<{ good: number; failure: unknown }> {
    await Promise.all(this.flights.map((f) => f.done));
    if (this.failure === undefined && this.filled > 0) {
      try {
        for (let done = 0; done < this.filled;)
          done += writeSync(fd, this.buffer, done, this.filled - done, this.position + done);
        this.position += this.filled;
        this.filled = 0;
      } catch (err) {
        this.failed(this.position, err);
      }
    }
    const good = this.failure === undefined ? this.position : this.goodUntil;
    await this.close();
    return { good, failure: this.failure };
  }

  /** Back to the pool, descriptor closed. */
  private async close(): Promise<void> {
    const buffers = [...this.flights.map((f) => f.buffer), this.buffer, ...(this.spare ? [this.spare] : [])];
    for (const buffer of buffers) if (pool.length < POOL_MAX) pool.push(buffer);
    this.flights.length = 0;
    await this.handle.close().catch(() => undefined);
  }
}
