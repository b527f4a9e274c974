// The copy engine's pacing against the real Distribution registry, counted by a proxy in front of
// the destination: the next blobs' upload sessions opened while a body streams, and the copy
// still exact.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { copyImage, openDestination, openSource, parseTransport } from '../../src/copy/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
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

const skip = requireTools(['docker-registry', 'skopeo']);
const MiB = 1024 * 1024;

describe('copy engine pacing', { skip }, () => {
  let a: RunningRegistry;
  let b: RunningRegistry;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let client: RegistryClient;

  before(async () => {
    // Layers above the 16 MiB of a one-request upload: each goes as a session, a PATCH and a PUT.
    [a, b, image] = await Promise.all([
      startRegistry(),
      startRegistry(),
      buildImage({ layers: [17 * MiB, 17 * MiB, 17 * MiB, 17 * MiB], seed: 'pacing', compression: 'none' }),
    ]);
    proxy = await startFaultProxy({ upstream: b.url, rewriteLocation: true });
    client = new RegistryClient({ endpoints: (registry) => [{ baseUrl: `http://${registry}`, insecure: true }] });
    await pushImage(image, a, 'team/app:v1');
  });
  after(async () => {
    await client?.close();
    await Promise.all([a?.stop(), b?.stop(), proxy?.stop(), image?.remove()]);
  });

  test('the next blobs open their upload sessions while a body streams, and the copy is exact', async () => {
    const ctx = { registry: client, store: () => Promise.reject(new Error('no store')) };
    const source = await openSource(parseTransport(`docker://${a.host}/team/app:v1`), ctx);
    const destination = await openDestination(parseTransport(`docker://${proxy.host}/paced/app:v1`), ctx);
    let digest: string;
    try {
      const result = await copyImage(source, destination, { concurrency: 1 });
      assert.equal(result.pushed, 5);
      digest = result.descriptor.digest;
    } finally {
      await destination.close();
      await source.close();
    }
    const uploads = proxy.requests.filter((q) => q.path.includes('/blobs/uploads/'));
    const patched = new Set(uploads.filter((q) => q.method === 'PATCH').map((q) => q.path));
    assert.equal(patched.size, 4, 'one PATCHed session per large layer');
    // When the first PATCHed layer is committed, another session is already open: the next
    // layer's did not wait for that commit (a PUT before it closed a one-request upload).
    const firstCommit = uploads.findIndex((q) => q.method === 'PUT' && patched.has(q.path));
    const before = uploads.slice(0, firstCommit);
    const open = before.filter((q) => q.method === 'POST').length - before.filter((q) => q.method === 'PUT').length;
    assert.ok(open >= 2, `sessions open at the first commit: ${uploads.map((q) => q.method).join(' ')}`);
    const resolved = await client.resolve(`${b.host}/paced/app`, 'v1');
    assert.equal(resolved.descriptor.digest, digest);
  });
});
