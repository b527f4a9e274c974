// The registry client against a real Distribution registry over plain HTTP, anonymous: resolve
// (HEAD) of images, OCI indexes and Docker manifest lists, manifests by digest, blobs into a
// sink, resume from a partial sink, and the typed errors for what is not there.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isKimgError } from '../../src/errors/index.ts';
import { RegistryClient, RegistryError, type Endpoint } from '../../src/registry/index.ts';
import {
  buildImage,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
} from '../harness/index.ts';
import { MemorySink, OpaqueSink, captureEvents, readBlob, sha256 } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

describe('registry client, plain HTTP, anonymous', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let single: BuiltImage;
  let multi: BuiltImage;
  let dockerList: BuiltImage;
  let client: RegistryClient;
  const endpoints = (): Endpoint[] => [{ baseUrl: proxy.url, insecure: true }];
  const repo = (path: string) => ({ registry: 'test.local', path });

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    [single, multi, dockerList] = await Promise.all([
      buildImage({ layers: [300_000, 1_200_000], seed: 'plain-single' }),
      buildImage({ layers: [50_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'plain-multi' }),
      buildImage({
        layers: [40_000],
        platforms: ['linux/amd64', 'linux/arm/v7'],
        format: 'docker',
        seed: 'plain-docker',
      }),
    ]);
    await pushImage(single, registry, 'test/single:v1');
    await pushImage(multi, registry, 'test/multi:v1');
    await pushImage(dockerList, registry, 'test/dockerlist:v1');
    client = new RegistryClient({ endpoints: endpoints });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([single?.remove(), multi?.remove(), dockerList?.remove()]);
  });

  test('resolves a tag with one HEAD sending all four manifest types', async () => {
    proxy.reset();
    const result = await client.resolve(repo('test/single'), 'v1');
    assert.equal(result.via, 'HEAD');
    assert.deepEqual(result.descriptor, { mediaType: single.mediaType, digest: single.digest, size: single.size });
    assert.equal(proxy.requests.length, 1);
    const accept = String(proxy.requests[0]?.headers.accept);
    for (const type of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ]) {
      assert.ok(accept.includes(type), `Accept lacks ${type}`);
    }
  });

  test('resolves a multi-arch OCI index and a Docker manifest list with HEAD', async () => {
    const oci = await client.resolve('test.local/test/multi', 'v1');
    assert.equal(oci.via, 'HEAD');
    assert.deepEqual(oci.descriptor, {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: multi.digest,
      size: multi.size,
    });
    const docker = await client.resolve(repo('test/dockerlist'), 'v1');
    assert.deepEqual(docker.descriptor, {
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      digest: dockerList.digest,
      size: dockerList.size,
    });
  });

  test('fetches manifests and indexes by digest, verified and parsed', async () => {
    const index = await client.getManifest(repo('test/multi'), multi.digest, {
      descriptor: { mediaType: multi.mediaType, digest: multi.digest, size: multi.size },
    });
    assert.equal(index.document.kind, 'index');
    assert.equal(sha256(index.bytes), multi.digest);
    assert.equal(index.mediaType, multi.mediaType);
    const child = multi.images[1];
    assert.ok(child);
    const manifest = await client.getManifest(repo('test/multi'), child.manifest.digest);
    assert.equal(manifest.document.kind, 'manifest');
    if (manifest.document.kind === 'manifest')
      assert.equal(manifest.document.manifest.layers[0]?.digest, child.layers[0]?.digest);
  });

  test('streams a blob into a sink and verifies it', async () => {
    const layer = single.images[0]?.layers[1];
    assert.ok(layer);
    const sink = new MemorySink();
    const progress: number[] = [];
    const result = await client.fetchBlob(repo('test/single'), layer, sink, {
      onProgress: (p) => progress.push(p.offset),
    });
    assert.equal(result.verified, true);
    assert.equal(result.bytesReceived, layer.size);
    assert.deepEqual(sink.bytes(), await readBlob(single.blobPath(layer.digest)));
    assert.equal(progress.at(-1), layer.size);
  });

  test('resumes from a sink that already holds half the blob (Range → 206)', async () => {
    const layer = single.images[0]?.layers[1];
    assert.ok(layer);
    const full = await readBlob(single.blobPath(layer.digest));
    const half = Math.floor(layer.size / 2);
    proxy.reset();
    const sink = new MemorySink(full.subarray(0, half));
    const result = await client.fetchBlob(repo('test/single'), layer, sink);
    assert.deepEqual(sink.bytes(), full);
    assert.equal(result.bytesReceived, layer.size - half);
    assert.equal(result.verified, true);
    const blobRequests = proxy.requests.filter((r) => r.path.endsWith(layer.digest));
    assert.equal(blobRequests.length, 1);
    assert.equal(blobRequests[0]?.headers.range, `bytes=${half}-`);
    assert.equal(blobRequests[0]?.status, 206);
  });

  test('a partial sink that cannot be read back is started over, so the digest is still checked', async () => {
    const layer = single.images[0]?.layers[0];
    assert.ok(layer);
    const full = await readBlob(single.blobPath(layer.digest));
    const sink = new OpaqueSink(full.subarray(0, 1000));
    const result = await client.fetchBlob(repo('test/single'), layer, sink);
    assert.equal(sink.resets, 1);
    assert.equal(result.bytesReceived, layer.size);
    assert.deepEqual(sink.bytes(), full);
  });

  test('a partial sink with wrong content fails the digest check and is emptied', async () => {
    const layer = single.images[0]?.layers[0];
    assert.ok(layer);
    const sink = new MemorySink(Buffer.alloc(1000, 7));
    await assert.rejects(client.fetchBlob(repo('test/single'), layer, sink), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.code, 'ErrDigestMismatch');
      assert.ok(err.message.includes(layer.digest));
      return true;
    });
    assert.equal(sink.offset, 0);
  });

  test('a config blob and an already complete sink', async () => {
    const config = single.images[0]?.config;
    assert.ok(config);
    const full = await readBlob(single.blobPath(config.digest));
    proxy.reset();
    const result = await client.fetchBlob(repo('test/single'), config, new MemorySink(full));
    assert.equal(result.bytesReceived, 0);
    assert.equal(proxy.requests.length, 0, 'nothing fetched for a complete, verified sink');
  });

  test('ignores foreign urls and uses embedded data only when it verifies', async () => {
    const config = single.images[0]?.config;
    assert.ok(config);
    const full = await readBlob(single.blobPath(config.digest));
    proxy.reset();
    const withData = await client.fetchBlob(
      repo('test/single'),
      { ...config, data: full.toString('base64'), urls: ['https://evil.invalid/x'] },
      new MemorySink(),
    );
    assert.equal(withData.endpoint, 'data:');
    assert.equal(proxy.requests.length, 0);
    const sink = new MemorySink();
    const badData = await client.fetchBlob(
      repo('test/single'),
      { ...config, data: Buffer.from('nope').toString('base64') },
      sink,
    );
    assert.equal(badData.endpoint, proxy.url);
    assert.deepEqual(sink.bytes(), full);
  });

  test('unknown tags, manifests and blobs are typed errors naming the image', async () => {
    await assert.rejects(client.resolve(repo('test/single'), 'nope'), (err: unknown) => {
      assert.ok(err instanceof RegistryError && err.code === 'ErrManifestUnknown');
      assert.match(err.message, /test\.local\/test\/single:nope/);
      assert.equal(err.status, 404);
      return true;
    });
    const missing = `sha256:${'0'.repeat(64)}`;
    proxy.reset();
    await assert.rejects(
      client.getManifest(repo('test/single'), missing),
      (err: unknown) => isKimgError(err) && ['ErrManifestUnknown', 'ErrBlobUnknown'].includes(err.code),
    );
    assert.deepEqual(
      proxy.requests.map((r) => r.path),
      [`/v2/test/single/manifests/${missing}`, `/v2/test/single/blobs/${missing}`],
      'a 404 by digest falls back to /blobs/ once',
    );
    await assert.rejects(
      client.fetchBlob(repo('test/single'), { mediaType: 'x', digest: missing, size: 10 }, new MemorySink()),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrBlobUnknown', String(err));
        assert.equal(err.registryErrors?.[0]?.code, 'BLOB_UNKNOWN');
        return true;
      },
    );
    await assert.rejects(
      client.resolve(repo('test/none'), 'v1'),
      (err: unknown) => err instanceof RegistryError && err.code === 'ErrManifestUnknown',
    );
  });

  test('refuses invalid digests and names before any request (S8)', async () => {
    proxy.reset();
    for (const digest of [
      'sha256:../../x',
      `sha256:${'A'.repeat(64)}`,
      'sha256:abc',
      `sha256:${'a'.repeat(64)}%2F`,
      `sha256:${'a'.repeat(63)}?`,
    ]) {
      await assert.rejects(client.getManifest(repo('test/single'), digest), (err: unknown) =>
        isKimgError(err, 'ErrInvalidArgument'),
      );
      await assert.rejects(
        client.fetchBlob(repo('test/single'), { mediaType: 'x', digest, size: 1 }, new MemorySink()),
        (err: unknown) => isKimgError(err, 'ErrInvalidArgument'),
      );
    }
    await assert.rejects(client.resolve(repo('../etc'), 'v1'), (err: unknown) =>
      isKimgError(err, 'ErrInvalidArgument'),
    );
    assert.equal(proxy.requests.length, 0);
  });

  test('never uses plain http for an endpoint not marked insecure (S6)', async () => {
    const strict = new RegistryClient({ endpoints: () => [{ baseUrl: registry.url }] });
    try {
      await assert.rejects(strict.resolve(repo('test/single'), 'v1'), (err: unknown) =>
        isKimgError(err, 'ErrInsecureEndpoint'),
      );
    } finally {
      await strict.close();
    }
  });

  test('ping reports the API version and no challenge', async () => {
    const { onEvent, events } = captureEvents();
    const c = new RegistryClient({ endpoints, onEvent });
    try {
      const ping = await c.ping('test.local');
      assert.equal(ping.status, 200);
      assert.equal(ping.apiVersion, 'registry/2.0');
      assert.deepEqual(ping.challenges, []);
      assert.equal(events.length, 0);
    } finally {
      await c.close();
    }
  });
});
