// `--allow-push`: skopeo pushes to kimg (single images and an index, digests preserved) and
// reads back the same bytes; the upload protocol's corners over raw HTTP: chunked PATCHes with
// Content-Range, out-of-order chunks (416), resuming with GET, mounts, a wrong digest, and a
// manifest whose blobs are missing.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { MediaType } from '../../src/oci/index.ts';
import { allowPush, type RegistryServer } from '../../src/server/index.ts';
import type { Store } from '../../src/store/index.ts';
import {
  buildImage,
  copyImage,
  httpRequest,
  inspectRaw,
  makeTempDir,
  requireTools,
  type BuiltImage,
  type TempDir,
} from '../harness/index.ts';
import { startServer } from './helpers.ts';

const skip = requireTools(['skopeo']);

describe('kimg registry serve --allow-push', { skip }, () => {
  let tmp: TempDir;
  let server: RegistryServer;
  let store: Store;
  let host: string;
  let image: BuiltImage;
  let index: BuiltImage;
  const code = (body: Buffer) => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]?.code;

  before(async () => {
    tmp = await makeTempDir('kimg-serve-push-');
    [image, index] = await Promise.all([
      buildImage({ layers: [4_000, 250_000], seed: 'push-image' }),
      buildImage({ layers: [30_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'push-index' }),
    ]);
    ({ server, store, host } = await startServer(join(tmp.path, 'store'), { writes: allowPush() }));
  });

  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('skopeo pushes an image and an index; the same bytes come back; the store is fsck-clean', async () => {
    await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${host}/team/app:1`, { preserveDigests: true });
    await copyImage(`oci:${index.layout}:${index.tag}`, `docker://${host}/team/multi:1`, {
      all: true,
      preserveDigests: true,
    });
    assert.equal(digestOf(await inspectRaw(`${host}/team/app:1`)), image.digest);
    assert.equal(digestOf(await inspectRaw(`${host}/team/multi:1`)), index.digest);
    assert.equal((await store.getImage('docker.io/team/app:1'))?.descriptor.digest, image.digest);
    const out = join(tmp.path, 'back');
    await copyImage(`docker://${host}/team/multi:1`, `oci:${out}:x`, { all: true, preserveDigests: true });
    assert.deepEqual((await store.fsck()).problems, []);
    // Pushing again: every blob is already there.
    await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${host}/team/app:2`, { preserveDigests: true });
    assert.equal((await store.getImage('docker.io/team/app:2'))?.descriptor.digest, image.digest);
  });

  test('chunked upload with Content-Range, an out-of-order chunk (416), resume with GET, then PUT', async () => {
    const blob = Buffer.alloc(30_000, 7);
    const digest = digestOf(blob);
    const started = await httpRequest(`${server.url}/v2/team/chunks/blobs/uploads/`, { method: 'POST' });
    assert.equal(started.status, 202);
    assert.equal(started.headers.range, '0-0');
    const location = new URL(String(started.headers.location), server.url).href;
    const first = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '0-9999', 'content-type': 'application/octet-stream' },
      body: blob.subarray(0, 10_000),
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.range, '0-9999');
    const skipped = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '20000-29999' },
      body: blob.subarray(20_000),
    });
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.range, '0-9999');
    const status = await httpRequest(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-9999');
    const second = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '10000-29999' },
      body: blob.subarray(10_000),
    });
    assert.equal(second.status, 202);
    const put = await httpRequest(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
      method: 'PUT',
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers['docker-content-digest'], digest);
    const back = await httpRequest(`${server.url}/v2/team/chunks/blobs/${digest}`);
    assert.deepEqual(back.body, blob);
  });

  test('monolithic POST, a wrong digest, mounts, and a manifest with a missing blob', async () => {
    const blob = Buffer.from('monolithic blob');
    const digest = digestOf(blob);
    const mono = await httpRequest(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: blob,
    });
    assert.equal(mono.status, 201);
    const wrong = await httpRequest(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digestOf('other')}`, {
      method: 'POST',
      body: blob,
    });
    assert.equal(wrong.status, 400);
    assert.equal(code(wrong.body), 'DIGEST_INVALID');
    const mounted = await httpRequest(`${server.url}/v2/team/other/blobs/uploads/?mount=${digest}&from=team/mono`, {
      method: 'POST',
    });
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers['docker-content-digest'], digest);
    const notHere = await httpRequest(
      `${server.url}/v2/team/other/blobs/uploads/?mount=${digestOf('absent')}&from=team/mono`,
      { method: 'POST' },
    );
    assert.equal(notHere.status, 202);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf('absent config'), size: 14 },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest, size: blob.byteLength }],
    });
    const refused = await httpRequest(`${server.url}/v2/team/mono/manifests/1`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: manifest,
    });
    assert.equal(refused.status, 400);
    assert.equal(code(refused.body), 'MANIFEST_BLOB_UNKNOWN');
    const badDigest = await httpRequest(`${server.url}/v2/team/mono/manifests/${digestOf('x')}`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: await store.readBlob(image.digest, 1 << 20),
    });
    assert.equal(code(badDigest.body), 'DIGEST_INVALID');
    const malformed = await httpRequest(`${server.url}/v2/team/mono/manifests/1`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
    });
    assert.equal(code(malformed.body), 'MANIFEST_INVALID');
  });
});
