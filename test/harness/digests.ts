/** Digest helpers for tests (the harness does not depend on kimg's own `src/digest`). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** `sha256:<hex>` of `data`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** `sha256:<hex>` of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
