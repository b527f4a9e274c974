import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
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

/** An image with the given layers; returns its manifest descriptor and its blobs. */
async function putImage(
  store: Store,
  name: string,
  layers: Uint8Array[],
): Promise<{ manifest: Descriptor; blobs: Descriptor[] }> {
  const layerDescriptors = [];
  for (const layer of layers) layerDescriptors.push(await put(store, MediaType.OciLayerGzip, layer));
  const config = await put(
    store,
    MediaType.OciConfig,
    Buffer.from(JSON.stringify({ name, rootfs: { type: 'layers', diff_ids: [] } })),
  );
  const manifest = await put(
    store,
    MediaType.OciManifest,
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: layerDescriptors }),
    ),
  );
  await store.setImage(name, manifest);
  return { manifest, blobs: [manifest, config, ...layerDescriptors] };
}

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('gc', () => {
  const dirs: string[] = [];
  let store: Store;
  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-store-gc-'));
    dirs.push(dir);
    store = await openStore(dir);
  });
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('removes blobs no image reaches and keeps shared ones', async () => {
    const shared = randomBytes(5000);
    const a = await putImage(store, 'docker.io/library/a:1', [shared, randomBytes(3000)]);
    const b = await putImage(store, 'docker.io/library/b:1', [shared, randomBytes(4000)]);
    const orphan = await put(store, 'application/octet-stream', randomBytes(777));
    await store.removeImage('docker.io/library/a:1');

    const dry = await store.gc({ dryRun: true, claimMaxAgeMs: 0 });
    assert.equal(dry.dryRun, true);
    for (const d of a.blobs) assert.equal(await store.hasBlob(d.digest), true, 'dry run removes nothing');

    const result = await store.gc({ claimMaxAgeMs: 0 });
    const removed = new Set(result.removedBlobs.map((r) => r.digest));
    const onlyA = a.blobs.filter((d) => d.digest !== digestOf(shared));
    assert.deepEqual(removed, new Set([...onlyA.map((d) => d.digest), orphan.digest]));
    assert.deepEqual(new Set(dry.removedBlobs.map((r) => r.digest)), removed);
    assert.equal(
      result.reclaimedBytes,
      [...onlyA, orphan].reduce((n, d) => n + d.size, 0),
    );
    for (const d of b.blobs) assert.equal(await store.hasBlob(d.digest), true, `${d.mediaType} of b kept`);
    assert.equal(result.keptBlobs, b.blobs.length);
    assert.equal((await store.fsck()).ok, true);
  });

  it('follows indexes to their manifests, and subjects', async () => {
    const image = await putImage(store, 'docker.io/library/multi:1', [randomBytes(100)]);
    await store.removeImage('docker.io/library/multi:1');
    const missingChild = {
      mediaType: MediaType.OciManifest,
      digest: digestOf('other platform'),
      size: 14,
      platform: { os: 'linux', architecture: 'arm64' },
    };
    const index = await put(
      store,
      MediaType.OciIndex,
      Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [image.manifest, missingChild] }),
      ),
    );
    await store.setImage('docker.io/library/multi:1', index);
    const signature = await put(store, 'application/vnd.example.sig', randomBytes(50));
    const emptyConfig = await put(store, MediaType.OciEmpty, Buffer.from('{}'));
    const referrer = await put(
      store,
      MediaType.OciManifest,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          artifactType: 'application/vnd.example.sig',
          config: emptyConfig,
          layers: [signature],
          subject: index,
        }),
      ),
    );
    await store.setImage('docker.io/library/multi:sha256-sig', referrer);
    await store.removeImage('docker.io/library/multi:1'); // the index stays reachable through the subject
    const result = await store.gc({ claimMaxAgeMs: 0 });
    assert.deepEqual(result.removedBlobs, []);
    for (const d of [...image.blobs, index, signature, emptyConfig, referrer])
      assert.equal(await store.hasBlob(d.digest), true);
  });

  it('keeps blobs a live process claimed recently (a pull between commit and setImage)', async () => {
    const orphan = await put(store, 'application/octet-stream', randomBytes(100));
    const kept = await store.gc();
    assert.deepEqual(kept.claimedBlobs, [orphan.digest]);
    assert.equal(await store.hasBlob(orphan.digest), true);
    const swept = await store.gc({ claimMaxAgeMs: 0 });
    assert.deepEqual(
      swept.removedBlobs.map((r) => r.digest),
      [orphan.digest],
    );
  });

  it('drops released claims: an image recorded, then removed, is collected by gc in the same process', async () => {
    const image = await putImage(store, 'example.com/app:v1', [randomBytes(50)]);
    const claimedAll = image.blobs.map((d) => d.digest);
    await store.removeImage('example.com/app:v1');
    assert.deepEqual([...(await store.gc({ dryRun: true })).claimedBlobs].sort(), [...claimedAll].sort());
    await store.releaseClaims(claimedAll);
    const swept = await store.gc();
    assert.deepEqual(swept.claimedBlobs, []);
    assert.deepEqual(swept.removedBlobs.map((r) => r.digest).sort(), [...claimedAll].sort());
  });

  it('removes planted symlinks but never what they point at', async () => {
    const target = join(store.root, '..', `${Date.now()}-target`);
    await writeFile(target, 'keep me');
    dirs.push(target);
    const digest = digestOf('planted');
    await symlink(target, store.blobPath(digest));
    const result = await store.gc({ claimMaxAgeMs: 0 });
    assert.deepEqual(
      result.removedBlobs.map((r) => r.digest),
      [digest],
    );
    assert.equal(existsSync(target), true);
  });

  it('removes stale ingests, keeps fresh ones and those a live process holds', async () => {
    const ingestDir = join(store.root, 'ingest');
    const stale = randomBytes(1000);
    const staleDescriptor = { mediaType: 'application/octet-stream', digest: digestOf(stale), size: stale.length };
    const first = await store.openIngest(staleDescriptor, { partialFile: true });
    await first.write(stale.subarray(0, 500));
    await first.abort({ keepPartial: true });
    const old = new Date(Date.now() - 48 * 3600 * 1000);
    const staleBase = `sha256-${staleDescriptor.digest.slice(7)}`;
    await utimes(join(ingestDir, `${staleBase}.data`), old, old);
    await utimes(join(ingestDir, `${staleBase}.json`), old, old);
    // A lock left by a dead process on another old partial.
    const orphanBase = `sha256-${digestOf('orphan').slice(7)}`;
    await writeFile(join(ingestDir, `${orphanBase}.data`), 'partial');
    await writeFile(
      join(ingestDir, `${orphanBase}.lock`),
      JSON.stringify({
        pid: deadPid(),
        host: (await import('node:os')).hostname(),
        nonce: 'x',
        acquiredAt: old.toISOString(),
      }),
    );
    await utimes(join(ingestDir, `${orphanBase}.data`), old, old);
    // A temporary file of a dead process.
    await writeFile(join(ingestDir, `tmp-${deadPid()}-0123456789ab-blob`), 'x');

    const fresh = randomBytes(1000);
    const freshDescriptor = { mediaType: 'application/octet-stream', digest: digestOf(fresh), size: fresh.length };
    const keptPartial = await store.openIngest(freshDescriptor, { partialFile: true });
    await keptPartial.write(fresh.subarray(0, 10));
    await keptPartial.abort({ keepPartial: true });

    const live = randomBytes(1000);
    const liveDescriptor = { mediaType: 'application/octet-stream', digest: digestOf(live), size: live.length };
    const inProgress = await store.openIngest(liveDescriptor, { partialFile: true });
    await inProgress.write(live.subarray(0, 10));
    const liveBase = `sha256-${liveDescriptor.digest.slice(7)}`;
    await inProgress.abort({ keepPartial: true });
    const again = await store.openIngest(liveDescriptor, { partialFile: true }); // holds the lock during gc
    await utimes(join(ingestDir, `${liveBase}.data`), old, old);

    const result = await store.gc();
    assert.deepEqual(
      new Set(result.removedIngests.filter((n) => !n.startsWith('tmp-'))),
      new Set([`${staleBase}.data`, `${staleBase}.json`, `${orphanBase}.data`]),
    );
    assert.ok(result.removedIngests.some((n) => n.startsWith('tmp-') && n.endsWith('-blob')));
    const left = new Set(await readdir(ingestDir));
    assert.equal(left.has(`${staleBase}.data`), false);
    assert.equal(left.has(`${orphanBase}.data`), false);
    assert.equal(left.has(`${orphanBase}.lock`), false, 'the dead process lock is gone');
    assert.equal(left.has(`sha256-${freshDescriptor.digest.slice(7)}.data`), true, 'fresh partial kept');
    assert.equal(left.has(`${liveBase}.data`), true, 'partial held by a live ingest kept');
    await again.write(live.subarray(10));
    await again.commit();
    assert.equal(await store.hasBlob(liveDescriptor.digest), true);
  });

  it('refuses to collect when a reachable manifest cannot be read', async () => {
    const image = await putImage(store, 'docker.io/library/a:1', [randomBytes(100)]);
    await writeFile(store.blobPath(image.manifest.digest), '{"schemaVersion":2,"layers":"broken"}');
    await assert.rejects(store.gc({ claimMaxAgeMs: 0 }), { code: 'ErrStoreCorrupt' });
    for (const d of image.blobs.slice(1)) assert.equal(await store.hasBlob(d.digest), true);
  });
});
