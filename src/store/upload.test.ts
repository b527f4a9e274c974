import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VerifyError, digestOf } from '../digest/index.ts';
import { isKimgError } from '../errors/index.ts';
import { openStore, type Store } from './index.ts';

async function* chunksOf(bytes: Uint8Array, size: number, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) {
    if (failAfter !== undefined && i >= failAfter) throw new Error('the client went away');
    yield bytes.subarray(i, i + size);
  }
}

/** Upload files left in ingest/. */
async function uploadFiles(store: Store): Promise<string[]> {
  return (await readdir(join(store.root, 'ingest'))).filter((n) => n.endsWith('-upload'));
}

describe('openUpload', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-upload-'));
    store = await openStore(join(dir, 'store'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('appends in runs (tiny and large chunks gathered into batched writes) and commits verified', async () => {
    const bytes = randomBytes(1_500_000);
    const upload = await store.openUpload();
    await upload.append(chunksOf(bytes.subarray(0, 100_000), 10));
    assert.equal(upload.size, 100_000);
    await upload.append(chunksOf(bytes.subarray(100_000), 400_000));
    assert.equal(upload.size, bytes.byteLength);
    const digest = digestOf(bytes);
    await upload.commit(digest, { size: bytes.byteLength });
    assert.deepEqual(await readFile(store.blobPath(digest)), bytes);
    assert.deepEqual(await uploadFiles(store), []);
    await assert.rejects(upload.append(chunksOf(bytes, 10)), (err) => isKimgError(err, 'ErrIngestClosed'));
  });

  it('keeps what arrived before the source failed, so the upload resumes from size', async () => {
    const bytes = randomBytes(300_000);
    const upload = await store.openUpload();
    await assert.rejects(upload.append(chunksOf(bytes, 10_000, 120_000)), /went away/);
    assert.equal(upload.size, 120_000);
    await upload.append(chunksOf(bytes.subarray(upload.size), 10_000));
    await upload.commit(digestOf(bytes));
    assert.deepEqual(await store.readBlob(digestOf(bytes), bytes.byteLength), bytes);
  });

  it('refuses a digest or size mismatch and removes the file; nothing reaches blobs/', async () => {
    const bytes = randomBytes(50_000);
    const wrong = await store.openUpload();
    await wrong.append(chunksOf(bytes, 5000));
    const claimed = digestOf('something else');
    await assert.rejects(
      wrong.commit(claimed),
      (err) => err instanceof VerifyError && err.code === 'ErrDigestMismatch' && err.actualDigest === digestOf(bytes),
    );
    assert.equal(await store.hasBlob(claimed), false);
    const short = await store.openUpload();
    await short.append(chunksOf(bytes, 5000));
    await assert.rejects(
      short.commit(digestOf(bytes), { size: bytes.byteLength + 1 }),
      (err) => err instanceof VerifyError && err.code === 'ErrSizeMismatch',
    );
    assert.equal(await store.hasBlob(digestOf(bytes)), false);
    assert.deepEqual(await uploadFiles(store), []);
  });

  it('verifies a sha512 digest by re-reading the file; a blob already present stays', async () => {
    const bytes = randomBytes(70_000);
    const digest = digestOf(bytes, 'sha512');
    for (let i = 0; i < 2; i++) {
      const upload = await store.openUpload();
      await upload.append(chunksOf(bytes, 7000));
      await upload.commit(digest);
    }
    assert.deepEqual(await readFile(store.blobPath(digest)), bytes);
    assert.deepEqual(await uploadFiles(store), []);
  });

  it('abort removes the file, also while an append runs (which then fails)', async () => {
    const upload = await store.openUpload();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield randomBytes(300_000);
      await gate;
      yield randomBytes(300_000);
    }
    const running = assert.rejects(upload.append(slow()), (err) => isKimgError(err, 'ErrIngestClosed'));
    await assert.rejects(upload.append(chunksOf(Buffer.from('x'), 1)), (err) => isKimgError(err, 'ErrIngestClosed'));
    await upload.abort();
    assert.deepEqual(await uploadFiles(store), []);
    release();
    await running;
    await upload.abort();
    assert.deepEqual(await uploadFiles(store), []);
  });
});
