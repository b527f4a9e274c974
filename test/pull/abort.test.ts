// Aborting pulls and watching them: an AbortSignal fired mid-download leaves nothing unverified
// in blobs/ and the next pull resumes the partial download with a Range request; progress events
// count a multi-MiB layer's bytes up; pulls sharing work in one Puller abort independently.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { PullError, Puller, type PullEvent } from '../../src/pull/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type BuiltLayer,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { blobGetCounts, captureEvents, eventually, ingestFiles, storedBlobs } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const LAYER_BYTES = 3 * 1024 * 1024;

type ProgressEvent = Extract<PullEvent, { type: 'blob-progress' }>;

/** Resolves at the first progress event for `digest` past `bytes`. */
function progressPast(events: readonly PullEvent[], digest: string, bytes: number): Promise<void> {
  return eventually(
    () => events.some((e) => e.type === 'blob-progress' && e.digest === digest && e.bytes > bytes),
    `progress past ${bytes} bytes`,
  );
}

describe('pull engine: abort, resume and progress', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let image: BuiltImage;
  let big: BuiltLayer;
  const pullers: Puller[] = [];
  let stores = 0;
  const newPuller = (): Puller => {
    const puller = new Puller({ store: `${tmp.path}/store-${++stores}` });
    pullers.push(puller);
    return puller;
  };
  const ref = () => `${proxy.host}/test/big:v1`;
  /** Slows the big layer's download to about 4 MB/s so a test can act in the middle of it. */
  const slowBigLayer = () =>
    proxy.setRule((r) => (r.method === 'GET' && r.path.endsWith(big.digest) ? fault.trickle(4_000_000) : undefined));

  before(async () => {
    tmp = await makeTempDir('kimg-pull-abort-');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    image = await buildImage({ layers: [LAYER_BYTES, 4_000], seed: 'pull-abort' });
    const layer = image.images[0]?.layers[0];
    assert.ok(layer);
    big = layer;
    await pushImage(image, registry, 'test/big:v1');
  });
  beforeEach(() => proxy.reset());
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  test('progress events count a multi-MiB layer up to its size', async () => {
    const { events, onEvent } = captureEvents();
    await newPuller().pull(ref(), { onEvent });
    const progress = events.filter((e): e is ProgressEvent => e.type === 'blob-progress' && e.digest === big.digest);
    assert.ok(progress.length >= 3, `only ${progress.length} progress events for ${big.size} bytes`);
    for (let i = 1; i < progress.length; i++)
      assert.ok((progress[i]?.bytes ?? 0) > (progress[i - 1]?.bytes ?? 0), 'bytes went down or stood still');
    assert.equal(progress.at(-1)?.bytes, big.size);
    assert.ok(progress.every((e) => e.size === big.size));
    const order = events.filter((e) => 'digest' in e && e.digest === big.digest).map((e) => e.type);
    assert.deepEqual([...new Set(order)], ['blob-waiting', 'blob-progress', 'blob-verifying', 'blob-done']);
  });

  test('an abort mid-download leaves no partial blob in blobs/, and the next pull resumes it', async () => {
    const puller = newPuller();
    const root = (await puller.store()).root;
    slowBigLayer();
    const controller = new AbortController();
    const { events, onEvent } = captureEvents();
    const pulling = puller.pull(ref(), { signal: controller.signal, onEvent });
    await progressPast(events, big.digest, 200_000);
    controller.abort();
    await assert.rejects(pulling, (err: unknown) => {
      assert.ok(err instanceof PullError, String(err));
      assert.equal(err.image, ref());
      assert.equal((err.cause as Error).name, 'AbortError');
      return true;
    });
    assert.ok(!(await storedBlobs(root)).includes(big.digest), 'an unverified blob reached blobs/');
    assert.ok((await ingestFiles(root)).length > 0, 'the partial download was not kept');
    assert.deepEqual(await (await puller.store()).listImages(), []);

    proxy.reset();
    const resumed = captureEvents();
    const result = await puller.pull(ref(), { onEvent: resumed.onEvent });
    const resume = resumed.events.find((e) => e.type === 'blob-resumed');
    assert.ok(resume?.type === 'blob-resumed' && resume.digest === big.digest, 'no blob-resumed event');
    assert.ok(resume.offset > 0 && resume.offset < big.size);
    const get = proxy.requests.find((r) => r.method === 'GET' && r.path.endsWith(big.digest));
    assert.equal(get?.headers.range, `bytes=${resume.offset}-`);
    assert.equal(get?.status, 206);
    assert.ok(result.bytesReceived < big.size + 10_000, `re-downloaded ${result.bytesReceived} bytes`);
    const store = await puller.store();
    assert.ok(await store.hasBlob(big.digest));
    assert.equal((await store.fsck()).ok, true);
  });

  test('aborting one of two callers sharing a pull leaves the other to finish, without restarting the download', async () => {
    const puller = newPuller();
    slowBigLayer();
    const controller = new AbortController();
    const first = captureEvents();
    const aborted = puller.pull(ref(), { signal: controller.signal, onEvent: first.onEvent });
    const patient = puller.pull(ref());
    await progressPast(first.events, big.digest, 200_000);
    controller.abort();
    await assert.rejects(
      aborted,
      (err: unknown) => err instanceof PullError && (err.cause as Error).name === 'AbortError',
    );
    const result = await patient;
    assert.equal(result.descriptor.digest, image.digest);
    assert.equal(blobGetCounts(proxy).get(big.digest), 1);
  });

  test('when every caller sharing a pull aborts, the download stops', async () => {
    const puller = newPuller();
    slowBigLayer();
    const one = new AbortController();
    const two = new AbortController();
    const { events, onEvent } = captureEvents();
    const pulls = [puller.pull(ref(), { signal: one.signal, onEvent }), puller.pull(ref(), { signal: two.signal })];
    await progressPast(events, big.digest, 200_000);
    one.abort();
    two.abort();
    const outcomes = await Promise.allSettled(pulls);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['rejected', 'rejected'],
    );
    // The download was cancelled, not left running to the end.
    await eventually(() => proxy.inFlight('/v2/') === 0, 'no request in flight');
    const get = proxy.requests.find((r) => r.method === 'GET' && r.path.endsWith(big.digest));
    assert.ok(get !== undefined && get.bytesSent < big.size, `the layer was sent in full (${get?.bytesSent} bytes)`);
    const root = (await puller.store()).root;
    assert.ok(!(await storedBlobs(root)).includes(big.digest));
  });
});
