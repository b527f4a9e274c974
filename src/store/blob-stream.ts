import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ParsedDigest } from '../digest/index.ts';
import { READ_NOFOLLOW } from './fs-utils.ts';

const CHUNK = 256 * 1024;

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
    open(this.path, READ_NOFOLLOW)
      .then(async (handle) => {
        this.handle = handle;
        if (!(await handle.stat()).isFile()) throw new Error(`${this.path} is not a regular file`);
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
