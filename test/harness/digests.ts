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

/** Every entry under `dir` (relative path → file digest, `dir`, or `link → target`), sorted: two
 * snapshots are equal exactly when nothing was added, removed or rewritten. */
export async function snapshotTree(dir: string): Promise<string[]> {
  const { lstat, readdir, readlink } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const info = await lstat(join(dir, path));
      if (info.isDirectory()) {
        lines.push(`${path} dir`);
        await walk(path);
      } else if (info.isSymbolicLink()) lines.push(`${path} link → ${await readlink(join(dir, path))}`);
      else lines.push(`${path} ${await sha256File(join(dir, path))} ${info.mtimeMs}`);
    }
  };
  await walk('');
  return lines;
}
