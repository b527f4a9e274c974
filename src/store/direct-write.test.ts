import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DirectWriter } from './direct-write.ts';
import { openStore } from './index.ts';

const MiB = 1024 * 1024;

describe('DirectWriter', () => {
  let dir: string;
  before(async () => {
    // The project's own disk (.scratch/, ignored by git), not /tmp, which may be a tmpfs.
    const scratch = fileURLToPath(new URL('../../.scratch/', import.meta.url));
    await mkdir(scratch, { recursive: true });
    dir = await mkdtemp(join(scratch, 'direct-write-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A writer on a new empty file, with its ordinary descriptor. */
  async function writerFor(path: string): Promise<{ writer: DirectWriter; close: () => void }> {
    await writeFile(path, '');
    const fd = openSync(path, 'r+');
    const writer = await DirectWriter.open(path, fd);
    assert.ok(writer, `O_DIRECT is available in ${path}`);
    return { writer, close: () => closeSync(fd) };
  }

  it('writes blocks and an unaligned tail, in any chunking, as a plain write would', async () => {
    const bytes = randomBytes(5 * MiB + 12_345);
    for (const chunk of [512 * 1024, 100_000, MiB + 1, 3 * MiB, 7]) {
      const path = join(dir, `blob-${chunk}`);
      const expected = chunk === 7 ? bytes.subarray(0, 70_000) : bytes;
      const { writer, close } = await writerFor(path);
      for (let i = 0; i < expected.byteLength; i += chunk) await writer.take(expected.subarray(i, i + chunk));
      assert.equal(writer.bytes, expected.byteLength);
      const result = await writer.finish();
      close();
      assert.equal(result.failure, undefined);
      assert.equal(result.good, expected.byteLength);
      assert.deepEqual(await readFile(path), expected);
    }
  });

  it('is not opened when another file has taken the path since the caller opened it', async () => {
    const path = join(dir, 'replaced');
    await writeFile(path, '');
    const fd = openSync(path, 'r+');
    try {
      await writeFile(join(dir, 'other'), '');
      await rename(join(dir, 'other'), path);
      assert.equal(await DirectWriter.open(path, fd), undefined);
    } finally {
      closeSync(fd);
    }
  });

  it('copies a chunk before take returns: the producer may overwrite it at once, even while take waits', async () => {
    const path = join(dir, 'reused');
    const { writer, close } = await writerFor(path);
    const chunk = Buffer.alloc(700_000);
    const expected = createHash('sha256');
    for (let i = 0; i < 24; i++) {
      chunk.fill(i + 1);
      expected.update(chunk);
      const wait = writer.take(chunk);
      chunk.fill(0xee); // what a reused TLS read buffer does before any promise runs
      await wait;
    }
    await writer.finish();
    close();
    assert.equal(
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex'),
      expected.digest('hex'),
    );
  });

  it('a take while the previous one waits queues behind it; finish waits for both and is idempotent', async () => {
    const path = join(dir, 'pending');
    const { writer, close } = await writerFor(path);
    const bytes = randomBytes(9 * MiB + 5);
    let waiting: Promise<void> | undefined;
    let taken = 0;
    while (waiting === undefined && taken < 6 * MiB) {
      waiting = writer.take(bytes.subarray(taken, taken + 3 * MiB));
      taken += 3 * MiB;
    }
    assert.ok(waiting, 'a take had to wait for the disk');
    // As a resumed body does when the cut one's take still waits: its chunk queues, in order,
    // and its memory is free at once.
    const next = Buffer.from(bytes.subarray(taken));
    const queued = writer.take(next);
    next.fill(0);
    assert.ok(queued);
    const [one, two] = await Promise.all([writer.finish(), writer.finish()]);
    close();
    assert.deepEqual(one, two);
    assert.equal(one.failure, undefined);
    assert.deepEqual(await readFile(path), bytes);
    assert.throws(() => writer.take(Buffer.from('x')), /finished/);
  });

  it('buffers probed on one filesystem are not used on another', { skip: !existsSync('/dev/shm') }, async () => {
    const shm = await mkdtemp('/dev/shm/kimg-direct-');
    try {
      const bytes = randomBytes(3 * MiB + 5);
      for (const where of [shm, dir, shm, dir]) {
        const path = join(where, 'blob');
        await writeFile(path, '');
        const fd = openSync(path, 'r+');
        const writer = await DirectWriter.open(path, fd);
        if (writer !== undefined) {
          await writer.take(bytes);
          const result = await writer.finish();
          assert.equal(result.failure, undefined, `${where}: ${String(result.failure)}`);
        } else {
          await writeFile(path, bytes); // a filesystem without O_DIRECT: the caller's own write
        }
        closeSync(fd);
        assert.deepEqual(await readFile(path), bytes, where);
      }
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it("a store's large blob through O_DIRECT: abort keeps a prefix, the next ingest resumes and commits", async () => {
    const store = await openStore(join(dir, 'store'));
    const bytes = randomBytes(5 * MiB + 333);
    const d = {
      mediaType: 'application/octet-stream',
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      size: bytes.byteLength,
    };
    const first = await store.openIngest(d);
    for (let i = 0; i < 3 * MiB + 77; i += 64 * 1024)
      await first.write(bytes.subarray(i, Math.min(i + 64 * 1024, 3 * MiB + 77)));
    await first.abort({ keepPartial: true });
    const partial = await readFile(first.partialPath as string);
    assert.ok(partial.byteLength > 0 && partial.byteLength <= 3 * MiB + 77);
    assert.deepEqual(partial, bytes.subarray(0, partial.byteLength), 'the partial is a prefix');
    const second = await store.openIngest(d);
    assert.equal(second.offset, partial.byteLength);
    await second.write(bytes.subarray(second.offset));
    await second.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
  });
});
