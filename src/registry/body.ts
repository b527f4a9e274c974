/** Bounded body reads (spec S10): a cap is an error at cap + 1 bytes, never a truncation. */
import type { Readable } from 'node:stream';

export const MANIFEST_LIMIT = 4 * 1024 * 1024;
export const TOKEN_LIMIT = 1024 * 1024;
export const ERROR_BODY_LIMIT = 64 * 1024;

export class BodyTooLargeError extends Error {
  readonly limit: number;
  /** Bytes seen, or the declared Content-Length, when the cap was hit. */
  readonly seen: number;
  constructor(limit: number, seen: number) {
    super(`body larger than the limit of ${limit} bytes (${seen} bytes seen or declared)`);
    this.limit = limit;
    this.seen = seen;
  }
}

/**
 * Reads a whole body into memory, failing as soon as it passes `limit` bytes (or at once when
 * `declaredLength` already does). The stream is destroyed on failure, which also closes an
 * endless chunked response.
 */
export async function readCapped(body: Readable, limit: number, declaredLength?: number): Promise<Buffer> {
  if (declaredLength !== undefined && declaredLength > limit) {
    body.destroy();
    throw new BodyTooLargeError(limit, declaredLength);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > limit) throw new BodyTooLargeError(limit, total);
      chunks.push(chunk);
    }
  } catch (err) {
    body.destroy();
    throw err;
  }
  return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, total);
}

/**
 * Reads at most `limit` bytes of a body we only want for an error message, then closes it.
 * Never fails: a broken body yields what arrived.
 */
export async function readForMessage(body: Readable, limit = ERROR_BODY_LIMIT): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = limit - total;
      chunks.push(chunk.byteLength > room ? chunk.subarray(0, room) : chunk);
      total += Math.min(room, chunk.byteLength);
      if (total >= limit) break;
    }
  } catch {
    // What arrived is enough for a message.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks, total);
}

/** Discards a body we do not need (redirects, retried responses) without reading much of it. */
export async function discard(body: Readable): Promise<void> {
  await readForMessage(body, ERROR_BODY_LIMIT);
}
