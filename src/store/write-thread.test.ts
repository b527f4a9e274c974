import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ThreadWriter } from './write-thread.ts';

const dir = mkdtempSync(join(tmpdir(), 'kimg-write-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Feeds `data` in random pieces, scribbling over each piece after `take` as a reused buffer is. */
async function feed(writer: ThreadWriter, data: Buffer, maxPiece: number): Promise<void> {
  for (let at = 0; at < data.length;) {
    const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * maxPiece));
    const piece = Buffer.from(data.subarray(at, at + n));
    const wait = writer.take(piece);
    piece.fill(0);
    if (wait !== undefined) await wait;
    at += n;
  }
}

describe('ThreadWriter', () => {
  it('writes and hashes every byte in order, whatever the piece sizes, with several blobs at once', async () => {
    await Promise.all(
      [1, 2, 3].map(async (i) => {
        const data = randomBytes(3 * 1024 * 1024 + i * 777);
        const path = join(dir, `blob-${i}`);
        const fd = openSync(path, 'w+');
        const writer = new ThreadWriter(fd, 'sha256');
        try {
          await feed(writer, data, i === 1 ? 20_000 : 600_000);
          assert.equal(await writer.finish(), createHash('sha256').update(data).digest('hex'));
        } finally {
          await writer.close();
          closeSync(fd);
        }
        assert.ok(readFileSync(path).equals(data));
      }),
    );
  });

  it('reports a failed write (here: a read-only descriptor) on a later take or on finish', async () => {
    const path = join(dir, 'read-only');
    closeSync(openSync(path, 'w'));
    const fd = openSync(path, 'r');
    const writer = new ThreadWriter(fd, 'sha256');
    try {
      const err = await feed(writer, randomBytes(2 * 1024 * 1024), 300_000)
        .then(() => writer.finish())
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof Error && (err as NodeJS.ErrnoException).code === 'EBADF', String(err));
    } finally {
      await writer.close();
      closeSync(fd);
    }
  });
});
