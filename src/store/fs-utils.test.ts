import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fsyncDir } from './fs-utils.ts';

describe('fsyncDir (group commit)', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('answers every concurrent caller, and callers after the group', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-fsyncdir-'));
    dirs.push(dir);
    await Promise.all(Array.from({ length: 50 }, () => fsyncDir(dir)));
    await fsyncDir(dir);
  });

  it('gives a failed fsync to the callers it covers, and the next group starts afresh', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'kimg-fsyncdir-'));
    dirs.push(parent);
    const missing = join(parent, 'not-yet');
    const results = await Promise.allSettled([fsyncDir(missing), fsyncDir(missing), fsyncDir(missing)]);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.equal((result.reason as NodeJS.ErrnoException).code, 'ENOENT');
    }
    await mkdir(missing);
    await fsyncDir(missing);
  });
});
