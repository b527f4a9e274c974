import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { KimgError } from '../errors/index.ts';
import type { Algorithm } from './algorithms.ts';
import { parseDigest, type DigestOptions } from './digest.ts';

export type VerifyErrorCode = 'ErrDigestMismatch' | 'ErrSizeMismatch';

/** Content that did not match its descriptor: too many or too few bytes, or another hash. */
export class VerifyError extends KimgError<VerifyErrorCode> {
  readonly expectedDigest: string;
  readonly actualDigest: string | undefined;
  readonly expectedSize: number;
  readonly actualSize: number;

  constructor(
    code: VerifyErrorCode,
    detail: { expectedDigest: string; actualDigest?: string; expectedSize: number; actualSize: number },
  ) {
    const message =
      code === 'ErrDigestMismatch'
        ? `digest mismatch: expected ${detail.expectedDigest}, got ${detail.actualDigest}`
        : detail.actualSize > detail.expectedSize
          ? `size mismatch for ${detail.expectedDigest}: more than the ${detail.expectedSize} bytes declared`
          : `size mismatch for ${detail.expectedDigest}: expected ${detail.expectedSize} bytes, got ${detail.actualSize}`;
    super(code, message);
    this.expectedDigest = detail.expectedDigest;
    this.actualDigest = detail.actualDigest;
    this.expectedSize = detail.expectedSize;
    this.actualSize = detail.actualSize;
  }
}

/** The digest of `data`, `algorithm:hex`. */
export function digestOf(data: Uint8Array | string, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/**
 * Hashes and counts content as it arrives and fails the moment it exceeds the declared size,
 * so a hostile server cannot make us store (or even read) more than it promised.
 */
export class DigestVerifier {
  readonly expectedDigest: string;
  readonly expectedSize: number;
  private readonly hash: Hash;
  private readonly algorithm: Algorithm;
  private count = 0;

  /** `expected` is validated first: an invalid digest throws a DigestError here. */
  constructor(expected: string, size: number, options?: DigestOptions & { initial?: Hash; initialSize?: number }) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid size ${size} for ${expected}`);
    this.algorithm = parseDigest(expected, options).algorithm;
    this.expectedDigest = expected;
    this.expectedSize = size;
    this.hash = options?.initial ?? createHash(this.algorithm);
    this.count = options?.initialSize ?? 0;
  }

  get bytes(): number {
    return this.count;
  }

  /** Adds a chunk; throws ErrSizeMismatch as soon as the content is longer than declared. */
  update(chunk: Uint8Array): void {
    this.count += chunk.byteLength;
    if (this.count > this.expectedSize) {
      throw new VerifyError('ErrSizeMismatch', {
        expectedDigest: this.expectedDigest,
        expectedSize: this.expectedSize,
        actualSize: this.count,
      });
    }
    this.hash.update(chunk);
  }

  /** Checks size and digest at the end of the content; throws the VerifyError on a mismatch. */
  finish(): void {
    if (this.count !== this.expectedSize) {
      throw new VerifyError('ErrSizeMismatch', {
        expectedDigest: this.expectedDigest,
        expectedSize: this.expectedSize,
        actualSize: this.count,
      });
    }
    const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
    if (actual !== this.expectedDigest) {
      throw new VerifyError('ErrDigestMismatch', {
        expectedDigest: this.expectedDigest,
        actualDigest: actual,
        expectedSize: this.expectedSize,
        actualSize: this.count,
      });
    }
  }
}

/**
 * A pass-through stream that verifies what flows through it: it errors on the first byte past
 * the declared size and, at the end, on a short body or a digest mismatch.
 */
export function createVerifyStream(expected: string, size: number, options?: DigestOptions): Transform {
  const verifier = new DigestVerifier(expected, size, options);
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        verifier.update(chunk);
        callback(null, chunk);
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        verifier.finish();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
