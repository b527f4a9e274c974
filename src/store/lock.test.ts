import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LockTimeoutError, acquireLock, tryAcquireLock } from './lock.ts';

function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
  );
}

describe('file locks', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes the owner into the lock file and removes it on release', async () => {
    const path = join(dir, 'a.lock');
    const lock = await acquireLock(path, dir);
    const owner = JSON.parse(await readFile(path, 'utf8')) as { pid: number; host: string };
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.host, hostname());
    await lock?.release();
    await lock?.release(); // idempotent
    assert.equal(existsSync(path), false);
  });

  it('takes over a lock whose process is dead, or that is not a lock file at all', async () => {
    const path = join(dir, 'b.lock');
    await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), nonce: 'n', acquiredAt: 'then' }));
    const lock = await tryAcquireLock(path, dir);
    assert.ok(lock);
    await lock.release();
    await writeFile(path, '');
    const again = await tryAcquireLock(path, dir);
    assert.ok(again);
    await again.release();
  });

  it('a lock left by an earlier process that had our pid (another start time) is stale', async () => {
    const path = join(dir, 'c.lock');
    await writeFile(
      path,
      JSON.stringify({ pid: process.pid, startTime: '1', host: hostname(), nonce: 'n', acquiredAt: 'then' }),
    );
    const lock = await tryAcquireLock(path, dir);
    assert.ok(lock);
    await lock.release();
  });

  it('respects a live holder in another process and times out naming it', async () => {
    const path = join(dir, 'd.lock');
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await writeFile(path, JSON.stringify({ pid: child.pid, host: hostname(), nonce: 'n', acquiredAt: 'now' }));
      assert.equal(await tryAcquireLock(path, dir), undefined);
      await assert.rejects(acquireLock(path, dir, { timeoutMs: 50 }), (err: unknown) => {
        assert.ok(err instanceof LockTimeoutError);
        assert.equal(err.holder?.pid, child.pid);
        return true;
      });
      let satisfied = false;
      setTimeout(() => (satisfied = true), 30);
      assert.equal(await acquireLock(path, dir, { until: async () => satisfied }), undefined, 'until ends the wait');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('serialises callers within one process without polling the holder away', async () => {
    const path = join(dir, 'e.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const lock = await acquireLock(path, dir);
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 2));
        inside--;
        await lock?.release();
      }),
    );
    assert.equal(most, 1);
  });
});
