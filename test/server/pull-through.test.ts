// Pull-through with real peers: a Distribution registry upstream (behind a counting fault
// proxy), one with htpasswd auth, and one in proxy mode; skopeo, in-process HTTP clients and
// containerd 1.6 as clients of kimg. One upstream download per blob for 20 concurrent clients,
// a corrupted blob never ends cleanly and never reaches the store, a stale tag is served while
// upstream fails, and the store stays fsck-clean.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { openRegistry } from '../../src/pull/index.ts';
import { loadHostsConfig } from '../../src/registry/hosts/index.ts';
import type { RegistryClient } from '../../src/registry/index.ts';
import type { RegistryServer } from '../../src/server/index.ts';
import { renderHostsToml } from '../../src/server/node-config.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import {
  Containerd,
  buildImage,
  copyImage,
  fault,
  freePort,
  httpRequest,
  inspectRaw,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { blobGetCounts, eventually } from '../pull/helpers.ts';
import { startServer } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

/** A client as containerd pulls: the manifest by tag, then every blob it names, each verified. */
async function pullAll(base: string, repo: string, tag: string): Promise<string[]> {
  const manifest = await httpRequest(`${base}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    timeoutMs: 60_000,
  });
  assert.equal(manifest.status, 200, manifest.body.toString());
  const doc = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const digests = [doc.config.digest, ...doc.layers.map((l) => l.digest)];
  for (const digest of digests) {
    const blob = await httpRequest(`${base}/v2/${repo}/blobs/${digest}`, { timeoutMs: 60_000 });
    assert.equal(blob.status, 200);
    assert.equal(digestOf(blob.body), digest);
  }
  return digests;
}

describe('kimg registry serve --pull-through', { skip }, () => {
  let tmp: TempDir;
  let upstream: RunningRegistry;
  let proxy: FaultProxy;
  let server: RegistryServer;
  let store: Store;
  let client: RegistryClient;
  let image: BuiltImage;
  let wide: BuiltImage;
  let index: BuiltImage;
  const log: string[] = [];

  before(async () => {
    tmp = await makeTempDir('kimg-serve-pt-');
    upstream = await startRegistry();
    proxy = await startFaultProxy({ upstream: upstream.url });
    [image, wide, index] = await Promise.all([
      buildImage({ layers: [5_000, 300_000], seed: 'pt-image' }),
      buildImage({ layers: [400_000, 300_000, 200_000], seed: 'pt-wide' }),
      buildImage({ layers: [20_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'pt-index' }),
    ]);
    await pushImage(image, upstream.host, 'team/app:1');
    await pushImage(wide, upstream.host, 'team/wide:1');
    await pushImage(index, upstream.host, 'team/multi:1');
    store = await openStore(join(tmp.path, 'store'));
    // As the CLI configures it: a mirror does not keep its clients waiting on upstream retries.
    client = openRegistry({ client: { retry: { maxAttempts: 2, baseDelayMs: 100 } } });
    ({ server } = await startServer(join(tmp.path, 'store'), {
      store,
      defaultUpstream: proxy.host,
      pullThrough: { client },
      log: (line) => log.push(line),
    }));
  });

  after(async () => {
    await server?.close();
    await client?.close();
    await proxy?.stop();
    await upstream?.stop();
    await tmp?.remove();
  });

  test('skopeo copies an image it has never stored; it is then stored whole and fsck-clean', async () => {
    proxy.reset();
    const out = join(tmp.path, 'copy-1');
    await copyImage(`docker://127.0.0.1:${server.port}/team/app:1`, `oci:${out}:x`, { preserveDigests: true });
    assert.deepEqual(
      await inspectRaw(`127.0.0.1:${server.port}/team/app:1`),
      await store.readBlob(image.digest, 1 << 20),
    );
    // Recorded once the last blob committed (just after the client had its last byte).
    await eventually(async () => (await store.getImage(`${proxy.host}/team/app:1`)) !== undefined, 'the tag');
    const record = await store.getImage(`${proxy.host}/team/app:1`);
    assert.equal(record?.descriptor.digest, image.digest);
    for (const layer of image.images[0]?.layers ?? []) assert.ok(await store.hasBlob(layer.digest));
    const report = await store.fsck();
    assert.deepEqual(report.problems, []);
    // Served from the store now: only the tag is asked upstream again (as Distribution's proxy).
    proxy.reset();
    await copyImage(`docker://127.0.0.1:${server.port}/team/app:1`, `oci:${join(tmp.path, 'copy-2')}:x`);
    assert.deepEqual(
      proxy.requests.map((r) => `${r.method} ${r.path}`),
      [`HEAD /v2/team/app/manifests/1`],
    );
  });

  test('20 concurrent clients on one uncached image: one upstream download per blob', async () => {
    proxy.reset();
    const missesBefore = server.metrics.pullThrough.sum({ kind: 'blob', result: 'miss' });
    const results = await Promise.all(Array.from({ length: 20 }, () => pullAll(server.url, 'team/wide', '1')));
    const digests = results[0] ?? [];
    const counts = blobGetCounts(proxy);
    const shown = proxy.requests.map(
      (r) => `${r.method} ${r.path} ${String(r.headers.range ?? '')} ${r.status} ${r.bytesSent} ${r.error ?? ''}`,
    );
    for (const digest of digests) assert.equal(counts.get(digest), 1, shown.join('\n'));
    // The tag is asked upstream by every request that does not join one in flight (as
    // Distribution's proxy); the manifest itself is fetched once.
    const manifestGets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/manifests/'));
    assert.equal(manifestGets.length, 1, manifestGets.map((r) => `${r.method} ${r.path}`).join('\n'));
    assert.equal(server.metrics.pullThrough.sum({ kind: 'blob', result: 'miss' }) - missesBefore, digests.length);
  });

  test('a blob that fails verification resets the client and never reaches the store; the next request completes', async () => {
    const layer = index.images[0]?.layers[0];
    const platform = index.images[0]?.manifest;
    assert.ok(layer && platform);
    // The manifest first, so the blob's size is known.
    const m = await httpRequest(`${server.url}/v2/team/multi/manifests/${platform.digest}`);
    assert.equal(m.status, 200);
    proxy.setRule((r) => (r.path.endsWith(layer.digest) ? fault.flipByte(100) : undefined));
    await assert.rejects(httpRequest(`${server.url}/v2/team/multi/blobs/${layer.digest}`));
    assert.equal(await store.hasBlob(layer.digest), false);
    proxy.setRule(undefined);
    const again = await httpRequest(`${server.url}/v2/team/multi/blobs/${layer.digest}`);
    assert.equal(again.status, 200);
    assert.equal(digestOf(again.body), layer.digest);
    // The client has its last byte once the content verified; the commit (fsync, rename) follows.
    await eventually(() => store.hasBlob(layer.digest), 'the blob committed');
    assert.ok(
      log.some((line) => line.includes(layer.digest) && line.includes('failed')),
      log.join('\n'),
    );
  });

  test('while upstream fails, the stored tag is served and the staleness logged', async () => {
    proxy.setRule((r) => (r.path.includes('/manifests/') ? fault.serverError(503) : undefined));
    try {
      const res = await httpRequest(`${server.url}/v2/team/app/manifests/1`, { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['docker-content-digest'], image.digest);
      assert.ok(log.some((line) => line.includes('serving the stored') && line.includes('team/app:1')));
      const unknown = await httpRequest(`${server.url}/v2/team/none/manifests/1`);
      assert.equal(unknown.status, 404);
    } finally {
      proxy.setRule(undefined);
    }
  });

  test('an upstream with htpasswd auth: the server uses its own credentials, never the client’s', async () => {
    const secured = await startRegistry({ htpasswd: [{ user: 'kimg', password: 'upstream-secret' }] });
    const counting = await startFaultProxy({ upstream: secured.url });
    const authClient = openRegistry({
      credentials: async () => ({ kind: 'basic', username: 'kimg', password: 'upstream-secret' }),
    });
    const { server: authServer } = await startServer(join(tmp.path, 'store'), {
      store,
      defaultUpstream: counting.host,
      pullThrough: { client: authClient },
    });
    try {
      await pushImage(image, secured.host, 'private/app:1', { creds: { user: 'kimg', password: 'upstream-secret' } });
      const res = await httpRequest(`${authServer.url}/v2/private/app/manifests/1`, {
        headers: { authorization: 'Basic Y2xpZW50OmNsaWVudC1zZWNyZXQ=' },
      });
      assert.equal(res.status, 200);
      assert.equal(digestOf(res.body), image.digest);
      const sent = counting.requests.map((r) => String(r.headers.authorization ?? ''));
      assert.ok(sent.some((h) => h.startsWith('Basic ')));
      assert.ok(!sent.some((h) => h.includes('Y2xpZW50OmNsaWVudC1zZWNyZXQ=')));
    } finally {
      await authServer.close();
      await authClient.close();
      await counting.stop();
      await secured.stop();
    }
  });

  test('a Distribution registry in proxy mode as the upstream', async () => {
    const distProxy = await startRegistry({ proxy: { remoteUrl: upstream.url } });
    const proxyClient = openRegistry();
    const { server: viaProxy } = await startServer(join(tmp.path, 'store-proxy'), {
      defaultUpstream: distProxy.host,
      pullThrough: { client: proxyClient },
    });
    try {
      const digests = await pullAll(viaProxy.url, 'team/app', '1');
      assert.equal(digests.length, 3);
    } finally {
      await viaProxy.close();
      await proxyClient.close();
      await distProxy.stop();
    }
  });

  test('hosts.toml naming this very server as the mirror does not loop: it answers itself from the store only', async () => {
    const port = await freePort();
    const hostsDir = join(tmp.path, 'hosts-loop');
    await mkdir(join(hostsDir, proxy.host), { recursive: true });
    await writeFile(
      join(hostsDir, proxy.host, 'hosts.toml'),
      `server = "${proxy.url}"\n\n[host."http://127.0.0.1:${port}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const looping = openRegistry({
      hosts: await loadHostsConfig({ hostsDir }),
      client: { retry: { maxAttempts: 1 }, userAgent: 'kimg-registry-pull-through/loop-token-1' },
    });
    const { server: self } = await startServer(join(tmp.path, 'store-loop'), {
      port,
      defaultUpstream: proxy.host,
      pullThrough: { client: looping, loopToken: 'loop-token-1' },
    });
    try {
      const digests = await pullAll(self.url, 'team/app', '1');
      assert.equal(digests.length, 3);
    } finally {
      await self.close();
      await looping.close();
    }
  });

  test(
    'containerd pulls through kimg from the upstream named by ?ns=',
    { skip: requireTools(['containerd', 'ctr']) },
    async () => {
      const hosts = join(tmp.path, 'hosts');
      for (const [host, text] of renderHostsToml({ mirror: server.url, registries: [proxy.host] })) {
        await mkdir(join(hosts, host), { recursive: true });
        await writeFile(join(hosts, host, 'hosts.toml'), text);
      }
      const containerd = await Containerd.start(join(tmp.path, 'containerd'), 'kimg-pt');
      try {
        proxy.reset();
        await containerd.ctr([
          'content',
          'fetch',
          '--hosts-dir',
          hosts,
          '--platform',
          'linux/arm64/v8',
          `${proxy.host}/team/multi:1`,
        ]);
        const listing = await containerd.ctr(['images', 'ls']);
        assert.match(listing, new RegExp(index.digest));
        // containerd went to kimg (ns routed), and kimg fetched the arm64 layer upstream once.
        const arm = index.images.find((i) => i.platformString.startsWith('linux/arm64'));
        for (const layer of arm?.layers ?? []) assert.equal(blobGetCounts(proxy).get(layer.digest), 1);
        assert.deepEqual((await store.fsck()).problems, []);
      } finally {
        await containerd.stop();
      }
    },
  );
});
