// kimg save and kimg load against real peers: a Distribution registry the images come from,
// containerd 1.6 importing a `kimg save` archive (`ctr images import`), skopeo reading it
// (oci-archive and docker-archive) and writing archives kimg loads with the registry's digests;
// what `ctr images export` writes loads back.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Containerd,
  buildImage,
  copyImage,
  sha256Digest,
  makeTempDir,
  pushImage,
  requireTools,
  skopeo,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { kimg, storedImages } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'containerd', 'ctr']);

async function configDigest(store: string, image: string, home: string): Promise<string> {
  const r = await kimg(['inspect', '--store', store, image, '-o', 'json'], home);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { manifest: { config: { digest: string } } }).manifest.config.digest;
}

describe('kimg save and load with containerd, skopeo and a registry', { skip }, () => {
  let tmp: TempDir;
  let registry: RunningRegistry;
  let multi: BuiltImage;
  let docker: BuiltImage;
  let store: string;
  let multiRef: string;
  let dockerRef: string;

  before(async () => {
    tmp = await makeTempDir('kimg-archive-');
    store = join(tmp.path, 'store');
    registry = await startRegistry();
    [multi, docker] = await Promise.all([
      buildImage({ layers: [4096, 2048], platforms: ['linux/amd64', 'linux/arm64'], seed: 'archive-multi' }),
      buildImage({ layers: [3000], format: 'docker', seed: 'archive-docker' }),
    ]);
    multiRef = (await pushImage(multi, registry, 'team/multi:v1')).ref;
    dockerRef = (await pushImage(docker, registry, 'team/docker:v2')).ref;
    for (const ref of [multiRef, dockerRef]) {
      const r = await kimg(['pull', '--store', store, '--progress', 'quiet', ref], tmp.path);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  after(async () => {
    await registry?.stop();
    await Promise.all([multi?.remove(), docker?.remove()]);
    await tmp?.remove();
  });

  test('kimg save writes one archive: containerd imports it by name, skopeo reads both halves', async () => {
    const file = join(tmp.path, 'saved.tar');
    const r = await kimg(['save', '--store', store, multiRef, dockerRef, '-o', file], tmp.path);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Saved image: .*team\/multi:v1/);
    assert.deepEqual(
      (await readdir(tmp.path)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    const daemon = await Containerd.start(join(tmp.path, 'containerd'), 'kimg-archive');
    try {
      await daemon.ctr(['images', 'import', file]);
      const names = (await daemon.ctr(['images', 'ls', '-q'])).split('\n').filter(Boolean);
      assert.ok(names.includes(multiRef), `${multiRef} in ${names.join(', ')}`);
      assert.ok(names.includes(dockerRef), `${dockerRef} in ${names.join(', ')}`);
      const listing = await daemon.ctr(['images', 'ls']);
      assert.ok(listing.includes(multi.digest), 'containerd records the index digest unchanged');
      // And what `ctr images export` writes (only the host platform's blobs) loads back.
      const exported = join(tmp.path, 'ctr-export.tar');
      await daemon.ctr(['images', 'export', exported, multiRef]);
      const fromCtr = join(tmp.path, 'store-ctr');
      const r2 = await kimg(['load', '--store', fromCtr, '-i', exported], tmp.path);
      assert.equal(r2.status, 0, r2.stderr);
      assert.deepEqual(
        (await storedImages(fromCtr, tmp.path)).map((i) => [i.name, i.digest]),
        [[multiRef, multi.digest]],
      );
    } finally {
      await daemon.stop();
    }

    // skopeo: the OCI half by tag (manifest bytes unchanged), the docker half by RepoTag.
    const raw = await skopeo(['inspect', '--raw', `oci-archive:${file}:v1`]); // ref.name: the tag
    assert.equal(sha256Digest(raw), multi.digest);
    const viaDocker = JSON.parse(
      (await skopeo(['inspect', `docker-archive:${file}:${dockerRef}`])).toString('utf8'),
    ) as { Layers: string[] };
    assert.deepEqual(
      viaDocker.Layers,
      docker.images[0]?.layers.map((l) => l.diffId), // skopeo names docker-archive layers by diff ID
    );

    // kimg loads its own archive into a fresh store: the same images, the same digests.
    const other = join(tmp.path, 'store-roundtrip');
    const loaded = await kimg(['load', '--store', other, '-i', file], tmp.path);
    assert.equal(loaded.status, 0, loaded.stderr);
    const images = await storedImages(other, tmp.path);
    assert.deepEqual(
      images.map((i) => [i.name, i.digest]).sort(),
      [
        [multiRef, multi.digest],
        [dockerRef, docker.digest],
      ].sort(),
    );
    const fsck = await kimg(['fsck', '--store', other], tmp.path);
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  });

  test('archives skopeo writes from the registry load with the registry digests', async () => {
    const oci = join(tmp.path, 'skopeo-oci.tar');
    const dockerTar = join(tmp.path, 'skopeo-docker.tar');
    const amd64 = multi.images.find((i) => i.platformString === 'linux/amd64');
    assert.ok(amd64);
    await skopeo([
      '--insecure-policy',
      '--override-os=linux',
      '--override-arch=amd64',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${multiRef}`,
      `oci-archive:${oci}:${multiRef}`,
    ]);
    await copyImage(`docker://${dockerRef}`, `docker-archive:${dockerTar}:${dockerRef}`);

    const fresh = join(tmp.path, 'store-skopeo');
    for (const file of [oci, dockerTar]) {
      const r = await kimg(['load', '--store', fresh, '-i', file, '-o', 'json'], tmp.path);
      assert.equal(r.status, 0, r.stderr);
    }
    const images = new Map((await storedImages(fresh, tmp.path)).map((i) => [i.name, i.digest]));
    // oci-archive keeps the manifest bytes: the platform manifest's digest as the registry has it.
    assert.equal(images.get(multiRef), amd64.manifest.digest);
    // docker-archive keeps the config (the image ID) and the layers as docker would load them.
    assert.ok(images.has(dockerRef), [...images.keys()].join(', '));
    assert.equal(await configDigest(fresh, dockerRef, tmp.path), docker.images[0]?.config.digest);
    const fsck = await kimg(['fsck', '--store', fresh], tmp.path);
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  });
});
