import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DigestError, VerifyError, digestOf } from '../digest/index.ts';
import { isKimgError } from '../errors/index.ts';
import { SMALL_INGEST_BYTES, openStore, type Ingest, type OpenIngestOptions, type Store } from './index.ts';
import type { Descriptor } from '../oci/index.ts';

const octet = 'application/octet-stream';
function descriptorOf(bytes: Uint8Array): { mediaType: string; digest: string; size: number } {
  return { mediaType: octet, digest: digestOf(bytes), size: bytes.byteLength };
}

async function writeInChunks(
  ingest: { write(c: Uint8Array): Promise<void> },
  bytes: Uint8Array,
  chunk = 64 * 1024,
): Promise<void> {
  for (let i = 0; i < bytes.byteLength; i += chunk) await ingest.write(bytes.subarray(i, i + chunk));
}

/** The resumable ingest (a partial file under ingest/), whatever the blob's size. */
function openFile(store: Store, d: Descriptor, options: OpenIngestOptions = {}): Promise<Ingest> {
  return store.openIngest(d, { partialFile: true, ...options });
}

/** Files in ingest/ that belong to a download (partials, metadata, locks). */
async function ingestLeftovers(store: Store): Promise<string[]> {
  return (await readdir(join(store.root, 'ingest'))).filter((n) => /\.(data|json|lock)$/.test(n));
}

describe('ingest', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-ingest-'));
    store = await openStore(join(dir, 'store'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes, verifies and commits into blobs/<alg>/<hex>, leaving nothing in ingest/', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17); // several write buffers and a tail
    const d = descriptorOf(bytes);
    const ingest = await openFile(store, d, {
      source: 'https://user:secret@registry.example/v2/x/blobs/y?X-Amz-Signature=abc',
    });
    assert.equal(ingest.offset, 0);
    assert.equal(ingest.resumed, false);
    assert.equal(ingest.alreadyPresent, false);
    await writeInChunks(ingest, bytes, 100_000);
    assert.equal(ingest.bytes, bytes.byteLength);
    await ingest.commit();
    const path = store.blobPath(d.digest);
    assert.equal(path, join(store.root, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
    assert.deepEqual(await readFile(path), bytes);
    assert.equal(await store.hasBlob(d.digest), true);
    assert.deepEqual(await store.readBlob(d.digest, bytes.byteLength), bytes);
    assert.deepEqual(await ingestLeftovers(store), []);
  });

  it('fails the moment more bytes than the descriptor declares arrive, and discards the partial', async () => {
    const bytes = randomBytes(200_000);
    const d = { ...descriptorOf(bytes), size: 150_000 };
    const ingest = await openFile(store, d);
    await ingest.write(bytes.subarray(0, 100_000));
    await assert.rejects(ingest.write(bytes.subarray(100_000, 165_536)), (err: unknown) => {
      assert.ok(err instanceof VerifyError);
      assert.equal(err.code, 'ErrSizeMismatch');
      assert.equal(err.actualSize, 165_536);
      return true;
    });
    assert.equal(await store.hasBlob(d.digest), false);
    assert.deepEqual(await ingestLeftovers(store), []);
    await ingest.abort(); // harmless after the failure
  });

  it('rejects a short body at commit', async () => {
    const bytes = randomBytes(1000);
    const d = descriptorOf(bytes);
    const ingest = await openFile(store, d);
    await ingest.write(bytes.subarray(0, 999));
    await assert.rejects(
      ingest.commit(),
      (err: unknown) => err instanceof VerifyError && err.code === 'ErrSizeMismatch',
    );
    assert.equal(await store.hasBlob(d.digest), false);
    assert.deepEqual(await ingestLeftovers(store), []);
  });

  it('rejects content with a flipped byte: no file at the final path, ingest cleaned (S1)', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const d = descriptorOf(bytes);
    const tampered = Buffer.from(bytes);
    tampered[1_000_000] = (tampered[1_000_000] ?? 0) ^ 0x01;
    const ingest = await openFile(store, d);
    await writeInChunks(ingest, tampered);
    await assert.rejects(ingest.commit(), (err: unknown) => {
      assert.ok(err instanceof VerifyError);
      assert.equal(err.code, 'ErrDigestMismatch');
      assert.equal(err.expectedDigest, d.digest);
      assert.equal(err.actualDigest, digestOf(tampered));
      return true;
    });
    assert.equal(existsSync(store.blobPath(d.digest)), false);
    assert.deepEqual(await ingestLeftovers(store), []);
    // A later, honest download still works.
    const retry = await openFile(store, d);
    assert.equal(retry.offset, 0);
    await writeInChunks(retry, bytes);
    await retry.commit();
    assert.equal(await store.hasBlob(d.digest), true);
  });

  it('resumes a partial kept by abort({ keepPartial: true }), re-hashing what is there', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 3);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d, { source: 'https://registry.example/v2/x/blobs/y?sig=secret' });
    await writeInChunks(first, bytes.subarray(0, 3 * 1024 * 1024 + 5));
    await first.abort({ keepPartial: true });
    const meta = JSON.parse(
      await readFile(join(store.root, 'ingest', `sha256-${d.digest.slice(7)}.json`), 'utf8'),
    ) as Record<string, unknown>;
    assert.equal(meta.digest, d.digest);
    assert.equal(meta.size, d.size);
    assert.equal(meta.source, 'https://registry.example/v2/x/blobs/y');
    assert.equal(typeof meta.startedAt, 'string');
    assert.equal(typeof meta.updatedAt, 'string');

    const second = await openFile(store, d);
    assert.equal(second.resumed, true);
    assert.equal(second.offset, 3 * 1024 * 1024 + 5);
    await writeInChunks(second, bytes.subarray(second.offset));
    await second.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
    assert.deepEqual(await ingestLeftovers(store), []);
  });

  it('a resumed partial that was wrong fails at commit and is removed', async () => {
    const bytes = randomBytes(300_000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    await first.write(randomBytes(100_000)); // not the blob's bytes
    await first.abort({ keepPartial: true });
    const second = await openFile(store, d);
    assert.equal(second.offset, 100_000);
    await second.write(bytes.subarray(100_000));
    await assert.rejects(
      second.commit(),
      (err: unknown) => err instanceof VerifyError && err.code === 'ErrDigestMismatch',
    );
    assert.deepEqual(await ingestLeftovers(store), []);
    const third = await openFile(store, d);
    assert.equal(third.offset, 0);
    await third.abort();
  });

  it('reset() discards a resumed partial when the server ignored Range', async () => {
    const bytes = randomBytes(2_000_000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    await first.write(bytes.subarray(0, 1_500_000));
    await first.abort({ keepPartial: true });
    const second = await openFile(store, d);
    assert.equal(second.offset, 1_500_000);
    await second.reset();
    assert.equal(second.offset, 0);
    assert.equal(second.bytes, 0);
    await writeInChunks(second, bytes); // the whole body, as a 200 answer sends it
    await second.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
  });

  it('reset() after small writes still gathered in memory starts the partial from nothing', async () => {
    const bytes = randomBytes(2_000_000);
    const d = descriptorOf(bytes);
    const ingest = await openFile(store, d);
    // Small writes are gathered in memory before they reach the partial file.
    await writeInChunks(ingest, bytes.subarray(0, 100_000), 10_000);
    await ingest.reset();
    assert.equal((await stat(ingest.partialPath as string)).size, 0);
    await writeInChunks(ingest, bytes);
    await ingest.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
  });

  it('abort() without keepPartial deletes the partial', async () => {
    const bytes = randomBytes(10_000);
    const d = descriptorOf(bytes);
    const ingest = await openFile(store, d);
    await ingest.write(bytes.subarray(0, 5000));
    await ingest.abort();
    assert.deepEqual(await ingestLeftovers(store), []);
    assert.equal((await openFile(store, d)).offset, 0);
  });

  it('a partial longer than the blob is discarded on open', async () => {
    const bytes = randomBytes(1000);
    const d = descriptorOf(bytes);
    await writeFile(join(store.root, 'ingest', `sha256-${d.digest.slice(7)}.data`), randomBytes(5000));
    const ingest = await openFile(store, d);
    assert.equal(ingest.offset, 0);
    await ingest.write(bytes);
    await ingest.commit();
    assert.equal(await store.hasBlob(d.digest), true);
  });

  it('a present blob opens as alreadyPresent: nothing to download', async () => {
    const bytes = randomBytes(4096);
    const d = descriptorOf(bytes);
    await store.putBlob(d, bytes);
    const ingest = await openFile(store, d);
    assert.equal(ingest.alreadyPresent, true);
    assert.equal(ingest.offset, d.size);
    await assert.rejects(ingest.write(bytes), (err: unknown) => isKimgError(err, 'ErrIngestClosed'));
    await ingest.commit();
    await ingest.abort();
    assert.equal(await store.hasBlob(d.digest), true);
  });

  it('verifyExisting re-hashes a present blob and replaces a corrupt one', async () => {
    const bytes = randomBytes(100_000);
    const d = descriptorOf(bytes);
    await store.putBlob(d, bytes);
    const tampered = Buffer.from(bytes);
    tampered[5] = (tampered[5] ?? 0) ^ 0x40;
    await writeFile(store.blobPath(d.digest), tampered);
    assert.equal((await openFile(store, d)).alreadyPresent, true, 'trusted by default (size matches)');
    const ingest = await openFile(store, d, { verifyExisting: true });
    assert.equal(ingest.alreadyPresent, false);
    await ingest.write(bytes);
    await ingest.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
    assert.equal((await openFile(store, d, { verifyExisting: true })).alreadyPresent, true);
  });

  it('refuses writes after commit with ErrIngestClosed', async () => {
    const bytes = randomBytes(100);
    const d = descriptorOf(bytes);
    const ingest = await openFile(store, d);
    await ingest.write(bytes);
    await ingest.commit();
    await assert.rejects(ingest.write(bytes), (err: unknown) => isKimgError(err, 'ErrIngestClosed'));
    await assert.rejects(ingest.commit(), (err: unknown) => isKimgError(err, 'ErrIngestClosed'));
    await ingest.abort();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
  });

  it('a second ingest of the same digest in one process waits, then finds the blob present', async () => {
    const bytes = randomBytes(1_000_000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    let secondOpened = false;
    const secondPromise = openFile(store, d).then((i) => {
      secondOpened = true;
      return i;
    });
    await first.write(bytes.subarray(0, 500_000));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(secondOpened, false, 'the second waits while the first holds the digest');
    await first.write(bytes.subarray(500_000));
    await first.commit();
    const second = await secondPromise;
    assert.equal(second.alreadyPresent, true);
  });

  it('a waiting ingest takes over when the first one aborts, resuming its partial', async () => {
    const bytes = randomBytes(1_000_000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    const secondPromise = openFile(store, d);
    await first.write(bytes.subarray(0, 400_000));
    await first.abort({ keepPartial: true });
    const second = await secondPromise;
    assert.equal(second.alreadyPresent, false);
    assert.equal(second.offset, 400_000);
    await second.write(bytes.subarray(400_000));
    await second.commit();
    assert.equal(await store.hasBlob(d.digest), true);
  });

  it('waiting for another ingest is abortable', async () => {
    const bytes = randomBytes(1000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    const controller = new AbortController();
    const waiting = openFile(store, d, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('pull cancelled')), 20);
    await assert.rejects(waiting, /pull cancelled/);
    await first.abort();
  });

  it('waiting for another ingest times out with ErrStoreLocked when asked to', async () => {
    const bytes = randomBytes(1000);
    const d = descriptorOf(bytes);
    const first = await openFile(store, d);
    await assert.rejects(openFile(store, d, { timeoutMs: 30 }), (err: unknown) => isKimgError(err, 'ErrStoreLocked'));
    await first.abort();
  });

  it('refuses invalid digests and sizes before touching the file system (S8)', async () => {
    for (const digest of [
      'sha256:../../etc/passwd',
      `sha256:${'A'.repeat(64)}`,
      'sha256:abc',
      `sha256:${'a'.repeat(63)}%2F`,
      `sha256:${'a'.repeat(63)}?`,
      '',
    ]) {
      await assert.rejects(store.openIngest({ mediaType: octet, digest, size: 1 }), DigestError);
      await assert.rejects(store.putBlob({ mediaType: octet, digest, size: 1 }, new Uint8Array(1)), DigestError);
    }
    await assert.rejects(store.openIngest({ mediaType: octet, digest: digestOf('x'), size: -1 }), RangeError);
  });

  it('blobs/ holds only verified content after all of the above', async () => {
    const names = await readdir(join(store.root, 'blobs', 'sha256'));
    for (const name of names) {
      const bytes = await readFile(join(store.root, 'blobs', 'sha256', name));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), name);
    }
    assert.ok((await stat(join(store.root, 'blobs', 'sha256'))).isDirectory());
  });
});

describe('putBlob, readBlob, openBlobStream', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-blob-'));
    store = await openStore(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('putBlob verifies before writing', async () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    const d = descriptorOf(bytes);
    await assert.rejects(
      store.putBlob(d, Buffer.from('{"schemaVersion":3}')),
      (err: unknown) => err instanceof VerifyError && err.code === 'ErrDigestMismatch',
    );
    await assert.rejects(
      store.putBlob({ ...d, size: d.size - 1 }, bytes),
      (err: unknown) => err instanceof VerifyError && err.code === 'ErrSizeMismatch',
    );
    assert.equal(await store.hasBlob(d.digest), false);
    await store.putBlob(d, bytes);
    await store.putBlob(d, bytes); // idempotent
    assert.deepEqual(await store.readBlob(d.digest, 100), bytes);
    assert.deepEqual(
      (await readdir(join(dir, 'ingest'))).filter((n) => n.startsWith('tmp-')),
      [],
    );
  });

  it('readBlob is bounded (S10) and verifies the content', async () => {
    const bytes = randomBytes(10_000);
    const d = descriptorOf(bytes);
    await store.putBlob(d, bytes);
    await assert.rejects(
      store.readBlob(d.digest, 9_999),
      (err: unknown) => isKimgError(err, 'ErrBlobTooLarge') && err.message.includes(d.digest),
    );
    const tampered = Buffer.from(bytes);
    tampered[0] = (tampered[0] ?? 0) ^ 0xff;
    await writeFile(store.blobPath(d.digest), tampered);
    await assert.rejects(
      store.readBlob(d.digest, 10_000),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && err.message.includes(d.digest),
    );
  });

  it('readBlob and openBlobFile of an absent blob are ErrBlobUnknown naming the blob and the store', async () => {
    const digest = digestOf('absent');
    // Each started only when asserted on: a rejection waiting unhandled fails the run.
    for (const attempt of [() => store.readBlob(digest, 10), () => store.openBlobFile(digest)]) {
      await assert.rejects(attempt, (err: unknown) => {
        assert.ok(isKimgError(err, 'ErrBlobUnknown'));
        assert.match(err.message, new RegExp(digest));
        assert.match(err.message, new RegExp(dir));
        return true;
      });
    }
    assert.equal(await store.blobSize(digest), undefined);
  });

  it('openBlobStream streams the blob, and with verify fails on corrupt content', async () => {
    const bytes = randomBytes(1_000_000);
    const d = descriptorOf(bytes);
    await store.putBlob(d, bytes);
    const chunks: Buffer[] = [];
    for await (const chunk of store.openBlobStream(d.digest, { verify: true })) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), bytes);

    const tampered = Buffer.from(bytes);
    tampered[999_999] = (tampered[999_999] ?? 0) ^ 1;
    await writeFile(store.blobPath(d.digest), tampered);
    await assert.rejects(
      async () => {
        for await (const _ of store.openBlobStream(d.digest, { verify: true })) {
          // drain
        }
      },
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'),
    );
    await assert.rejects(
      async () => {
        for await (const _ of store.openBlobStream(digestOf('nope'))) {
          // drain
        }
      },
      (err: unknown) => isKimgError(err, 'ErrBlobUnknown'),
    );
  });

  it('readBlobChunks reads from any offset into one buffer, with the errors of openBlobStream', async () => {
    const bytes = randomBytes(3_000_000);
    const d = descriptorOf(bytes);
    await store.putBlob(d, bytes);
    for (const start of [0, 1, 2_500_000, 3_000_000]) {
      const copies: Buffer[] = [];
      const seen = new Set<ArrayBuffer>();
      for await (const chunk of store.readBlobChunks(d.digest, start)) {
        seen.add(chunk.buffer as ArrayBuffer);
        copies.push(Buffer.from(chunk)); // the next chunk is read into the same memory
      }
      assert.deepEqual(Buffer.concat(copies), bytes.subarray(start));
      assert.ok(seen.size <= 1, 'every chunk is read into the same buffer');
    }
    await assert.rejects(
      async () => {
        for await (const _ of store.readBlobChunks(digestOf('nope'))) {
          // drain
        }
      },
      (err: unknown) => isKimgError(err, 'ErrBlobUnknown'),
    );
    for (const start of [-1, 0.5, Number.NaN])
      await assert.rejects(async () => {
        for await (const _ of store.readBlobChunks(d.digest, start)) {
          // drain
        }
      }, RangeError);
  });
});

describe('ingest of a small blob (in memory)', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-small-ingest-'));
    store = await openStore(join(dir, 'store'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes no partial, metadata or lock, and commits the verified bytes', async () => {
    const bytes = randomBytes(64 * 1024);
    const d = descriptorOf(bytes);
    const ingest = await store.openIngest(d, { source: 'https://registry.example/v2/x/blobs/y' });
    assert.equal(ingest.partialPath, undefined);
    assert.equal(await ingest.openPartial(), undefined);
    await writeInChunks(ingest, bytes, 16 * 1024);
    assert.deepEqual(await ingestLeftovers(store), [], 'nothing on disk before the commit');
    await ingest.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
    assert.deepEqual(
      await readdir(join(store.root, 'ingest')).then((n) => n.filter((f) => !f.startsWith('claims-'))),
      [],
    );
    assert.equal((await store.openIngest(d)).alreadyPresent, true);
  });

  it('refuses a byte more than declared, and a digest mismatch at commit, leaving nothing', async () => {
    const bytes = randomBytes(1000);
    const d = descriptorOf(bytes);
    const tooMany = await store.openIngest(d);
    await tooMany.write(bytes);
    await assert.rejects(tooMany.write(Buffer.from('x')), (err: unknown) => isKimgError(err, 'ErrSizeMismatch'));
    await assert.rejects(tooMany.commit(), (err: unknown) => isKimgError(err, 'ErrIngestClosed'));
    const wrong = await store.openIngest(d);
    await wrong.write(randomBytes(1000));
    await assert.rejects(wrong.commit(), (err: unknown) => isKimgError(err, 'ErrDigestMismatch'));
    const short = await store.openIngest(d);
    await short.write(bytes.subarray(0, 10));
    await assert.rejects(short.commit(), (err: unknown) => isKimgError(err, 'ErrSizeMismatch'));
    assert.equal(await store.hasBlob(d.digest), false);
    assert.deepEqual(await ingestLeftovers(store), []);
  });

  it('starts again from 0 after reset, and never resumes (abort keeps nothing)', async () => {
    const bytes = randomBytes(5000);
    const d = descriptorOf(bytes);
    const first = await store.openIngest(d);
    await first.write(bytes.subarray(0, 100));
    await first.abort({ keepPartial: true });
    const second = await store.openIngest(d);
    assert.equal(second.offset, 0);
    await second.write(randomBytes(300));
    await second.reset();
    await second.write(bytes);
    await second.commit();
    assert.deepEqual(await readFile(store.blobPath(d.digest)), bytes);
  });

  it('a second ingest of the same small digest in this process waits, then finds it present', async () => {
    const bytes = randomBytes(2000);
    const d = descriptorOf(bytes);
    const first = await store.openIngest(d);
    let settled = false;
    const second = store.openIngest(d).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(settled, false, 'waits for the first');
    await first.write(bytes);
    await first.commit();
    assert.equal((await second).alreadyPresent, true);
    // After an abort, the waiting one downloads itself; a timeout gives ErrStoreLocked.
    const other = descriptorOf(randomBytes(10));
    const holder = await store.openIngest(other);
    await assert.rejects(store.openIngest(other, { timeoutMs: 20 }), (err: unknown) =>
      isKimgError(err, 'ErrStoreLocked'),
    );
    const waiting = store.openIngest(other);
    await holder.abort();
    assert.equal((await waiting).alreadyPresent, false);
    await (await waiting).abort();
  });

  it('a blob over the limit, or one asked with partialFile, goes through a partial file', async () => {
    const big = randomBytes(SMALL_INGEST_BYTES + 1);
    const small = randomBytes(10);
    for (const [bytes, options] of [
      [big, {}],
      [small, { partialFile: true }],
    ] as const) {
      const ingest = await store.openIngest(descriptorOf(bytes), options);
      assert.notEqual(ingest.partialPath, undefined);
      await ingest.write(bytes);
      if (options.partialFile === true) {
        // A follower reads what was written; the handle outlives the rename at commit.
        const partial = await ingest.openPartial();
        assert.ok(partial !== undefined);
        try {
          await ingest.commit();
          assert.deepEqual((await partial.read(Buffer.alloc(bytes.length), 0, bytes.length, 0)).buffer, bytes);
        } finally {
          await partial.close();
        }
      } else await ingest.commit();
    }
  });
});
