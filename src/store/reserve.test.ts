import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SpaceReserve, isNoSpace } from './reserve.ts';

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('SpaceReserve', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kimg-reserve-'));
    await mkdir(join(root, 'ingest'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('is made once there is room, and given back to retry a write that found no space', async () => {
    const reserve = new SpaceReserve(root, join(root, 'ingest'));
    await reserve.ensure();
    assert.equal((await stat(reserve.path)).size, 1 << 20);
    let calls = 0;
    const result = await reserve.withSpace(async () => {
      if (++calls === 1) throw noSpace();
      return 'written';
    });
    assert.equal(result, 'written');
    assert.equal(calls, 2);
    assert.equal(existsSync(reserve.path), false, 'the reserve was given back');
    // No reserve left: the next failure for lack of space is the caller's.
    await assert.rejects(
      reserve.withSpace(() => Promise.reject(noSpace())),
      { code: 'ENOSPC' },
    );
    await reserve.ensure();
    assert.equal(existsSync(reserve.path), true, 'made again once there is room');
  });

  it('does not retry other failures', async () => {
    const reserve = new SpaceReserve(root, join(root, 'ingest'));
    await reserve.ensure();
    let calls = 0;
    await assert.rejects(
      reserve.withSpace(() => {
        calls++;
        return Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' }));
      }),
      { code: 'EACCES' },
    );
    assert.equal(calls, 1);
    assert.equal(existsSync(reserve.path), true);
  });

  it('recognises ENOSPC and EDQUOT, also as the cause of another error', () => {
    assert.equal(isNoSpace(noSpace()), true);
    assert.equal(isNoSpace(Object.assign(new Error('quota'), { code: 'EDQUOT' })), true);
    assert.equal(isNoSpace(new Error('sink failed', { cause: new Error('wrapped', { cause: noSpace() }) })), true);
    assert.equal(isNoSpace(new Error('other')), false);
    assert.equal(isNoSpace(undefined), false);
  });
});
