import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { MediaType, type Descriptor } from '../oci/index.ts';
import { openStore, type Store } from './index.ts';

async function put(store: Store, mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  const d = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  await store.putBlob(d, bytes);
  return d;
}

async function putImage(
  store: Store,
  name: string,
): Promise<{ manifest: Descriptor; config: Descriptor; layer: Descriptor }> {
  const layer = await put(store, MediaType.OciLayerGzip, randomBytes(200_000));
  const config = await put(
    store,
    MediaType.OciConfig,
    Buffer.from(JSON.stringify({ name, rootfs: { type: 'layers', diff_ids: [] } })),
  );
  const manifest = await put(
    store,
    MediaType.OciManifest,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] })),
  );
  await store.setImage(name, manifest);
  return { manifest, config, layer };
}

describe('fsck', () => {
  const dirs: string[] = [];
  let store: Store;
  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-store-fsck-'));
    dirs.push(dir);
    store = await openStore(dir);
  });
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('passes a healthy store, every blob re-hashed', async () => {
    await putImage(store, 'docker.io/library/a:1');
    const report = await store.fsck();
    assert.deepEqual(report.problems, []);
    assert.equal(report.ok, true);
    assert.equal(report.blobsChecked, 3);
    assert.equal(report.images, 1);
  });

  it('detects one flipped byte in a layer', async () => {
    const { layer } = await putImage(store, 'docker.io/library/a:1');
    const path = store.blobPath(layer.digest);
    const bytes = await readFile(path);
    bytes[123_456] = (bytes[123_456] ?? 0) ^ 0x10;
    await writeFile(path, bytes);
    const report = await store.fsck();
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.digest]),
      [['digest-mismatch', layer.digest]],
    );
    assert.match(report.problems[0]?.message ?? '', new RegExp(layer.digest));
  });

  it('detects missing blobs, wrong sizes, symlinks, broken manifests and index entries without blobs', async () => {
    const a = await putImage(store, 'docker.io/library/a:1');
    await unlink(store.blobPath(a.config.digest));
    const b = await putImage(store, 'docker.io/library/b:1');
    await store.setImage('docker.io/library/b:wrong-size', { ...b.manifest, size: b.manifest.size + 1 });
    const ghost = { mediaType: MediaType.OciManifest, digest: digestOf('ghost'), size: 5 };
    await store.setImage('docker.io/library/ghost:1', ghost);
    const planted = digestOf('planted');
    await symlink('/etc/hostname', store.blobPath(planted));
    const broken = await put(
      store,
      MediaType.OciManifest,
      Buffer.from('{"schemaVersion":2,"manifests":[],"layers":[]}'),
    );
    await store.setImage('docker.io/library/broken:1', broken);

    const report = await store.fsck();
    assert.equal(report.ok, false);
    const found = report.problems.map((p) => `${p.kind} ${p.image ?? ''} ${p.digest ?? ''}`).sort();
    assert.deepEqual(
      found,
      [
        `invalid-manifest docker.io/library/broken:1 ${broken.digest}`,
        `missing-blob docker.io/library/a:1 ${a.config.digest}`,
        `missing-blob docker.io/library/ghost:1 ${ghost.digest}`,
        `not-a-regular-file  ${planted}`,
        `size-mismatch docker.io/library/b:wrong-size ${b.manifest.digest}`,
      ].sort(),
    );
  });

  it('reports an unreadable index.json instead of throwing', async () => {
    await writeFile(join(store.root, 'index.json'), '{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x"}]}');
    const report = await store.fsck();
    assert.equal(report.ok, false);
    assert.equal(report.problems[0]?.kind, 'invalid-index');
  });
});
