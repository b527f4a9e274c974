// The pull pipeline: a blob that is downloaded gives its download slot to the next blob while it
// is verified and synced to disk, and the pull still waits for every commit, and fails with it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Puller } from '../../src/pull/index.ts';
import { openStore, type Ingest, type Store } from '../../src/store/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { captureEvents, eventually } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

/** A real store whose ingests of `digest` wait at commit until `release()` (or fail then). */
async function storeHoldingCommit(
  root: string,
  digest: string,
): Promise<{ store: Store; release: (failure?: Error) => void; held: () => boolean }> {
  const store = await openStore(root);
  let release!: (failure?: Error) => void;
  const gate = new Promise<Error | undefined>((resolve) => {
    release = resolve;
  });
  let held = false;
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'openIngest') return Reflect.get(target, property, receiver) as unknown;
      return async (...args: Parameters<Store['openIngest']>): Promise<Ingest> => {
        const ingest = await target.openIngest(...args);
        if (args[0].digest !== digest) return ingest;
        const commit = ingest.commit.bind(ingest);
        ingest.commit = async () => {
          held = true;
          const failure = await gate;
          if (failure !== undefined) {
            await ingest.abort();
            throw failure;
          }
          await commit();
        };
        return ingest;
      };
    },
  });
  return { store: wrapped, release, held: () => held };
}

describe('pull pipeline', { skip }, () => {
  let registry: RunningRegistry;
  let tmp: TempDir;
  let image: BuiltImage;
  const pullers: Puller[] = [];

  before(async () => {
    tmp = await makeTempDir('kimg-pull-pipeline-');
    registry = await startRegistry();
    image = await buildImage({ layers: [2_000_000, 2_100_000, 2_200_000], seed: 'pull-pipeline' });
    await pushImage(image, registry, 'test/pipeline:v1');
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  const layers = () => image.images[0]?.layers ?? [];

  test('with one download slot, the other blobs download while the first one commits', async () => {
    const [first, ...rest] = layers();
    assert.ok(first && rest.length === 2);
    const { store, release, held } = await storeHoldingCommit(`${tmp.path}/held`, first.digest);
    const puller = new Puller({ store, concurrency: 1 });
    pullers.push(puller);
    const { events, onEvent } = captureEvents();
    const pulled = puller.pull(`${registry.host}/test/pipeline:v1`, { onEvent });
    let settled = false;
    void pulled.finally(() => {
      settled = true;
    });
    // Held at commit, the first layer must not keep the only slot: the others are fully downloaded.
    await eventually(
      () => held() && rest.every((l) => events.some((e) => e.type === 'blob-verifying' && e.digest === l.digest)),
      'the other layers downloaded while the first one commits',
    );
    assert.equal(settled, false, 'the pull waits for the held commit');
    assert.ok(!events.some((e) => e.type === 'blob-done' && e.digest === first.digest));
    release();
    const result = await pulled;
    assert.equal(result.descriptor.digest, image.digest);
    assert.ok(events.some((e) => e.type === 'blob-done' && e.digest === first.digest));
  });

  test('a commit that fails after the slot moved on still fails the pull, and the image is not recorded', async () => {
    const [first] = layers();
    assert.ok(first);
    const root = `${tmp.path}/failing`;
    const { store, release, held } = await storeHoldingCommit(root, first.digest);
    const puller = new Puller({ store, concurrency: 1 });
    pullers.push(puller);
    const pulled = puller.pull(`${registry.host}/test/pipeline:v1`);
    await eventually(() => held(), 'the first layer reached its commit');
    release(new Error('disk full while committing'));
    await assert.rejects(pulled, /disk full while committing/);
    assert.deepEqual(await (await openStore(root)).listImages(), []);
  });
});
