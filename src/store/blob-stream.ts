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
  private position = 0;
  private readonly hash: Hash | undefined;

  constructor(
    private readonly path: string,
    private readonly parsed: ParsedDigest,
    private readonly mapError: (err: unknown) => Error,
    verify: boolean,
  ) {
    super({ highWaterMark: CHUNK });
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
    const buffer = Buffer.allocUnsafe(Math.max(size, CHUNK));
    handle.read(buffer, 0, buffer.length, this.position).then(
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
