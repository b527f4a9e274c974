import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DirectWriter } from './direct-write.ts';

describe('DirectWriter', () => {
  let dir: string;
  before(async () => {
    // The project's own disk (.scratch/, ignored by git), not /tmp, which may be a tmpfs.
    const scratch = fileURLToPath(new URL('../../.scratch/', import.meta.url));
    await mkdir(scratch, { recursive: true });
    dir = await mkdtemp(join(scratch, 'direct-write-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function writeAll(path: string, bytes: Buffer, chunk: number): Promise<{ good: number; failure: unknown }> {
    await writeFile(path, '');
    const writer = await DirectWriter.open(path);
    assert.ok(writer, 'O_DIRECT is available on the project disk');
    for (let i = 0; i < bytes.byteLength; i += chunk) await writer.take(bytes.subarray(i, i + chunk));
    assert.equal(writer.bytes, bytes.byteLength);
    const fd = openSync(path, 'r+');
    try {
      return await writer.finish(fd);
    } finally {
      closeSync(fd);
    }
  }

  it('writes blocks and an unaligned tail, in any chunking, as a plain write would', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 12_345);
    for (const chunk of [512 * 1024, 100_000, 1024 * 1024 + 1, 7]) {
      const path = join(dir, `blob-${chunk}`);
      const result = await writeAll(path, chunk === 7 ? bytes.subarray(0, 70_000) : bytes, chunk);
      assert.equal(result.failure, undefined);
      assert.deepEqual(await readFile(path), chunk === 7 ? bytes.subarray(0, 70_000) : bytes);
      assert.equal(result.good, chunk === 7 ? 70_000 : bytes.byteLength);
    }
  });

  it('a chunk reused by its producer right after take is already copied', async () => {
    const path = join(dir, 'reused');
    await writeFile(path, '');
    const writer = await DirectWriter.open(path);
    assert.ok(writer);
    const chunk = Buffer.alloc(300_000);
    const expected: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      chunk.fill(i);
      expected.push(Buffer.from(chunk));
      await writer.take(chunk);
    }
    const fd = openSync(path, 'r+');
    await writer.finish(fd);
    closeSync(fd);
    assert.deepEqual(await readFile(path), Buffer.concat(expected));
  });
});
