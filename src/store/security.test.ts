import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf, DigestError } from '../digest/index.ts';
import { isKimgError } from '../errors/index.ts';
import { openStore, type Store } from './index.ts';

const octet = 'application/octet-stream';

describe('planted symlinks and hostile digests (S8, S11)', () => {
  let dir: string;
  let store: Store;
  let outside: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-sec-'));
    store = await openStore(join(dir, 'store'));
    outside = join(dir, 'outside');
    await mkdir(outside);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a symlink at blobs/sha256/<hex> is not a blob and is never followed', async () => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    const target = join(outside, 'secret');
    await writeFile(target, bytes); // even with the right content
    await symlink(target, store.blobPath(digest));
    assert.equal(await store.hasBlob(digest), false);
    assert.equal(await store.blobSize(digest), undefined);
    await assert.rejects(
      store.openBlobFile(digest),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && /symlink/.test(err.message),
    );
    await assert.rejects(
      store.readBlob(digest, 2000),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && /symlink/.test(err.message),
    );
    await assert.rejects(
      async () => {
        for await (const _ of store.openBlobStream(digest)) {
          // drain
        }
      },
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'),
    );
    await assert.rejects(
      async () => {
        for await (const _ of store.readBlobChunks(digest)) {
          // drain
        }
      },
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'),
    );
    // A real download replaces the symlink itself; the target is not written through it.
    const ingest = await store.openIngest({ mediaType: octet, digest, size: bytes.length });
    assert.equal(ingest.alreadyPresent, false);
    await ingest.write(bytes);
    await ingest.commit();
    assert.ok((await lstat(store.blobPath(digest))).isFile());
    assert.equal(await store.hasBlob(digest), true);
    assert.equal(await store.blobSize(digest), bytes.length);
    const opened = await store.openBlobFile(digest);
    try {
      assert.equal(opened.size, bytes.length);
      const back = Buffer.alloc(10);
      await opened.handle.read(back, 0, 10, 990);
      assert.deepEqual(back, bytes.subarray(990));
    } finally {
      await opened.handle.close();
    }
    assert.deepEqual(await readFile(target), bytes);
  });

  it('putBlob replaces a planted symlink instead of writing through it', async () => {
    const bytes = Buffer.from('{"config":true}');
    const digest = digestOf(bytes);
    const target = join(outside, 'victim');
    await writeFile(target, 'original');
    await symlink(target, store.blobPath(digest));
    await store.putBlob({ mediaType: octet, digest, size: bytes.length }, bytes);
    assert.equal(await readFile(target, 'utf8'), 'original');
    assert.ok((await lstat(store.blobPath(digest))).isFile());
  });

  it('a symlinked blobs/<alg> directory is refused, nothing is written outside', async () => {
    const bytes = randomBytes(100);
    const d = { mediaType: octet, digest: digestOf(bytes, 'sha512'), size: bytes.length };
    const elsewhere = join(outside, 'sha512');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(store.root, 'blobs', 'sha512'));
    await assert.rejects(store.putBlob(d, bytes), (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'));
    const ingest = await store.openIngest(d);
    await ingest.write(bytes);
    await assert.rejects(ingest.commit());
    assert.equal(await store.hasBlob(d.digest), false);
    await assert.rejects(readFile(join(elsewhere, d.digest.slice('sha512:'.length))), { code: 'ENOENT' });
  });

  it('a symlinked ingest/ is refused when the store is opened', async () => {
    const other = await mkdtemp(join(tmpdir(), 'kimg-store-sec2-'));
    try {
      const s = await openStore(join(other, 'store'));
      await rename(join(s.root, 'ingest'), join(other, 'real-ingest'));
      await symlink(join(other, 'real-ingest'), join(s.root, 'ingest'));
      await assert.rejects(
        openStore(s.root),
        (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && /symlink/.test(err.message),
      );
      assert.equal(await readlink(join(s.root, 'ingest')), join(other, 'real-ingest'));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('a symlink planted as index.json is not read', async () => {
    const other = await mkdtemp(join(tmpdir(), 'kimg-store-sec3-'));
    try {
      const s = await openStore(join(other, 'store'));
      await writeFile(join(other, 'fake.json'), '{"schemaVersion":2,"manifests":[]}');
      await rm(join(s.root, 'index.json'));
      await symlink(join(other, 'fake.json'), join(s.root, 'index.json'));
      await assert.rejects(s.listImages(), (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('no digest string outside the grammar becomes a path (fuzz)', async () => {
    const alphabet = 'sha256:0123456789abcdefABCDEF./\\%?#@:-_+=~ \n\0';
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      const length = 1 + (i % 140);
      let candidate = i % 3 === 0 ? 'sha256:' : '';
      const random = randomBytes(length);
      for (const byte of random) candidate += alphabet[byte % alphabet.length];
      let path: string;
      try {
        path = store.blobPath(candidate);
      } catch (err) {
        assert.ok(err instanceof DigestError);
        refused++;
        continue;
      }
      // Whatever was accepted is a plain <alg>/<hex> under blobs/.
      assert.match(path.slice(store.root.length), /^\/blobs\/sha(256|384|512)\/[0-9a-f]+$/);
    }
    assert.ok(refused > 9_000);
  });
});
