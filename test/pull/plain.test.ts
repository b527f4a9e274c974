// The pull engine against a real Distribution registry over plain HTTP (loopback), behind a
// fault proxy that injects nothing and records every request: OCI and Docker schema 2 images,
// an OCI index and a Docker manifest list with platform selection, what an already-stored image
// costs, shared layers, and two pulls of one image in one Puller.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isKimgError } from '../../src/errors/index.ts';
import { PullError, Puller, type PullEvent, type PullResult } from '../../src/pull/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type BuiltPlatformImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import {
  blobGetCounts,
  captureEvents,
  describeRequests,
  layoutEntries,
  manifestRequests,
  storedBlobs,
} from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

/** Every digest a platform image consists of: manifest, config, layers. */
const contentOf = (image: BuiltPlatformImage): string[] => [
  image.manifest.digest,
  image.config.digest,
  ...image.layers.map((l) => l.digest),
];

describe('pull engine, plain HTTP registry', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let oci: BuiltImage;
  let docker: BuiltImage;
  let index: BuiltImage;
  let list: BuiltImage;
  let sharedA: BuiltImage;
  let sharedB: BuiltImage;
  let wide: BuiltImage;
  const pullers: Puller[] = [];
  let stores = 0;

  /** A Puller on a fresh store; closed in `after`. */
  const newPuller = (store?: string): Puller => {
    const puller = new Puller({ store: store ?? `${tmp.path}/store-${++stores}` });
    pullers.push(puller);
    return puller;
  };
  const ref = (repoTag: string) => `${proxy.host}/${repoTag}`;

  before(async () => {
    tmp = await makeTempDir('kimg-pull-plain-');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    const shared = { size: 60_000, seed: 'pull-shared-base' };
    [oci, docker, index, list, sharedA, sharedB, wide] = await Promise.all([
      buildImage({ layers: [2_000, 80_000], seed: 'pull-oci' }),
      buildImage({ layers: [30_000, 5_000], format: 'docker', seed: 'pull-docker' }),
      buildImage({
        layers: [20_000],
        platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'],
        seed: 'pull-index',
      }),
      buildImage({
        layers: [20_000],
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        format: 'docker',
        seed: 'pull-list',
      }),
      buildImage({ layers: [shared, 10_000], seed: 'pull-shared-a' }),
      buildImage({ layers: [shared, 12_000], seed: 'pull-shared-b' }),
      buildImage({ layers: Array.from({ length: 9 }, () => 1_000), seed: 'pull-wide' }),
    ]);
    await Promise.all([
      pushImage(oci, registry, 'test/oci:v1'),
      pushImage(docker, registry, 'test/docker:v1'),
      pushImage(index, registry, 'test/index:v1'),
      pushImage(list, registry, 'test/list:v1'),
      pushImage(sharedA, registry, 'test/shared-a:v1'),
      pushImage(sharedB, registry, 'test/shared-b:v1'),
      pushImage(wide, registry, 'test/wide:v1'),
    ]);
  });

  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([oci, docker, index, list, sharedA, sharedB, wide].map((i) => i?.remove()));
    await tmp?.remove();
  });

  test('pulls an OCI image: every blob verified into the store, recorded under its full name and tag', async () => {
    const puller = newPuller();
    const { events, onEvent } = captureEvents();
    const result = await puller.pull(ref('test/oci:v1'), { onEvent });
    const image = oci.images[0];
    assert.ok(image);
    assert.equal(result.name, ref('test/oci:v1'));
    assert.deepEqual(result.descriptor, { mediaType: oci.mediaType, digest: oci.digest, size: oci.size });
    assert.deepEqual(result.manifests, [{ digest: oci.digest }]);
    assert.equal(result.blobs, 3);
    assert.equal(result.blobsFetched, 3);
    assert.equal(result.upToDate, false);
    assert.equal(result.bytesReceived, image.config.size + image.layers.reduce((n, l) => n + l.size, 0));

    const store = await puller.store();
    assert.deepEqual(await storedBlobs(store.root), contentOf(image).sort());
    const [entry, ...others] = await layoutEntries(store.root);
    assert.deepEqual(others, []);
    assert.equal(entry?.digest, oci.digest);
    assert.equal(entry?.mediaType, oci.mediaType);
    assert.equal(entry?.annotations?.['io.containerd.image.name'], ref('test/oci:v1'));
    assert.equal(entry?.annotations?.['org.opencontainers.image.ref.name'], ref('test/oci:v1'));
    assert.equal((await store.fsck()).ok, true);

    const types = events.map((e) => e.type);
    assert.equal(types[0], 'resolving');
    assert.equal(types.at(-1), 'done');
    assert.deepEqual(
      events.filter((e) => e.type === 'resolved').map((e) => e.type === 'resolved' && e.via),
      ['HEAD'],
    );
    const done = events
      .filter((e): e is Extract<PullEvent, { type: 'blob-done' }> => e.type === 'blob-done')
      .map((e) => e.digest)
      .sort();
    assert.deepEqual(done, [image.config.digest, ...image.layers.map((l) => l.digest)].sort());
  });

  test('pulls a Docker schema 2 image and keeps its media types', async () => {
    const puller = newPuller();
    const result = await puller.pull(ref('test/docker:v1'));
    const image = docker.images[0];
    assert.ok(image);
    assert.equal(result.descriptor.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(result.descriptor.digest, docker.digest);
    const store = await puller.store();
    assert.deepEqual(await storedBlobs(store.root), contentOf(image).sort());
    assert.equal(
      (await layoutEntries(store.root))[0]?.mediaType,
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    assert.equal((await store.fsck()).ok, true);
  });

  test('pulls one platform of a multi-platform OCI index (arm64 matches arm64/v8) and stores it under the index digest', async () => {
    const puller = newPuller();
    proxy.reset();
    const result = await puller.pull(ref('test/index:v1'), { platform: 'linux/arm64' });
    const arm64 = index.images.find((i) => i.platformString === 'linux/arm64/v8');
    assert.ok(arm64);
    assert.deepEqual(result.descriptor, {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: index.digest,
      size: index.size,
    });
    assert.deepEqual(result.manifests, [{ digest: arm64.manifest.digest, platform: 'linux/arm64/v8' }]);
    const store = await puller.store();
    assert.deepEqual(await storedBlobs(store.root), [index.digest, ...contentOf(arm64)].sort());
    // Nothing of the other platforms was asked for.
    const others = index.images.filter((i) => i !== arm64).flatMap(contentOf);
    const asked = proxy.requests.map((r) => r.path);
    for (const digest of others)
      assert.ok(!asked.some((p) => p.endsWith(digest)), `${digest} of another platform was requested`);
    assert.equal((await layoutEntries(store.root))[0]?.digest, index.digest);
  });

  test('pulls arm64/v8 explicitly and linux/arm/v7 from the same index', async () => {
    const puller = newPuller();
    const v8 = await puller.pull(ref('test/index:v1'), { platform: 'linux/arm64/v8' });
    assert.equal(v8.manifests[0]?.platform, 'linux/arm64/v8');
    const v7 = await puller.pull(ref('test/index:v1'), {
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    });
    assert.deepEqual(v7.manifests, [{ digest: index.images[2]?.manifest.digest, platform: 'linux/arm/v7' }]);
  });

  test('selects a platform from a Docker manifest list', async () => {
    const puller = newPuller();
    const result = await puller.pull(ref('test/list:v1'), { platform: 'linux/arm64/v8' });
    const arm64 = list.images[1];
    assert.ok(arm64);
    assert.equal(result.descriptor.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(result.descriptor.digest, list.digest);
    assert.deepEqual(result.manifests, [{ digest: arm64.manifest.digest, platform: 'linux/arm64/v8' }]);
    assert.deepEqual(await storedBlobs((await puller.store()).root), [list.digest, ...contentOf(arm64)].sort());
  });

  test('an unknown platform fails with ErrPlatformNotFound naming the image and listing what is available', async () => {
    const puller = newPuller();
    await assert.rejects(puller.pull(ref('test/index:v1'), { platform: 'linux/s390x' }), (err: unknown) => {
      assert.ok(err instanceof PullError);
      assert.equal(err.code, 'ErrPlatformNotFound');
      assert.equal(err.image, ref('test/index:v1'));
      assert.match(err.message, /linux\/s390x/);
      assert.match(err.message, new RegExp(ref('test/index:v1').replace(/[.]/g, '\\.')));
      assert.match(err.message, /available: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7/);
      return true;
    });
    const store = await puller.store();
    assert.deepEqual(await store.listImages(), [], 'a failed pull records no image');
  });

  test('--all-platforms stores every child of an index and of a manifest list', async () => {
    const puller = newPuller();
    const result = await puller.pull(ref('test/index:v1'), { allPlatforms: true });
    assert.deepEqual(
      result.manifests.map((m) => m.platform),
      ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'],
    );
    const listed = await puller.pull(ref('test/list:v1'), { allPlatforms: true });
    assert.equal(listed.manifests.length, 2);
    const store = await puller.store();
    const expected = [index.digest, list.digest, ...index.images.flatMap(contentOf), ...list.images.flatMap(contentOf)];
    assert.deepEqual(await storedBlobs(store.root), [...new Set(expected)].sort());
    assert.equal((await store.fsck()).ok, true);
  });

  test('an image already stored costs one HEAD request by tag and no blob request, from a fresh Puller too', async () => {
    const dir = `${tmp.path}/store-again`;
    await newPuller(dir).pull(ref('test/oci:v1'));
    for (const puller of [pullers.at(-1) as Puller, newPuller(dir)]) {
      proxy.reset();
      const { events, onEvent } = captureEvents();
      const result: PullResult = await puller.pull(ref('test/oci:v1'), { onEvent });
      assert.deepEqual(describeRequests(proxy.requests), [`HEAD /v2/test/oci/manifests/v1`]);
      assert.equal(result.upToDate, true);
      assert.equal(result.blobsFetched, 0);
      assert.equal(result.bytesReceived, 0);
      assert.equal(events.filter((e) => e.type === 'blob-exists').length, 3);
    }
  });

  test('a digest pull of a stored image makes no request at all', async () => {
    const dir = `${tmp.path}/store-digest`;
    await newPuller(dir).pull(ref('test/index:v1'), { platform: 'linux/amd64' });
    proxy.reset();
    const puller = newPuller(dir);
    const result = await puller.pull(ref(`test/index@${index.digest}`), { platform: 'linux/amd64' });
    assert.deepEqual(describeRequests(proxy.requests), []);
    assert.equal(result.upToDate, true);
    assert.equal(result.name, ref(`test/index@${index.digest}`));
    // Another platform of the same index needs only its own manifest and blobs.
    await puller.pull(ref(`test/index@${index.digest}`), { platform: 'linux/arm/v7' });
    const v7 = index.images[2];
    assert.ok(v7);
    assert.deepEqual(
      describeRequests(proxy.requests).sort(),
      contentOf(v7)
        .map((d, i) => (i === 0 ? `GET /v2/test/index/manifests/${d}` : `GET /v2/test/index/blobs/${d}`))
        .sort(),
    );
  });

  test('a layer shared by two images is fetched once and stored once', async () => {
    const puller = newPuller();
    proxy.reset();
    await puller.pull(ref('test/shared-a:v1'));
    const second = await puller.pull(ref('test/shared-b:v1'));
    const [a, b] = [sharedA.images[0], sharedB.images[0]];
    assert.ok(a && b);
    const shared = a.layers[0]?.digest;
    assert.ok(shared);
    assert.equal(b.layers[0]?.digest, shared, 'the harness built one shared layer');
    assert.equal(blobGetCounts(proxy).get(shared), 1);
    assert.equal(second.blobs, 3);
    assert.equal(second.blobsFetched, 2);
    const store = await puller.store();
    assert.deepEqual(await storedBlobs(store.root), [...new Set([...contentOf(a), ...contentOf(b)])].sort());
    assert.equal((await store.listImages()).length, 2);
    assert.equal((await store.fsck()).ok, true);
  });

  test('two concurrent pulls of one image in one Puller share the work', async () => {
    const puller = newPuller();
    proxy.reset();
    const first = captureEvents();
    const second = captureEvents();
    const [x, y] = await Promise.all([
      puller.pull(ref('test/oci:v1'), { onEvent: first.onEvent }),
      puller.pull(ref('test/oci:v1'), { onEvent: second.onEvent }),
    ]);
    assert.deepEqual(x, y);
    const counts = blobGetCounts(proxy);
    assert.equal(counts.size, 3);
    for (const [digest, n] of counts) assert.equal(n, 1, `${digest} fetched ${n} times`);
    assert.deepEqual(describeRequests(manifestRequests(proxy)), [
      'HEAD /v2/test/oci/manifests/v1',
      `GET /v2/test/oci/manifests/${oci.digest}`,
    ]);
    // Both callers see the progress of the shared pull.
    for (const { events } of [first, second]) assert.equal(events.filter((e) => e.type === 'blob-done').length, 3);
  });

  test('concurrent pulls of two images sharing a layer fetch the layer once, and each caller sees only its own events', async () => {
    const puller = newPuller();
    proxy.reset();
    const a = captureEvents();
    const b = captureEvents();
    await Promise.all([
      puller.pull(ref('test/shared-a:v1'), { onEvent: a.onEvent }),
      puller.pull(ref('test/shared-b:v1'), { onEvent: b.onEvent }),
    ]);
    const shared = sharedA.images[0]?.layers[0]?.digest;
    assert.ok(shared);
    assert.equal(blobGetCounts(proxy).get(shared), 1);
    const images = (events: readonly PullEvent[]) => new Set(events.flatMap((e) => ('image' in e ? [e.image] : [])));
    assert.deepEqual(images(a.events), new Set([ref('test/shared-a:v1')]));
    assert.deepEqual(images(b.events), new Set([ref('test/shared-b:v1')]));
    const ownLayer = (image: BuiltImage) => image.images[0]?.layers[1]?.digest;
    const digests = (events: readonly PullEvent[]) => new Set(events.flatMap((e) => ('digest' in e ? [e.digest] : [])));
    assert.ok(!digests(a.events).has(ownLayer(sharedB) ?? ''), "A's listener got B's layer events");
    assert.ok(!digests(b.events).has(ownLayer(sharedA) ?? ''), "B's listener got A's layer events");
  });

  test('downloads at most `concurrency` blobs at once (default 4)', async () => {
    // Slow blobs overlap, so the limit is what bounds them.
    const slow = () => proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.delay(100) : undefined));
    for (const [concurrency, expected] of [
      [undefined, 4],
      [2, 2],
    ] as const) {
      proxy.reset();
      slow();
      const puller = new Puller({
        store: `${tmp.path}/store-${++stores}`,
        ...(concurrency !== undefined && { concurrency }),
      });
      pullers.push(puller);
      const result = await puller.pull(ref('test/wide:v1'));
      assert.equal(result.blobsFetched, 10);
      const max = proxy.maxConcurrent('/v2/test/wide/blobs/');
      assert.ok(
        max <= expected && max >= 2,
        `${max} blob requests at once with concurrency ${concurrency ?? 'default'}`,
      );
    }
    proxy.reset();
  });

  test('an unknown tag fails with ErrManifestUnknown naming the image; nothing is recorded', async () => {
    const puller = newPuller();
    await assert.rejects(puller.pull(ref('test/oci:nope')), (err: unknown) => {
      assert.ok(isKimgError(err));
      assert.equal(err.code, 'ErrManifestUnknown');
      assert.ok(err.message.includes(ref('test/oci:nope')), err.message);
      return true;
    });
    assert.deepEqual(await (await puller.store()).listImages(), []);
  });
});
