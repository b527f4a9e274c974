// Pulls that crash and pulls that race, in real `kimg` processes against a real registry:
// SIGKILL at random moments of a pull (before the download, inside the large layer, while it is
// committed), many times over one store: the store is sound after every kill, no verified byte
// of progress is lost, and the next pull finishes by resuming. Kill points do not race the
// clock: the fault proxy holds the large layer's body at the chosen byte (fault.holdAt) and the
// small layer's body at its start, so that no pull can finish before its kill. A pull killed at half of a large
// layer re-downloads only the rest. Peak memory stays bounded whatever the layer size. Two
// processes pulling overlapping images, or the same image, into one store both succeed and
// download each blob once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { PullEvent } from '../../src/pull/index.ts';
import { Puller } from '../../src/pull/index.ts';
import { SMALL_INGEST_BYTES, openStore } from '../../src/store/index.ts';
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
  type FaultRule,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import {
  LARGE,
  assertStoreSound,
  bytesSentFor,
  knownBlobs,
  layoutEntries,
  runSeed,
  seededRandom,
  type KnownBlobs,
} from './helpers.ts';
import { startKimg, type KimgProcess } from './kimg-process.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const MiB = 1024 * 1024;
/** The layer killed in the middle of: 512 MiB with KIMG_LARGE_TESTS=1, else 64 MiB. */
const LAYER = LARGE ? 512 * MiB : 64 * MiB;
const KILLS = LARGE ? 20 : 6;

describe('pulls that crash and pulls that race', { skip, timeout: LARGE ? 1_800_000 : 300_000 }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let img: BuiltImage;
  let tiny: BuiltImage;
  let big: BuiltLayer;
  let known: KnownBlobs;
  const started: KimgProcess[] = [];

  const ref = (repo = 'crash/img') => `${proxy.host}/${repo}:v1`;
  const bigPath = () => `/v2/crash/img/blobs/${big.digest}`;
  /** An environment of our own: no user store, registry configuration or credentials. */
  const env = (): NodeJS.ProcessEnv => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
  });
  /** Processes started while the registry starts and the images are built: loading the CLI is
   * the slow part of a process, and a test only waits for it when the pool runs dry. */
  const pool: KimgProcess[] = [];
  const start = (): KimgProcess => {
    const child = startKimg(env());
    started.push(child);
    return child;
  };
  const kimg = (): KimgProcess => pool.shift() ?? start();
  const pullArgs = (store: string, image = ref()) => ['pull', '--store', store, '--progress', 'json', image];

  before(async () => {
    tmp = await makeTempDir('kimg-crashes-');
    // The kill loop's processes and its last one, the half kill, two for memory, four for races.
    for (let i = 0; i < KILLS + 1 + 1 + 2 + 4; i++) pool.push(start());
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    img = await buildImage({ layers: [LAYER, 40_000], seed: `crash-img-${LAYER}` });
    big = img.images[0]?.layers[0] ?? assert.fail('no layer');
    known = knownBlobs(img);
    tiny = await buildImage({ layers: [40_000], seed: 'crash-tiny' });
    await Promise.all([pushImage(img, registry, 'crash/img:v1'), pushImage(tiny, registry, 'crash/tiny:v1')]);
  });
  beforeEach(() => proxy.reset());
  after(async () => {
    for (const child of started) child.kill();
    await Promise.all(started.map((c) => c.exited));
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([img?.remove(), tiny?.remove()]);
    await tmp?.remove();
  });

  /** Bytes of the large layer the store holds: all of it once committed, else its partial. */
  const heldOfBig = (report: { blobs: string[]; partials: Map<string, number> }) =>
    report.blobs.includes(big.digest) ? big.size : (report.partials.get(big.digest) ?? 0);

  /**
   * Where a pull is killed: when the proxy holds the large layer at byte `holdAt` (absolute: a
   * resumed request is held at the same byte of the blob), after `afterMs` if that comes first,
   * or at the first event `hit` matches. The small layer is always held, so the pull cannot end.
   */
  type KillPoint = {
    readonly what: string;
    readonly holdAt?: number;
    readonly afterMs?: number;
    readonly hit?: (event: PullEvent) => boolean;
  };
  const smallPath = () => `/v2/crash/img/blobs/${img.images[0]?.layers[1]?.digest ?? ''}`;
  /** Holds the small layer at its first byte, and the large one at `holdAt` when given. */
  const holdRule =
    (holdAt?: number): FaultRule =>
    (r) => {
      if (r.path === smallPath()) return fault.holdAt(0);
      if (r.path !== bigPath() || holdAt === undefined) return undefined;
      const from = Number(/^bytes=(\d+)-/.exec(r.headers.range ?? '')?.[1] ?? 0);
      return fault.holdAt(holdAt - from);
    };

  test(`SIGKILL at ${KILLS} random moments of a pull (${LAYER / MiB} MiB layer): the store is sound after each, progress is kept, the next pull resumes`, async (t) => {
    const seed = runSeed();
    const random = seededRandom(seed);
    t.diagnostic(`seed ${seed} (replay with KIMG_FAULTS_SEED=${seed})`);
    const store = join(tmp.path, 'killed-many-times');
    // Before any byte; early, at a random time (start-up, resolve or download); inside the layer
    // at random bytes, one in each of several ascending strata, so that every kill still finds
    // part of the layer to download; and last while the layer is being committed.
    const points: KillPoint[] = [{ what: 'once resolved', holdAt: 0, hit: (e) => e.type === 'resolved' }];
    const timed = Math.max(1, Math.floor(KILLS / 8));
    for (let i = 0; i < timed; i++) {
      const afterMs = Math.floor(random() * 1500);
      // At 90 % of the layer at the latest: the layer must not finish.
      points.push({ what: `${afterMs} ms after starting`, afterMs, holdAt: Math.floor(0.9 * big.size) });
    }
    const strata = KILLS - 2 - timed;
    for (let i = 0; i < strata; i++) {
      const at = Math.floor((big.size * (i + random())) / (strata + 1));
      points.push({ what: `at byte ${at} of the layer`, holdAt: at });
    }
    points.push({
      what: 'while the layer is committed',
      hit: (e) => e.type === 'blob-verifying' && e.digest === big.digest,
    });

    // Every process loads at once, before the first kill: each kill then costs only its pull.
    const processes = points.map(() => kimg());
    const last = kimg();
    let held = 0;
    for (const [i, point] of points.entries()) {
      const child = processes[i] ?? assert.fail();
      await child.ready;
      proxy.reset();
      proxy.setRule(holdRule(point.holdAt));
      child.run(pullArgs(store));
      const exited = child.exited.then(() => false);
      const waits: Promise<boolean>[] = [exited];
      if (point.hit !== undefined) waits.push(child.waitForEvent(point.hit));
      else waits.push(proxy.waitForHold(bigPath()).then(() => true));
      if (point.afterMs !== undefined) waits.push(new Promise((r) => setTimeout(() => r(true), point.afterMs)));
      const hit = await Promise.race(waits);
      child.kill();
      const { code, signal } = await child.exited;
      assert.equal(signal, 'SIGKILL', `${point.what}: exit ${code}: ${child.stderr()}`);
      assert.ok(hit, `${point.what}: the pull finished before it could be killed`);

      // Sound after every kill; what is recorded is complete (fsck walks it); progress only grows.
      const report = await assertStoreSound(store, { known, allowDeadLeftovers: true });
      const now = heldOfBig(report);
      t.diagnostic(`killed ${point.what}: ${now} of ${big.size} bytes held`);
      assert.ok(now >= held, `${point.what}: the store held ${held} bytes of the layer, now ${now}`);
      held = now;
    }

    proxy.reset();
    await last.ready;
    last.run(pullArgs(store));
    const { code } = await last.exited;
    assert.equal(code, 0, last.stderr());
    await assertStoreSound(store, { known, allowDeadLeftovers: true, image: { name: ref(), recorded: true } });
    const gets = proxy.requests.filter((r) => r.path === bigPath());
    if (held === big.size) {
      assert.deepEqual(gets, [], 'the committed layer was fetched again');
    } else {
      assert.equal(gets.length, 1);
      assert.equal(gets[0]?.headers.range, held > 0 ? `bytes=${held}-` : undefined);
      assert.equal(bytesSentFor(gets, big.digest), big.size - held);
    }
  });

  test(`a pull killed at half of the ${LAYER / MiB} MiB layer re-downloads less than ${LARGE ? 55 : 60} % of it (R3)`, async (t) => {
    const store = join(tmp.path, 'killed-at-half');
    const child = kimg();
    await child.ready;
    // The proxy holds the layer at its half; the kill comes once the pull reports (progress is
    // reported every MiB) nearly all of that half received.
    proxy.setRule(holdRule(big.size / 2));
    child.run(pullArgs(store));
    await proxy.waitForHold(bigPath());
    assert.ok(
      await child.waitForEvent(
        (e) => e.type === 'blob-progress' && e.digest === big.digest && e.bytes >= big.size / 2 - 2 * MiB,
      ),
      child.stderr(),
    );
    child.kill();
    assert.equal((await child.exited).signal, 'SIGKILL');
    const report = await assertStoreSound(store, {
      known,
      allowDeadLeftovers: true,
      image: { name: ref(), recorded: false },
    });
    const kept = report.partials.get(big.digest) ?? 0;
    t.diagnostic(`killed with ${kept} of ${big.size} bytes on disk`);
    assert.ok(
      kept >= 0.4 * big.size && kept <= 0.7 * big.size,
      `the kill did not land near the half: ${kept} of ${big.size}`,
    );

    proxy.reset();
    const puller = new Puller({ store });
    try {
      await puller.pull(ref());
    } finally {
      await puller.close();
    }
    const again = bytesSentFor(proxy.requests, big.digest);
    t.diagnostic(`re-downloaded ${again} bytes (${((100 * again) / big.size).toFixed(1)} %)`);
    assert.equal(proxy.requests.find((r) => r.path === bigPath())?.headers.range, `bytes=${kept}-`);
    assert.ok(again < (LARGE ? 0.55 : 0.6) * big.size, `re-downloaded ${again} of ${big.size} bytes`);
    await assertStoreSound(store, { known, allowDeadLeftovers: true, image: { name: ref(), recorded: true } });
  });

  test(`memory does not grow with the layer: no whole-blob buffering (R8, ${LARGE ? '2 GiB' : `${LAYER / MiB} MiB`} layer)`, async (t) => {
    let image = img;
    let repo = 'crash/img';
    if (LARGE) {
      image = await buildImage({ layers: [2048 * MiB], seed: 'crash-r8-2g' });
      repo = 'crash/r8';
      await pushImage(image, registry, `${repo}:v1`);
    }
    try {
      const layer = image.images[0]?.layers[0]?.size ?? 0;
      // The same command for a 40 kB image and for the large one, in processes loaded alike.
      const [large, small] = [kimg(), kimg()];
      await Promise.all([large.ready, small.ready]);
      large.run(pullArgs(join(tmp.path, 'rss-large'), ref(repo)));
      small.run(pullArgs(join(tmp.path, 'rss-small'), ref('crash/tiny')));
      for (const child of [large, small]) assert.equal((await child.exited).code, 0, child.stderr());
      const mb = (kb: number) => kb / 1024;
      const [peak, baseline, loaded] = [mb(large.peakRssKb()), mb(small.peakRssKb()), mb(large.readyRssKb())];
      t.diagnostic(
        `RSS ${loaded.toFixed(0)} MB loaded; peak ${peak.toFixed(0)} MB for a ${layer}-byte layer, ${baseline.toFixed(0)} MB for a 40 kB one`,
      );
      assert.ok(baseline > 0 && loaded > 0, 'no RSS sample');
      // Whole-blob buffering would add the layer's size; streaming adds a constant (buffers and
      // garbage not yet collected: ≈ 35 MB here for layers of 16 to 256 MiB alike).
      assert.ok(
        peak - baseline < 48,
        `peak RSS ${peak.toFixed(0)} MB for the large layer, ${baseline.toFixed(0)} MB for a small one`,
      );
      // What the pull adds to the loaded CLI. (Under tsx the CLI alone is ≈ 100 MB, ≈ 50 MB of it
      // the TypeScript loader: the spec's 150 MB applies to the built CLI.)
      assert.ok(peak - loaded < 100, `the pull added ${(peak - loaded).toFixed(0)} MB`);
      assert.equal((await (await openStore(join(tmp.path, 'rss-large'))).fsck()).ok, true);
    } finally {
      if (image !== img) await image.remove();
    }
  });

  describe('two processes, one store (R5)', () => {
    let a: BuiltImage;
    let b: BuiltImage;
    let shared: BuiltLayer;
    let both: KnownBlobs;
    before(async () => {
      const base = { size: 8 * MiB, seed: 'crash-shared-base' };
      [a, b] = await Promise.all([
        buildImage({ layers: [base, 1 * MiB], seed: 'crash-a' }),
        buildImage({ layers: [base, 1 * MiB], seed: 'crash-b' }),
      ]);
      shared = a.images[0]?.layers[0] ?? assert.fail();
      assert.equal(b.images[0]?.layers[0]?.digest, shared.digest);
      both = knownBlobs(a, b);
      await Promise.all([pushImage(a, registry, 'crash/a:v1'), pushImage(b, registry, 'crash/b:v1')]);
    });
    after(async () => Promise.all([a?.remove(), b?.remove()]));

    /** Runs both command lines at once in processes that are already loaded. */
    const race = async (one: readonly string[], two: readonly string[]): Promise<[KimgProcess, KimgProcess]> => {
      const children: [KimgProcess, KimgProcess] = [kimg(), kimg()];
      await Promise.all(children.map((c) => c.ready));
      children[0].run(one);
      children[1].run(two);
      for (const child of children) assert.equal((await child.exited).code, 0, child.stderr());
      return children;
    };
    const doneBy = (children: readonly KimgProcess[], digest: string) =>
      children.map((c) => c.events.filter((e) => e.type === 'blob-done' && e.digest === digest).length);

    test('pulling overlapping images at once: both succeed, the shared layer is downloaded once, both images are recorded', async () => {
      const store = join(tmp.path, 'overlapping');
      // The shared layer takes about a second, so that both processes want it at the same time.
      proxy.setRule((r) => (r.path.endsWith(shared.digest) ? fault.trickle(8 * MiB) : undefined));
      const children = await race(pullArgs(store, ref('crash/a')), pullArgs(store, ref('crash/b')));
      const fetched = proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(shared.digest));
      assert.equal(fetched.length, 1, 'the shared layer was downloaded twice');
      assert.deepEqual(doneBy(children, shared.digest).sort(), [0, 1]);
      const names = (await layoutEntries(store)).map((e) => e.annotations?.['io.containerd.image.name']).sort();
      assert.deepEqual(names, [ref('crash/a'), ref('crash/b')]);
      await assertStoreSound(store, { known: both, image: { name: ref('crash/a'), recorded: true } });
      await assertStoreSound(store, { known: both, image: { name: ref('crash/b'), recorded: true } });
    });

    test('pulling the same image at once: both succeed, every blob is downloaded and written once, one index.json entry', async () => {
      const store = join(tmp.path, 'same');
      proxy.setRule((r) => (r.path.endsWith(shared.digest) ? fault.trickle(8 * MiB) : undefined));
      const children = await race(pullArgs(store, ref('crash/a')), pullArgs(store, ref('crash/a')));
      const platform = a.images[0] ?? assert.fail();
      for (const blob of [platform.config, ...platform.layers]) {
        const downloads = proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(blob.digest)).length;
        // A blob up to SMALL_INGEST_BYTES is gathered in memory with no lock across processes:
        // both may fetch it (the store keeps the first file published).
        if (blob.size <= SMALL_INGEST_BYTES) {
          assert.ok(downloads >= 1 && downloads <= 2, `${blob.digest} downloaded ${downloads} times`);
          continue;
        }
        assert.equal(downloads, 1, `${blob.digest} downloaded twice`);
        assert.deepEqual(doneBy(children, blob.digest).sort(), [0, 1], `${blob.digest} written by both`);
      }
      const entries = await layoutEntries(store);
      assert.deepEqual(
        entries.map((e) => e.annotations?.['io.containerd.image.name']),
        [ref('crash/a')],
      );
      assert.equal(entries[0]?.digest, a.digest);
      await assertStoreSound(store, { known: both, image: { name: ref('crash/a'), recorded: true } });
    });
  });
});
