import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ParsedDigest } from '../digest/index.ts';
import { openRegular } from './fs-utils.ts';

const CHUNK = 256 * 1024;
/** Bytes read at a time into the one buffer of {@link readBlobChunks}. */
const REUSED_CHUNK = 1 << 20;

/**
 * The bytes of a blob file from `start`, opened as {@link BlobReadStream} opens it, each chunk
 * read into one buffer again once the next is asked for: the caller must be done with a chunk by
 * then. A push reads a GiB this way without 1024 fresh allocations and the garbage collections
 * they drive (a Readable cannot do that: it reads ahead into the buffer its reader still holds).
 */
export async function* readBlobChunks(
  path: string,
  mapError: (err: unknown) => Error,
  start: number,
): AsyncGenerator<Buffer> {
  if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`a blob is read from byte ${start}`);
  let handle: FileHandle;
  try {
    ({ handle } = await openRegular(path));
  } catch (err) {
    throw mapError(err);
  }
  try {
    const buffer = Buffer.allocUnsafeSlow(REUSED_CHUNK);
    for (let position = start; ;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, REUSED_CHUNK, position));
      } catch (err) {
        throw mapError(err);
      }
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Streams a blob file without following a symlink at its path; with `verify`, hashes what it
 * reads and fails at the end when the content is not the digest's.
 */
export class BlobReadStream extends Readable {
  private handle: FileHandle | undefined;
  private position: number;
  /** One past the last byte to read. */
  private readonly limit: number;
  private readonly hash: Hash | undefined;

  constructor(
    private readonly path: string,
    private readonly parsed: ParsedDigest,
    private readonly mapError: (err: unknown) => Error,
    verify: boolean,
    start = 0,
    end?: number,
  ) {
    super({ highWaterMark: CHUNK });
    if (
      !Number.isSafeInteger(start) ||
      start < 0 ||
      (end !== undefined && (!Number.isSafeInteger(end) || end < start - 1))
    )
      throw new RangeError(`invalid byte range ${start}-${end ?? ''} of ${path}`);
    if (verify && (start !== 0 || end !== undefined)) throw new RangeError('a part of a blob cannot be verified');
    this.position = start;
    this.limit = end === undefined ? Number.MAX_SAFE_INTEGER : end + 1;
    this.hash = verify ? createHash(parsed.algorithm) : undefined;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    openRegular(this.path)
      .then(({ handle }) => {
        this.handle = handle;
        callback();
      })
      .catch((err: unknown) => callback(this.mapError(err)));
  }

  override _read(size: number): void {
    const handle = this.handle;
    if (handle === undefined) return;
    const buffer = Buffer.allocUnsafe(Math.min(Math.max(size, CHUNK), Math.max(this.limit - this.position, 1)));
    const length = Math.min(buffer.length, this.limit - this.position);
    handle.read(buffer, 0, length, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          if (this.hash !== undefined) {
            const actual = this.hash.digest('hex');
            if (actual !== this.parsed.encoded) {
              this.destroy(this.mapError(new Error(`content hashes to ${this.parsed.algorithm}:${actual}`)));
              return;
            }
          }
          this.push(null);
          return;
        }
        this.position += bytesRead;
        const chunk = buffer.subarray(0, bytesRead);
        this.hash?.update(chunk);
        this.push(chunk);
      },
      (err: unknown) => this.destroy(this.mapError(err)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    if (handle === undefined) {
      callback(error);
      return;
    }
    handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}
