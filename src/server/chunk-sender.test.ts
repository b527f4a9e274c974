import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CHUNK_BYTES, sendFileRange } from './chunk-sender.ts';

/** A body read whole; rejects when the connection breaks before it ended. */
function fetchBody(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    }).once('error', reject);
  });
}

describe('sendFileRange', () => {
  let dir: string;
  let file: string;
  const content = randomBytes(3 * CHUNK_BYTES + 12_345);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-chunk-sender-'));
    file = join(dir, 'blob');
    await writeFile(file, content);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A server answering every request with bytes `start`.. of the file, announcing `announced`. */
  async function serve<T>(
    start: number,
    length: number,
    announced: number,
    fn: (url: string) => Promise<T>,
  ): Promise<T> {
    const server = createServer((_req, res: ServerResponse) => {
      void (async () => {
        const handle = await open(file, 'r');
        try {
          res.writeHead(200, { 'content-length': announced });
          let counted = 0;
          await sendFileRange(res, handle, start, length, (n) => (counted += n));
          assert.ok(counted <= length);
        } finally {
          await handle.close();
        }
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  test('sends the whole file and any part of it, across chunk boundaries', async () => {
    const whole = await serve(0, content.length, content.length, fetchBody);
    assert.deepEqual(whole.body, content);
    const start = CHUNK_BYTES - 7;
    const length = 2 * CHUNK_BYTES + 100;
    const part = await serve(start, length, length, fetchBody);
    assert.deepEqual(part.body, content.subarray(start, start + length));
    const none = await serve(0, 0, 0, fetchBody);
    assert.equal(none.body.length, 0);
  });

  test('40 answers at once, past the large-chunk budget, each get the whole file', async () => {
    // 40 × 2 MiB of large chunks is more than the budget: the later answers go in small chunks.
    const bodies = await serve(0, content.length, content.length, (url) =>
      Promise.all(Array.from({ length: 40 }, () => fetchBody(url))),
    );
    for (const { body } of bodies) assert.deepEqual(body, content);
  });

  test('a file that ends early breaks the connection instead of ending the body cleanly', async () => {
    const length = content.length + 1000;
    await assert.rejects(serve(0, length, length, fetchBody));
  });
});
