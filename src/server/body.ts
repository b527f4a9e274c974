/** Request bodies read with a cap, so a client cannot make the server hold more than it allows. */
import type { IncomingMessage } from 'node:http';
import { DistributionError } from './errors.ts';

/** True when the request ended because its client went away (or the server cut the socket),
 * not because of what it sent. */
export function clientGone(req: IncomingMessage): boolean {
  return req.destroyed && !req.complete;
}

/** The whole body, at most `limit` bytes: a larger one is SIZE_INVALID (413) and the request is
 * left unread (the connection is then closed). */
export function readBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new DistributionError('SIZE_INVALID', `${what} is larger than the limit of ${limit} bytes`, {
        status: 413,
        detail: { limit },
      });
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('the client went away')));
  });
}
