// SIGKILL in the middle of a pull-through download: the store is left fsck-clean (the partial
// stays in ingest/, nothing half-written in blobs/ or index.json), and a restarted server
// completes the blob on the next request, resuming what was downloaded.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { openStore } from '../../src/store/index.ts';
import {
  buildImage,
  fault,
  httpRequest,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  trackChild,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { eventually } from '../pull/helpers.ts';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
const skip = requireTools(['docker-registry', 'skopeo']);

async function serve(store: string, upstream: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      BIN,
      'registry',
      'serve',
      '--store',
      store,
      '--listen',
      '127.0.0.1:0',
      '--pull-through',
      '--default-upstream',
      upstream,
      '--no-access-log',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  trackChild(child);
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`kimg registry serve exited with ${code}`)));
  });
  return { child, url };
}

describe('SIGKILL during a pull-through', { skip }, () => {
  let tmp: TempDir;
  let upstream: RunningRegistry;
  let proxy: FaultProxy;
  let image: BuiltImage;

  before(async () => {
    tmp = await makeTempDir('kimg-serve-crash-');
    upstream = await startRegistry();
    proxy = await startFaultProxy({ upstream: upstream.url });
    image = await buildImage({ layers: [1_500_000], seed: 'serve-crash' });
    await pushImage(image, upstream.host, 'team/big:1');
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.stop();
    await tmp?.remove();
  });

  test('leaves the store fsck-clean, and the next request completes the blob', async () => {
    const storeDir = join(tmp.path, 'store');
    const layer = image.images[0]?.layers[0];
    assert.ok(layer);
    let { child, url } = await serve(storeDir, proxy.host);
    const manifest = await httpRequest(`${url}/v2/team/big/manifests/1`);
    assert.equal(manifest.status, 200);
    proxy.setRule((r) => (r.path.endsWith(layer.digest) ? fault.trickle(300_000) : undefined));
    const pending = httpRequest(`${url}/v2/team/big/blobs/${layer.digest}`, { timeoutMs: 60_000 }).catch(
      (err: unknown) => err,
    );
    const partialSize = async (): Promise<number> => {
      const names = await readdir(join(storeDir, 'ingest')).catch(() => [] as string[]);
      const data = names.find((n) => n.endsWith('.data'));
      return data === undefined ? 0 : (await stat(join(storeDir, 'ingest', data))).size;
    };
    await eventually(async () => (await partialSize()) > 100_000, 'a partial download', 20_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok((await pending) instanceof Error, 'the client saw a broken transfer');

    const store = await openStore(storeDir);
    const report = await store.fsck();
    assert.deepEqual(report.problems, []);
    assert.equal(await store.hasBlob(layer.digest), false);

    proxy.setRule(undefined);
    proxy.reset();
    ({ child, url } = await serve(storeDir, proxy.host));
    try {
      await httpRequest(`${url}/v2/team/big/manifests/1`);
      const blob = await httpRequest(`${url}/v2/team/big/blobs/${layer.digest}`, { timeoutMs: 60_000 });
      assert.equal(blob.status, 200);
      assert.equal(digestOf(blob.body), layer.digest);
      const gets = proxy.requests.filter((r) => r.path.endsWith(layer.digest));
      assert.match(String(gets[0]?.headers.range), /^bytes=[1-9]\d*-/, 'the partial was resumed');
      // The image is recorded under its tag once whole: the config too.
      const config = image.images[0]?.config.digest ?? '';
      assert.equal((await httpRequest(`${url}/v2/team/big/blobs/${config}`)).status, 200);
      await eventually(
        async () => (await store.getImage(`${proxy.host}/team/big:1`)) !== undefined,
        'the tag recorded',
      );
      assert.deepEqual((await store.fsck()).problems, []);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
