import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { isKimgError } from '../errors/index.ts';
import { MediaType, type Descriptor } from '../oci/index.ts';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, openStore, splitImageName, type Store } from './index.ts';

function manifestDescriptor(seed: string): Descriptor {
  const bytes = Buffer.from(`{"seed":${JSON.stringify(seed)}}`);
  return { mediaType: MediaType.OciManifest, digest: digestOf(bytes), size: bytes.byteLength };
}

async function readIndexJson(
  store: Store,
): Promise<{ schemaVersion: number; mediaType: string; manifests: Descriptor[] }> {
  return JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
    schemaVersion: number;
    mediaType: string;
    manifests: Descriptor[];
  };
}

describe('images in index.json', () => {
  const dirs: string[] = [];
  let store: Store;
  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-store-images-'));
    dirs.push(dir);
    store = await openStore(dir);
  });
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('creates a valid empty layout', async () => {
    assert.deepEqual(JSON.parse(await readFile(join(store.root, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const index = await readIndexJson(store);
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MediaType.OciIndex);
    assert.deepEqual(index.manifests, []);
    assert.deepEqual(await store.listImages(), []);
  });

  it('annotates entries with the full name, as containerd and as the OCI ref name, and finds them again', async () => {
    const d = manifestDescriptor('a');
    await store.setImage('docker.io/library/busybox:1.36', d);
    const [entry] = (await readIndexJson(store)).manifests;
    assert.deepEqual(entry?.annotations, {
      [ANNOTATION_IMAGE_NAME]: 'docker.io/library/busybox:1.36',
      [ANNOTATION_REF_NAME]: 'docker.io/library/busybox:1.36',
    });
    const record = await store.getImage('docker.io/library/busybox:1.36');
    assert.equal(record?.name, 'docker.io/library/busybox:1.36');
    assert.equal(record?.refName, 'docker.io/library/busybox:1.36');
    assert.equal(record?.descriptor.digest, d.digest);
    assert.equal(await store.getImage('docker.io/library/busybox:1.35'), undefined);
    // The same image asked for by digest.
    assert.equal((await store.getImage(`docker.io/library/busybox@${d.digest}`))?.descriptor.digest, d.digest);
    assert.equal(await store.getImage(`docker.io/library/alpine@${d.digest}`), undefined);
  });

  it('keeps one entry per full reference: a re-pull replaces it in place', async () => {
    await store.setImage('docker.io/library/busybox:1.36', manifestDescriptor('a'));
    await store.setImage('docker.io/library/alpine:3.20', manifestDescriptor('b'));
    const moved = manifestDescriptor('c');
    await store.setImage('docker.io/library/busybox:1.36', moved);
    const index = await readIndexJson(store);
    assert.deepEqual(
      index.manifests.map((m) => [m.annotations?.[ANNOTATION_IMAGE_NAME], m.digest]),
      [
        ['docker.io/library/busybox:1.36', moved.digest],
        ['docker.io/library/alpine:3.20', manifestDescriptor('b').digest],
      ],
    );
    // Two repositories with the same tag are two images.
    await store.setImage('docker.io/library/alpine:1.36', manifestDescriptor('d'));
    assert.equal((await store.listImages()).length, 3);
  });

  it('writes a digest-only reference with its full name as ref.name too', async () => {
    const d = manifestDescriptor('e');
    const name = `docker.io/library/busybox@${d.digest}`;
    await store.setImage(name, { ...d, annotations: { [ANNOTATION_REF_NAME]: 'bogus', 'org.example': 'kept' } });
    const [entry] = (await readIndexJson(store)).manifests;
    assert.deepEqual(entry?.annotations, {
      'org.example': 'kept',
      [ANNOTATION_IMAGE_NAME]: name,
      [ANNOTATION_REF_NAME]: name,
    });
    assert.equal((await store.getImage(name))?.descriptor.digest, d.digest);
  });

  it('migrates entries of earlier kimg versions (ref.name = tag, or none) when the store is opened', async () => {
    const old = manifestDescriptor('old');
    const digestOnly = manifestDescriptor('digest-only');
    const foreign = manifestDescriptor('foreign');
    await writeFile(
      join(store.root, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { ...old, annotations: { [ANNOTATION_IMAGE_NAME]: 'docker.io/library/a:v1', [ANNOTATION_REF_NAME]: 'v1' } },
          { ...digestOnly, annotations: { [ANNOTATION_IMAGE_NAME]: `docker.io/library/b@${digestOnly.digest}` } },
          { ...foreign, annotations: { [ANNOTATION_REF_NAME]: 'v1' } },
        ],
      }),
    );
    // Read before migration: both names find the entry.
    assert.equal((await store.getImage('docker.io/library/a:v1'))?.descriptor.digest, old.digest);
    await openStore(store.root);
    assert.deepEqual(
      (await readIndexJson(store)).manifests.map((m) => m.annotations),
      [
        { [ANNOTATION_IMAGE_NAME]: 'docker.io/library/a:v1', [ANNOTATION_REF_NAME]: 'docker.io/library/a:v1' },
        {
          [ANNOTATION_IMAGE_NAME]: `docker.io/library/b@${digestOnly.digest}`,
          [ANNOTATION_REF_NAME]: `docker.io/library/b@${digestOnly.digest}`,
        },
        // Written by another tool (a bare tag, no full name): left as it is.
        { [ANNOTATION_REF_NAME]: 'v1' },
      ],
    );
    assert.equal((await store.getImage('docker.io/library/a:v1'))?.descriptor.digest, old.digest);
  });

  it('removes images; ErrImageUnknown names the image and the store', async () => {
    await store.setImage('docker.io/library/busybox:1.36', manifestDescriptor('a'));
    assert.equal(await store.removeImage('docker.io/library/busybox:1.36'), true);
    assert.equal(await store.removeImage('docker.io/library/busybox:1.36'), false);
    assert.deepEqual((await readIndexJson(store)).manifests, []);
    await assert.rejects(store.requireImage('docker.io/library/busybox:1.36'), (err: unknown) => {
      assert.ok(isKimgError(err, 'ErrImageUnknown'));
      assert.match(err.message, /docker\.io\/library\/busybox:1\.36/);
      assert.ok(err.message.includes(store.root));
      return true;
    });
  });

  it('reads entries written by skopeo (ref.name = tag) and crane (ref.name = full reference)', async () => {
    const skopeo = manifestDescriptor('skopeo');
    const crane = manifestDescriptor('crane');
    await writeFile(
      join(store.root, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { ...skopeo, annotations: { [ANNOTATION_REF_NAME]: '1.36' } },
          { ...crane, annotations: { [ANNOTATION_REF_NAME]: 'ghcr.io/org/app:v1' } },
        ],
      }),
    );
    assert.equal((await store.getImage('docker.io/library/busybox:1.36'))?.descriptor.digest, skopeo.digest);
    assert.equal((await store.getImage('1.36'))?.descriptor.digest, skopeo.digest);
    assert.equal((await store.getImage('ghcr.io/org/app:v1'))?.descriptor.digest, crane.digest);
    assert.deepEqual(
      (await store.listImages()).map((r) => r.name),
      ['1.36', 'ghcr.io/org/app:v1'],
    );
    // Re-pulling crane's reference replaces its entry rather than adding a second one.
    const newer = manifestDescriptor('newer');
    await store.setImage('ghcr.io/org/app:v1', newer);
    const index = await readIndexJson(store);
    assert.equal(index.manifests.length, 2);
    assert.equal(index.manifests[1]?.digest, newer.digest);
    // Our own entry wins over a skopeo tag-only entry once it exists.
    const ours = manifestDescriptor('ours');
    await store.setImage('docker.io/library/busybox:1.36', ours);
    assert.equal((await store.getImage('docker.io/library/busybox:1.36'))?.descriptor.digest, ours.digest);
  });

  it('refuses names that are not a full reference with a tag or digest', async () => {
    for (const name of [
      '',
      'docker.io/library/busybox',
      'a b:1',
      'x:tag\n',
      'repo:-bad',
      `repo@sha256:${'A'.repeat(64)}`,
    ]) {
      await assert.rejects(
        store.setImage(name, manifestDescriptor('x')),
        (err: unknown) => isKimgError(err, 'ErrImageNameInvalid'),
        name,
      );
    }
    await assert.rejects(
      store.setImage('docker.io/library/busybox:1', {
        mediaType: MediaType.OciManifest,
        digest: 'sha256:../x',
        size: 1,
      }),
    );
    assert.deepEqual(await store.listImages(), []);
  });

  it('never turns annotations into paths (S11)', async () => {
    const hostile = '../../../../tmp/kimg-evil';
    await store.setImage('docker.io/library/busybox:latest', {
      ...manifestDescriptor('h'),
      annotations: { 'org.opencontainers.image.title': hostile, [ANNOTATION_REF_NAME]: hostile },
    });
    await writeFile(
      join(store.root, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ ...manifestDescriptor('h'), annotations: { [ANNOTATION_REF_NAME]: hostile } }],
      }),
    );
    assert.equal((await store.getImage(hostile))?.refName, hostile);
    await store.gc({ claimMaxAgeMs: 0 });
    await store.fsck();
    assert.deepEqual((await readdir(store.root)).sort(), [
      '.kimg-reserve',
      'blobs',
      'index.json',
      'ingest',
      'oci-layout',
    ]);
    assert.equal(existsSync('/tmp/kimg-evil'), false);
  });

  it('replaces index.json atomically: no temporary files left, always valid JSON', async () => {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++)
      writes.push(store.setImage(`docker.io/library/img${i % 5}:t${i}`, manifestDescriptor(String(i))));
    let reads = 0;
    const reader = (async () => {
      while (reads < 200) {
        const index = await readIndexJson(store); // throws if ever torn
        assert.equal(index.schemaVersion, 2);
        reads++;
      }
    })();
    await Promise.all([...writes, reader]);
    assert.equal((await store.listImages()).length, 20);
    assert.deepEqual(
      (await readdir(join(store.root, 'ingest'))).filter((n) => !n.startsWith('claims-')),
      [],
    );
  });

  it('lock() is re-entrant and serialises updates', async () => {
    const order: string[] = [];
    await Promise.all([
      store.lock(async () => {
        order.push('a-start');
        await store.setImage('docker.io/library/a:1', manifestDescriptor('a')); // re-entrant
        await new Promise((r) => setTimeout(r, 30));
        order.push('a-end');
      }),
      store.lock(async () => {
        order.push('b-start');
        order.push('b-end');
      }),
    ]);
    assert.deepEqual(order, ['a-start', 'a-end', 'b-start', 'b-end']);
  });

  it('concurrent updates inside one lock() section do not lose each other', async () => {
    await store.lock(async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.setImage(`docker.io/library/inside:${i}`, manifestDescriptor(`in${i}`)),
        ),
      );
      await Promise.all([
        store.removeImage('docker.io/library/inside:0'),
        store.setImage('docker.io/library/inside:10', manifestDescriptor('in10')),
      ]);
    });
    assert.equal((await store.listImages()).length, 10);
  });

  it('two Store objects reaching one layout through different paths share its lock', async () => {
    const link = `${store.root}-link`;
    dirs.push(link);
    await symlink(store.root, link);
    const other = await openStore(link);
    assert.equal(other.root, store.root);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 === 0 ? store : other).setImage(`docker.io/library/two:${i}`, manifestDescriptor(`two${i}`)),
      ),
    );
    assert.equal((await store.listImages()).length, 10);
  });

  it('reports a corrupt or oversized index.json as ErrStoreCorrupt, naming the file (S10)', async () => {
    await writeFile(join(store.root, 'index.json'), '{"schemaVersion":2,"manifests":[],"manifests":[]}');
    await assert.rejects(
      store.listImages(),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && err.message.includes('index.json'),
    );
    const small = await openStore(store.root, { maxIndexBytes: 1024 });
    await writeFile(
      join(store.root, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [], annotations: { pad: 'x'.repeat(2000) } }),
    );
    await assert.rejects(
      small.listImages(),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && /limit of 1024/.test(err.message),
    );
  });

  it('opens an existing store; create: false on a missing one is ErrStoreNotFound', async () => {
    await store.setImage('docker.io/library/busybox:1.36', manifestDescriptor('a'));
    const again = await openStore(store.root, { create: false });
    assert.equal((await again.listImages()).length, 1);
    await assert.rejects(openStore(join(store.root, 'nope'), { create: false }), (err: unknown) =>
      isKimgError(err, 'ErrStoreNotFound'),
    );
  });

  it('refuses to turn a non-empty directory that is not a layout into a store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-store-notlayout-'));
    dirs.push(dir);
    await writeFile(join(dir, 'precious.txt'), 'do not touch');
    await assert.rejects(openStore(dir), (err: unknown) => isKimgError(err, 'ErrStoreCorrupt'));
    assert.deepEqual(await readdir(dir), ['precious.txt']);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(
      openStore(dir),
      (err: unknown) => isKimgError(err, 'ErrStoreCorrupt') && /imageLayoutVersion/.test(err.message),
    );
  });
});

describe('splitImageName', () => {
  it('splits repository, tag and digest', () => {
    const digest = digestOf('x');
    assert.deepEqual(splitImageName('localhost:5000/a/b:1.0'), { repository: 'localhost:5000/a/b', tag: '1.0' });
    assert.deepEqual(splitImageName('localhost:5000/a/b'), { repository: 'localhost:5000/a/b' });
    assert.deepEqual(splitImageName(`docker.io/library/busybox:1.36@${digest}`), {
      repository: 'docker.io/library/busybox',
      tag: '1.36',
      digest,
    });
    assert.equal(splitImageName('repo@sha256:short'), undefined);
    assert.equal(splitImageName(':tag'), undefined);
  });
});
