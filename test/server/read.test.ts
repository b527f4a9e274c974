// The read side of `kimg registry serve` over a store, with real clients: skopeo reads manifests
// and copies images out of it (by tag, by digest, every platform), and raw HTTP checks the
// protocol facts clients rely on: exact bytes, headers, Accept, Range, pagination, referrers,
// `?ns=` routing, the spec's errors, and that no request reaches outside the store.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { MediaType } from '../../src/oci/index.ts';
import type { RegistryServer } from '../../src/server/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
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
import { seedStore, startServer } from './helpers.ts';

const skip = requireTools(['skopeo']);

describe('kimg registry serve: read side', { skip }, () => {
  let tmp: TempDir;
  let server: RegistryServer;
  let store: Store;
  let host: string;
  let single: BuiltImage;
  let multi: BuiltImage;
  let docker: BuiltImage;
  const url = (path: string) => `${server.url}${path}`;
  const errorCode = (body: Buffer) =>
    (JSON.parse(body.toString('utf8')) as { errors: { code: string }[] }).errors[0]?.code;

  before(async () => {
    tmp = await makeTempDir('kimg-serve-read-');
    [single, multi, docker] = await Promise.all([
      buildImage({ layers: [3_000, 70_000], seed: 'serve-single' }),
      buildImage({ layers: [10_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'serve-multi' }),
      buildImage({ layers: [5_000], format: 'docker', seed: 'serve-docker' }),
    ]);
    ({ server, store, host } = await startServer(join(tmp.path, 'store')));
    await seedStore(store, single, 'docker.io/library/app:1');
    await seedStore(store, single, 'docker.io/library/app:latest');
    await seedStore(store, multi, '127.0.0.1:5000/team/multi:2');
    await seedStore(store, multi, 'quay.io/team/multi:2');
    await seedStore(store, docker, 'registry.k8s.io/pause:3.9');
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await seedStore(store, docker, `quay.io/org/many:${tag}`);
  });

  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('GET /v2/ answers {} with the API version header', async () => {
    const res = await httpRequest(url('/v2/'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(JSON.parse(res.body.toString()), {});
  });

  test('skopeo reads the exact stored manifest bytes, by tag and by digest', async () => {
    const stored = await store.readBlob(single.digest, 1 << 20);
    assert.deepEqual(await inspectRaw(`${host}/library/app:1`), stored);
    assert.deepEqual(await inspectRaw(`${host}/app@${single.digest}`), stored);
    // A name with its own host is that registry's; the encoded ns parameter is tested below.
    assert.deepEqual(
      await inspectRaw(`${host}/registry.k8s.io/pause:3.9`),
      await store.readBlob(docker.digest, 1 << 20),
    );
  });

  test('skopeo copies an index with every platform out of it, digests preserved', async () => {
    const out = join(tmp.path, 'copied');
    await copyImage(`docker://${host}/quay.io/team/multi:2`, `oci:${out}:x`, {
      all: true,
      preserveDigests: true,
    });
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, multi.digest);
    for (const image of multi.images)
      for (const layer of image.layers) {
        const bytes = await readFile(join(out, 'blobs', 'sha256', layer.digest.slice(7)));
        assert.equal(digestOf(bytes), layer.digest);
      }
  });

  test('manifest HEAD and GET carry type, digest and length; Accept is honoured', async () => {
    const head = await httpRequest(url('/v2/library/app/manifests/1?ns=docker.io'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], MediaType.OciManifest);
    assert.equal(head.headers['docker-content-digest'], single.digest);
    assert.equal(Number(head.headers['content-length']), single.size);
    assert.equal(head.body.byteLength, 0);
    const refused = await httpRequest(url('/v2/library/app/manifests/1'), {
      headers: { accept: MediaType.DockerManifest },
    });
    assert.equal(refused.status, 404);
    assert.equal(errorCode(refused.body), 'MANIFEST_UNKNOWN');
    const any = await httpRequest(url('/v2/library/app/manifests/1'), {
      headers: { accept: `${MediaType.DockerManifest}, */*` },
    });
    assert.equal(any.status, 200);
  });

  test('?ns= routes to the upstream named, URL-encoded host and port included', async () => {
    const res = await httpRequest(url('/v2/team/multi/manifests/2?ns=127.0.0.1%3A5000'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], multi.digest);
    assert.equal(res.headers['content-type'], MediaType.OciIndex);
    const elsewhere = await httpRequest(url('/v2/team/multi/manifests/2?ns=docker.io'));
    assert.equal(elsewhere.status, 404);
    assert.equal(errorCode(elsewhere.body), 'NAME_UNKNOWN');
    const platform = multi.images[1]?.manifest.digest ?? '';
    const child = await httpRequest(url(`/v2/team/multi/manifests/${platform}?ns=127.0.0.1%3A5000`));
    assert.equal(child.status, 200);
    assert.equal(digestOf(child.body), platform);
  });

  test('blobs: whole, HEAD, one Range (206), unsatisfiable Range (416)', async () => {
    const layer = single.images[0]?.layers[1];
    assert.ok(layer);
    const whole = await httpRequest(url(`/v2/library/app/blobs/${layer.digest}`));
    assert.equal(whole.status, 200);
    assert.equal(digestOf(whole.body), layer.digest);
    assert.equal(whole.headers['docker-content-digest'], layer.digest);
    const head = await httpRequest(url(`/v2/library/app/blobs/${layer.digest}`), { method: 'HEAD' });
    assert.equal(Number(head.headers['content-length']), layer.size);
    const part = await httpRequest(url(`/v2/library/app/blobs/${layer.digest}`), {
      headers: { range: 'bytes=100-199' },
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 100-199/${layer.size}`);
    assert.deepEqual(part.body, whole.body.subarray(100, 200));
    const tail = await httpRequest(url(`/v2/library/app/blobs/${layer.digest}`), { headers: { range: 'bytes=-10' } });
    assert.deepEqual(tail.body, whole.body.subarray(layer.size - 10));
    const beyond = await httpRequest(url(`/v2/library/app/blobs/${layer.digest}`), {
      headers: { range: `bytes=${layer.size}-` },
    });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${layer.size}`);
  });

  test('a tag another store object writes (as another process would) is served at once, and its removal too', async () => {
    const other = await openStore(join(tmp.path, 'store'));
    await other.setImage('docker.io/library/app:added', {
      mediaType: single.mediaType,
      digest: single.digest,
      size: single.size,
    });
    const headers = { accept: single.mediaType };
    const added = await httpRequest(url('/v2/library/app/manifests/added'), { method: 'HEAD', headers });
    assert.equal(added.status, 200);
    assert.equal(added.headers['docker-content-digest'], single.digest);
    assert.equal(await other.removeImage('docker.io/library/app:added'), true);
    const removed = await httpRequest(url('/v2/library/app/manifests/added'), { method: 'HEAD', headers });
    assert.equal(removed.status, 404);
  });

  test('tags/list and _catalog paginate with n, last and a Link header', async () => {
    const first = await httpRequest(url('/v2/quay.io/org/many/tags/list?n=2'));
    assert.deepEqual(JSON.parse(first.body.toString()), { name: 'quay.io/org/many', tags: ['a', 'b'] });
    assert.equal(first.headers.link, '</v2/quay.io/org/many/tags/list?n=2&last=b>; rel="next"');
    const next = await httpRequest(url('/v2/quay.io/org/many/tags/list?n=2&last=b'));
    assert.deepEqual(JSON.parse(next.body.toString()).tags, ['c', 'd']);
    const rest = await httpRequest(url('/v2/quay.io/org/many/tags/list?last=d'));
    assert.deepEqual(JSON.parse(rest.body.toString()).tags, ['e']);
    assert.equal(rest.headers.link, undefined);
    const all = await httpRequest(url('/v2/library/app/tags/list'));
    assert.deepEqual(JSON.parse(all.body.toString()).tags, ['1', 'latest']);
    const catalog = await httpRequest(url('/v2/_catalog'));
    assert.deepEqual(JSON.parse(catalog.body.toString()).repositories, [
      '127.0.0.1:5000/team/multi',
      'library/app',
      'quay.io/org/many',
      'quay.io/team/multi',
      'registry.k8s.io/pause',
    ]);
    const page = await httpRequest(url('/v2/_catalog?n=1&last=library/app'));
    assert.deepEqual(JSON.parse(page.body.toString()).repositories, ['quay.io/org/many']);
    assert.match(String(page.headers.link), /last=quay\.io%2Forg%2Fmany/);
  });

  test('referrers: an index of the manifests whose subject is the digest, filtered by artifactType', async () => {
    const empty = await httpRequest(url(`/v2/library/app/referrers/${single.digest}`));
    assert.equal(empty.status, 200);
    assert.deepEqual(JSON.parse(empty.body.toString()).manifests, []);
    const config = Buffer.from('{}');
    await store.putBlob({ mediaType: MediaType.OciEmpty, digest: digestOf(config), size: 2 }, config);
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: MediaType.OciEmpty, digest: digestOf(config), size: 2 },
        layers: [],
        subject: { mediaType: MediaType.OciManifest, digest: single.digest, size: single.size },
      }),
    );
    await store.putBlob(
      { mediaType: MediaType.OciManifest, digest: digestOf(referrer), size: referrer.byteLength },
      referrer,
    );
    const found = await httpRequest(url(`/v2/library/app/referrers/${single.digest}`));
    const index = JSON.parse(found.body.toString()) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(
      index.manifests.map((m) => [m.digest, m.artifactType]),
      [[digestOf(referrer), 'application/vnd.example.sbom']],
    );
    const filtered = await httpRequest(url(`/v2/library/app/referrers/${single.digest}?artifactType=other%2Ftype`));
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(JSON.parse(filtered.body.toString()).manifests, []);
  });

  test('errors: the spec codes and statuses, and no path leaves the store', async () => {
    const cases: [string, number, string][] = [
      ['/v2/library/App/manifests/1', 400, 'NAME_INVALID'],
      ['/v2/library/app/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
      ['/v2/library/app/blobs/sha256:..%2F..%2Findex.json', 400, 'DIGEST_INVALID'],
      [`/v2/library/app/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/library/app/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/nothing/manifests/1', 404, 'NAME_UNKNOWN'],
      ['/v2/library/nothing/tags/list', 404, 'NAME_UNKNOWN'],
      ['/v2/library/..%2F..%2Fetc/manifests/passwd', 400, 'NAME_INVALID'],
      ['/v2/library/app/manifests/1?ns=..%2F..', 400, 'NAME_INVALID'],
      ['/v2/library/app/tags/list?n=x', 400, 'UNSUPPORTED'],
    ];
    for (const [path, status, code] of cases) {
      const res = await httpRequest(url(path));
      assert.equal(res.status, status, path);
      assert.equal(errorCode(res.body), code, path);
    }
    // A layer is not a manifest.
    const layer = single.images[0]?.layers[0]?.digest ?? '';
    const notManifest = await httpRequest(url(`/v2/library/app/manifests/${layer}`));
    assert.equal(notManifest.status, 404);
  });

  test('without --allow-push, writes are validated, then refused as UNSUPPORTED', async () => {
    const malformed = await httpRequest(url('/v2/library/app/manifests/new'), {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: '{"schemaVersion": 2, "layers": "no"}',
    });
    assert.equal(malformed.status, 400);
    assert.equal(errorCode(malformed.body), 'MANIFEST_INVALID');
    const valid = await httpRequest(url('/v2/library/app/manifests/new'), {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: await store.readBlob(single.digest, 1 << 20),
    });
    assert.equal(valid.status, 405);
    assert.equal(errorCode(valid.body), 'UNSUPPORTED');
    const upload = await httpRequest(url('/v2/library/app/blobs/uploads/'), { method: 'POST' });
    assert.equal(upload.status, 405);
    const badDigest = await httpRequest(url('/v2/library/app/blobs/uploads/?digest=sha256:zz'), { method: 'POST' });
    assert.equal(errorCode(badDigest.body), 'DIGEST_INVALID');
  });
});
