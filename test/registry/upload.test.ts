// Uploads against the real Distribution registry: HEAD-skip, monolithic and chunked uploads,
// mounts counted through a proxy, a PATCH cut mid-body resumed or restarted, a Location on
// another host answered without credentials, a corrupt source never committed, manifests with
// their exact bytes (skopeo reads them back), token scopes pull,push.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { RegistryClient, RegistryError, type BlobSource, type Endpoint } from '../../src/registry/index.ts';
import {
  buildImage,
  fault,
  inspectRaw,
  requireTools,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TokenServer,
} from '../harness/index.ts';
import { FakeClock } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);

/** A blob file as an upload source. */
function fileSource(path: string): BlobSource {
  return {
    async *open(offset: number) {
      yield* createReadStream(path, { start: offset, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>;
    },
  };
}

function bytesSource(bytes: Uint8Array): BlobSource {
  return {
    async *open(offset: number) {
      yield bytes.subarray(offset);
    },
  };
}

describe('registry uploads', { skip }, () => {
  let image: BuiltImage;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  const clients: RegistryClient[] = [];
  const user = { user: 'pusher', password: 'p4ss-word' };
  const client = (baseUrl: string, ca?: string): RegistryClient => {
    const endpoint: Endpoint = {
      baseUrl,
      insecure: baseUrl.startsWith('http:'),
      ...(ca !== undefined && { tls: { ca: [ca] } }),
    };
    const c = new RegistryClient({
      clock: new FakeClock(),
      endpoints: () => [endpoint],
      credentials: async (host) =>
        host === registry.host || host === proxy.host
          ? { kind: 'basic', username: user.user, password: user.password }
          : undefined,
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    image = await buildImage({ layers: [300_000, 3_000_000], seed: 'upload' });
    registry = await startRegistry({ tls: true, htpasswd: [user] });
    proxy = await startFaultProxy({ upstream: registry.url, ca: registry.caPem, rewriteLocation: true });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
  });

  const layers = () => image.images[0]?.layers ?? [];

  test('push over TLS + htpasswd: blobs, then the manifest; skopeo reads the same bytes; a second push only HEADs', async () => {
    const c = client(registry.url, registry.caPem);
    const platform = image.images[0];
    assert.ok(platform);
    for (const blob of [platform.config, ...platform.layers]) {
      // PATCHes of 1.4 MB: at least 1 MiB goes outside undici (bulk-upload.ts), over TLS.
      const r = await c.pushBlob('127.0.0.1/up/one', blob, fileSource(image.blobPath(blob.digest)), {
        monolithicMaxBytes: 1_000_000,
        chunkBytes: 1_400_000,
      });
      assert.equal(r.outcome, 'pushed');
      assert.equal(r.bytesSent, blob.size);
    }
    // The registry's name in the reference is the test client's endpoint: map it.
    const bytes = await readFile(image.blobPath(platform.manifest.digest));
    const put = await c.putManifest('127.0.0.1/up/one', 'v1', bytes, platform.manifest.mediaType);
    assert.equal(put.digest, platform.manifest.digest);
    const raw = await inspectRaw(`${registry.host}/up/one:v1`, {
      creds: user,
      certDir: registry.certDir,
      tlsVerify: true,
    });
    assert.equal(digestOf(raw), digestOf(bytes));
    const again = await c.pushBlob(
      '127.0.0.1/up/one',
      platform.config,
      fileSource(image.blobPath(platform.config.digest)),
    );
    assert.equal(again.outcome, 'exists');
    assert.equal(again.bytesSent, 0);
  });

  test('a mount from another repository uploads no blob bytes (counted by a proxy)', async () => {
    const c = client(proxy.url);
    const layer = layers()[1];
    assert.ok(layer);
    await c.pushBlob('127.0.0.1/up/src', layer, fileSource(image.blobPath(layer.digest)));
    proxy.reset();
    const r = await c.pushBlob('127.0.0.1/up/dst', layer, fileSource(image.blobPath(layer.digest)), {
      mountFrom: 'up/src',
    });
    assert.equal(r.outcome, 'mounted');
    const uploaded = proxy.requests.reduce((n, q) => n + q.bytesReceived, 0);
    assert.equal(uploaded, 0);
    assert.ok(proxy.requests.some((q) => q.method === 'POST' && q.url.includes('mount=')));
    assert.ok(await c.hasBlob('127.0.0.1/up/dst', layer));
  });

  test('waitToSend is awaited with the session open and nothing sent; onSent comes once every PATCH is in, before the closing PUT', async () => {
    const c = client(proxy.url);
    const layer = layers()[1];
    assert.ok(layer);
    proxy.reset();
    let putsAtSent: number | undefined;
    const puts = () => proxy.requests.filter((q) => q.method === 'PUT').length;
    const patched = () => proxy.requests.filter((q) => q.method === 'PATCH').reduce((n, q) => n + q.bytesReceived, 0);
    let patchedAtSent = 0;
    let atWait: { posts: number; patches: number } | undefined;
    const r = await c.pushBlob('127.0.0.1/up/sent', layer, fileSource(image.blobPath(layer.digest)), {
      monolithicMaxBytes: 100_000,
      chunkBytes: 1_400_000,
      waitToSend: async () => {
        atWait = {
          posts: proxy.requests.filter((q) => q.method === 'POST').length,
          patches: proxy.requests.filter((q) => q.method === 'PATCH').length,
        };
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
      onSent: () => {
        putsAtSent = puts();
        patchedAtSent = patched();
      },
    });
    assert.equal(r.outcome, 'pushed');
    assert.deepEqual(atWait, { posts: 1, patches: 0 });
    assert.equal(putsAtSent, 0, 'onSent before the PUT');
    assert.equal(patchedAtSent, layer.size, 'every byte was with the registry at onSent');
    assert.equal(puts(), 1);
  });

  test('a mount the registry cannot do (unknown source) falls back to an upload', async () => {
    const c = client(proxy.url);
    const layer = layers()[0];
    assert.ok(layer);
    const r = await c.pushBlob('127.0.0.1/up/fallback', layer, fileSource(image.blobPath(layer.digest)), {
      mountFrom: 'up/nowhere',
    });
    assert.equal(r.outcome, 'pushed');
  });

  // PATCH bodies under 1 MiB go through undici, larger ones on a connection of their own
  // (bulk-upload.ts): both are cut.
  for (const chunkBytes of [1_000_000, 1_400_000]) {
    test(`a PATCH (${chunkBytes} bytes) cut mid-body before it reaches the registry resumes from the offset the registry reports`, async () => {
      const c = client(proxy.url);
      const layer = layers()[1];
      assert.ok(layer);
      proxy.reset();
      proxy.setRule((r) => (r.method === 'PATCH' && r.count === 2 ? fault.cutRequest(200_000) : undefined));
      const r = await c.pushBlob(`127.0.0.1/up/resume-${chunkBytes}`, layer, fileSource(image.blobPath(layer.digest)), {
        monolithicMaxBytes: 100_000,
        chunkBytes,
      });
      assert.equal(r.outcome, 'pushed');
      assert.equal(r.resumes, 1);
      assert.equal(r.restarts, 0);
      assert.ok(proxy.requests.some((q) => q.method === 'GET' && q.path.includes('/blobs/uploads/')));
      assert.ok(await c.hasBlob(`127.0.0.1/up/resume-${chunkBytes}`, layer));
    });

    test(`a PATCH (${chunkBytes} bytes) cut after part of it reached the registry still lands (resumed or restarted, never corrupt)`, async () => {
      const c = client(proxy.url);
      const layer = layers()[1];
      assert.ok(layer);
      proxy.reset();
      let cut = false;
      proxy.setRule((r) => {
        if (cut || r.method !== 'PATCH' || r.count !== 2) return undefined;
        cut = true;
        return fault.cutRequest(300_000, true);
      });
      const r = await c.pushBlob(
        `127.0.0.1/up/partial-${chunkBytes}`,
        layer,
        fileSource(image.blobPath(layer.digest)),
        {
          monolithicMaxBytes: 100_000,
          chunkBytes,
        },
      );
      assert.equal(r.outcome, 'pushed');
      assert.ok(r.resumes + r.restarts >= 1);
      assert.ok(await c.hasBlob(`127.0.0.1/up/partial-${chunkBytes}`, layer));
    });
  }

  test('a source whose bytes do not match the digest is never committed', async () => {
    const c = client(registry.url, registry.caPem);
    // A small blob (through undici) and a large one (bulk-upload.ts), each in one PUT and in PATCHes.
    for (const [layer, chunkBytes] of [
      [layers()[0], 100_000],
      [layers()[1], 1_400_000],
    ] as const) {
      assert.ok(layer);
      const bad = Buffer.from(await readFile(image.blobPath(layer.digest)));
      bad[1000] = (bad[1000] ?? 0) ^ 0xff;
      for (const monolithicMaxBytes of [10_000_000, 100_000]) {
        const err: unknown = await c
          .pushBlob('127.0.0.1/up/bad', layer, bytesSource(bad), { monolithicMaxBytes, chunkBytes })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        assert.ok(err instanceof RegistryError, String(err));
        assert.equal(err.code, 'ErrDigestMismatch');
        assert.match(err.message, new RegExp(layer.digest));
        assert.equal(await c.hasBlob('127.0.0.1/up/bad', layer), false);
      }
    }
  });

  test('an upload Location on another host gets no credentials', async () => {
    const other = await startFaultProxy({ upstream: registry.url, ca: registry.caPem });
    try {
      const c = client(proxy.url);
      proxy.reset();
      proxy.setRule((r) =>
        r.method === 'POST'
          ? fault.forgeHeader('location', `${other.url}/v2/up/elsewhere/blobs/uploads/forged`)
          : undefined,
      );
      const layer = layers()[0];
      assert.ok(layer);
      const err = await c.pushBlob('127.0.0.1/up/elsewhere', layer, fileSource(image.blobPath(layer.digest))).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof RegistryError, String(err));
      assert.match(err.message, new RegExp(layer.digest));
      assert.ok(other.requests.length > 0);
      for (const q of other.requests) assert.equal(q.headers.authorization, undefined);
    } finally {
      await other.stop();
    }
  });

  test('a 5xx on the manifest PUT is an error naming the manifest, and the tag does not exist', async () => {
    const c = client(proxy.url);
    const platform = image.images[0];
    assert.ok(platform);
    proxy.reset();
    for (const blob of [platform.config, ...platform.layers])
      await c.pushBlob('127.0.0.1/up/five', blob, fileSource(image.blobPath(blob.digest)));
    proxy.reset();
    proxy.setRule((r) => (r.method === 'PUT' && r.path.includes('/manifests/') ? fault.serverError(500) : undefined));
    const bytes = await readFile(image.blobPath(platform.manifest.digest));
    const err = await c.putManifest('127.0.0.1/up/five', 'v1', bytes, platform.manifest.mediaType).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RegistryError, String(err));
    assert.equal(err.code, 'ErrRegistryUnavailable');
    assert.match(err.message, /up\/five:v1/);
    proxy.setRule(undefined);
    await assert.rejects(
      c.resolve('127.0.0.1/up/five', 'v1'),
      (e: unknown) => (e as RegistryError).code === 'ErrManifestUnknown',
    );
  });
});

describe('registry uploads with token auth', { skip }, () => {
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let client: RegistryClient;

  before(async () => {
    tokens = await startTokenServer({ users: { bob: 'b0b-secret' } });
    registry = await startRegistry({ token: tokens });
    client = new RegistryClient({
      clock: new FakeClock(),
      endpoints: () => [{ baseUrl: registry.url, insecure: true }],
      credentials: async () => ({ kind: 'basic', username: 'bob', password: 'b0b-secret' }),
    });
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
    await tokens?.stop();
  });

  test('tokens carry pull,push on the destination and pull on a mount source', async () => {
    const blob = Buffer.from('token scoped blob');
    const descriptor = { mediaType: 'application/octet-stream', digest: digestOf(blob), size: blob.byteLength };
    const first = await client.pushBlob('127.0.0.1/tok/a', descriptor, bytesSource(blob));
    assert.equal(first.outcome, 'pushed');
    const scopesAsked = () =>
      tokens.requests.flatMap((r) => [...(r.query.scope ?? []), ...(r.form?.scope?.split(' ') ?? [])]);
    assert.ok(scopesAsked().includes('repository:tok/a:pull,push'), scopesAsked().join(' '));
    const second = await client.pushBlob('127.0.0.1/tok/b', descriptor, bytesSource(blob), { mountFrom: 'tok/a' });
    assert.equal(second.outcome, 'mounted');
    const scopes = scopesAsked();
    assert.ok(scopes.includes('repository:tok/a:pull'), scopes.join(' '));
    assert.ok(scopes.includes('repository:tok/b:pull,push'), scopes.join(' '));
  });
});
