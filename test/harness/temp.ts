/** Temporary directories that never outlive the test process, and a free loopback port. */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeAtExit } from './processes.ts';

export interface TempDir {
  path: string;
  /** Deletes the dir (idempotent). */
  remove(): Promise<void>;
}

/** A fresh dir under the OS temp dir, removed by `remove()` or at process exit. */
export async function makeTempDir(prefix = 'kimg-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const forget = removeAtExit(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true });
      forget();
    },
  };
}

/** Runs `fn` with a fresh temp dir and removes the dir afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await fn(dir.path);
  } finally {
    await dir.remove();
  }
}

/**
 * A loopback port that was free a moment ago. Prefer listening on port 0 directly; this is for
 * programs that must be told a port in advance (another process may take it meanwhile).
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
