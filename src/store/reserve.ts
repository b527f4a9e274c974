import { randomBytes } from 'node:crypto';
import { lstat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.ts';
import { createExclusive } from './fs-utils.ts';

/** At the store's root; a dot file, so that it is not content (see LayoutStore.init). */
export const RESERVE_FILE = '.kimg-reserve';
/** Enough for a lock file and an index.json of a few thousand images, written atomically. */
const RESERVE_BYTES = 1 << 20;
/** The reserve is (re)made only when the file system has at least this much free. */
const MAKE_WHEN_FREE = 8 * RESERVE_BYTES;

/** True for "no space left on device" and "disk quota exceeded", also as a cause. */
export function isNoSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const code = errnoCode(e);
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    e = typeof e === 'object' && 'cause' in e ? (e as { cause?: unknown }).cause : undefined;
  }
  return false;
}

/**
 * A little space kept aside in the store so that the commands that free space (`rmi`, `gc`) can
 * still take the index lock and rewrite `index.json` on a full file system: when such a write
 * fails for lack of space, the reserve is given back and the write tried once more. The reserve is
 * made again when the store is next prepared for writing, or after a gc, once there is room.
 * Random bytes, so that a compressing or deduplicating file system really keeps them.
 */
export class SpaceReserve {
  readonly path: string;

  constructor(
    private readonly root: string,
    private readonly tmpDir: string,
  ) {
    this.path = join(root, RESERVE_FILE);
  }

  /** Makes the reserve when it is missing and there is room; best effort, never throws. */
  async ensure(): Promise<void> {
    try {
      if (
        await lstat(this.path).then(
          () => true,
          () => false,
        )
      )
        return;
      const fs = await statfs(this.root);
      if (fs.bavail * fs.bsize < MAKE_WHEN_FREE) return;
      await createExclusive(this.tmpDir, this.path, randomBytes(RESERVE_BYTES), false);
    } catch {
      // No reserve this time: the store works without it until the disk is full.
    }
  }

  /** Runs `write`; if it fails for lack of space and a reserve was there to give back, runs it again. */
  async withSpace<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (!isNoSpace(err) || !(await this.release())) throw err;
      return write();
    }
  }

  private async release(): Promise<boolean> {
    try {
      await unlink(this.path);
      return true;
    } catch {
      return false;
    }
  }
}
