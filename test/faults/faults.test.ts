// The pull engine under transport faults, through the fault-injecting proxy in front of a real
// Distribution registry: resets and short bodies (resumed), corrupt and oversized bodies
// (refused), 5xx and 429 (retried with back-off on an injected clock), slow and silent servers,
// lying Docker-Content-Digest headers, oversized manifests, a failing token endpoint, and load
// (concurrency caps). After each: the pull succeeded verified or failed with a typed error that
// names the image, what failed and what was retried; `fsck` is clean; blobs/ holds only
// verified content; ingest/ only resumable partials.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { PullError, Puller, type PullerOptions, type PullEvent, type PullResult } from '../../src/pull/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  type BuiltImage,
  type BuiltLayer,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
  type TokenServer,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import {
  FakeClock,
  LARGE,
  assertClearFailure,
  assertStoreSound,
  bytesSentFor,
  captureEvents,
  kimgInProcess as kimg,
  knownBlobs,
  seededRandom,
  runSeed,
  type KnownBlobs,
} from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const MiB = 1024 * 1024;

type Retrying = Extract<PullEvent, { type: 'retrying' }>;
const retries = (events: readonly PullEvent[]): Retrying[] =>
  events.filter((e): e is Retrying => e.type === 'retrying');

describe('pull engine under faults', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let img: BuiltImage;
  let big: BuiltLayer;
  let small: BuiltLayer;
  let known: KnownBlobs;
  const pullers: Puller[] = [];
  let stores = 0;

  const REPO = 'faults/img';
  const ref = (repo = REPO) => `${proxy.host}/${repo}:v1`;
  const blobPath = (digest: string, repo = REPO) => `/v2/${repo}/blobs/${digest}`;
  const manifestPath = (reference: string, repo = REPO) => `/v2/${repo}/manifests/${reference}`;
  const config = () => img.images[0]?.config ?? assert.fail('no config');

  /** A Puller on a fresh store whose retries sleep on a fake clock (no wall time). */
  const newPuller = (
    client: PullerOptions['client'] = {},
    options: Omit<PullerOptions, 'client'> = {},
  ): { puller: Puller; clock: FakeClock; dir: string } => {
    const clock = new FakeClock();
    const dir = join(tmp.path, `store-${++stores}`);
    const puller = new Puller({
      store: dir,
      client: { clock, random: () => 0.5, connectTimeoutMs: 5000, headersTimeoutMs: 5000, ...client },
      ...options,
    });
    pullers.push(puller);
    return { puller, clock, dir };
  };
  const rootOf = async (puller: Puller) => (await puller.store()).root;
  /** The pull fails; returns the error. */
  const failing = async (pulling: Promise<PullResult>): Promise<PullError> => {
    const err = await pulling.then(
      () => assert.fail('the pull succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PullError, `not a PullError: ${String(err)}`);
    return err;
  };
  /** The image is recorded, every blob verified, nothing left in ingest/ but claim logs. */
  const assertPulled = async (puller: Puller, image = ref()) => {
    const sound = await assertStoreSound(await rootOf(puller), { known, image: { name: image, recorded: true } });
    assert.deepEqual([...sound.partials.keys()], [], 'a completed pull left partial downloads');
    for (const digest of [img.digest, config().digest, big.digest, small.digest])
      assert.ok(sound.blobs.includes(digest), `${digest} missing`);
    return sound;
  };

  before(async () => {
    tmp = await makeTempDir('kimg-faults-');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    img = await buildImage({ layers: [4 * MiB, 30_000], seed: 'faults-img' });
    const [b, s] = img.images[0]?.layers ?? [];
    assert.ok(b && s);
    [big, small] = [b, s];
    known = knownBlobs(img);
    await pushImage(img, registry, `${REPO}:v1`);
  });
  beforeEach(() => proxy.reset());
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await proxy?.stop();
    await registry?.stop();
    await img?.remove();
    await tmp?.remove();
  });

  describe('connection resets and short bodies (R3)', () => {
    test('a reset in the middle of a layer is resumed with Range; the pull succeeds verified and says it resumed', async () => {
      proxy.setRule((r) =>
        r.method === 'GET' && r.path === blobPath(big.digest) && r.count === 1 ? fault.cutAfter(MiB) : undefined,
      );
      const { puller } = newPuller();
      const { events, onEvent } = captureEvents();
      const result = await puller.pull(ref(), { onEvent });
      assert.equal(result.descriptor.digest, img.digest);
      await assertPulled(puller);
      const gets = proxy.requests.filter((r) => r.path === blobPath(big.digest));
      assert.equal(gets.length, 2);
      const start = Number(/^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range))?.[1]);
      assert.ok(start > 0 && start <= MiB, `resumed at ${String(gets[1]?.headers.range)}`);
      assert.ok(bytesSentFor(proxy.requests, big.digest) <= big.size + MiB);
      const resumed = retries(events).filter((e) => e.reason.includes(big.digest));
      assert.equal(resumed.length, 1, JSON.stringify(retries(events)));
      assert.match(resumed[0]?.reason ?? '', new RegExp(`^resuming ${big.digest} at byte ${start}: `));
    });

    test('a body cut short (a clean close after half) is resumed', async () => {
      proxy.setRule((r) => (r.path === blobPath(big.digest) && r.count === 1 ? fault.truncate() : undefined));
      const { puller } = newPuller();
      await puller.pull(ref());
      await assertPulled(puller);
      assert.equal(proxy.requests.filter((r) => r.path === blobPath(big.digest)).length, 2);
    });

    test('a reset mid-layer, then resets before any byte: ErrRegistryUnavailable; the partial is kept and the next pull resumes it', async () => {
      proxy.setRule((r) => {
        if (r.path !== blobPath(big.digest)) return undefined;
        return r.count === 1 ? fault.cutAfter(2 * MiB) : fault.cutAfter(0);
      });
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: ref(),
        says: [new RegExp(big.digest), /gave up after 5 attempts/],
      });
      const root = await rootOf(puller);
      const { partials, blobs } = await assertStoreSound(root, { known, image: { name: ref(), recorded: false } });
      const kept = partials.get(big.digest) ?? 0;
      assert.ok(kept > 0 && kept <= 2 * MiB, `partial of ${kept} bytes`);
      assert.ok(!blobs.includes(big.digest));

      proxy.reset();
      const { events, onEvent } = captureEvents();
      await puller.pull(ref(), { onEvent });
      assert.deepEqual(
        events.filter((e) => e.type === 'blob-resumed').map((e) => e.type === 'blob-resumed' && [e.digest, e.offset]),
        [[big.digest, kept]],
      );
      assert.equal(proxy.requests.find((r) => r.path === blobPath(big.digest))?.headers.range, `bytes=${kept}-`);
      assert.equal(bytesSentFor(proxy.requests, big.digest), big.size - kept);
      await assertPulled(puller);
    });

    test('resets before any byte, every time: ErrRegistryUnavailable after 5 attempts, naming the image and the host', async () => {
      proxy.setRule((r) => (r.path === blobPath(big.digest) ? fault.cutAfter(0) : undefined));
      const { puller, clock } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: ref(),
        says: [new RegExp(big.digest), new RegExp(proxy.host), /gave up after 5 attempts/],
      });
      assert.equal(proxy.requests.filter((r) => r.path === blobPath(big.digest)).length, 5);
      assert.equal(clock.sleeps.length >= 4, true, 'retries back off');
      await assertStoreSound(await rootOf(puller), { known, image: { name: ref(), recorded: false } });
    });

    test(
      `20 resets during one layer: the pull succeeds having received at most 1.1 × the layer (${LARGE ? '256 MiB' : '4 MiB'})`,
      { timeout: LARGE ? 600_000 : 60_000 },
      async (t) => {
        let image = img;
        let layer = big;
        let repo = REPO;
        if (LARGE) {
          image = await buildImage({ layers: [256 * MiB], seed: 'faults-r3-large' });
          layer = image.images[0]?.layers[0] ?? assert.fail();
          repo = 'faults/r3-large';
          await pushImage(image, registry, `${repo}:v1`);
        }
        const random = seededRandom(runSeed());
        t.diagnostic(`seed ${runSeed()}`);
        // Each of the first 20 responses is cut after a random share of what is left to send.
        const share = layer.size / 22;
        proxy.setRule((r) =>
          r.path === blobPath(layer.digest, repo) && r.count <= 20
            ? fault.cutAfter(Math.floor(share * (0.5 + random())))
            : undefined,
        );
        try {
          const { puller } = newPuller();
          const { events, onEvent } = captureEvents();
          await puller.pull(ref(repo), { onEvent });
          const store = await puller.store();
          assert.ok(await store.hasBlob(layer.digest));
          assert.equal((await store.fsck()).ok, true);
          const gets = proxy.requests.filter((r) => r.path === blobPath(layer.digest, repo));
          assert.equal(gets.length, 21);
          // Every resume asks for exactly what the store lacks: the starts only move forward.
          const starts = gets.map((r) => Number(/^bytes=(\d+)-$/.exec(String(r.headers.range))?.[1] ?? 0));
          assert.ok(
            starts.every((s, i) => i === 0 || s > (starts[i - 1] ?? 0)),
            JSON.stringify(starts),
          );
          // Bytes the proxy flushed before a reset may never reach the client: count what it received.
          const done = events.find((e) => e.type === 'blob-done' && e.digest === layer.digest);
          const received = done?.type === 'blob-done' ? done.bytesReceived : Infinity;
          assert.ok(received <= 1.1 * layer.size, `${received} bytes received for a ${layer.size}-byte layer`);
        } finally {
          if (image !== img) await image.remove();
        }
      },
    );

    test('a partial left by an aborted pull, then a server that ignores Range: started over from 0, verified', async () => {
      const { puller } = newPuller();
      proxy.setRule((r) => (r.path === blobPath(big.digest) ? fault.trickle(4 * MiB) : undefined));
      const controller = new AbortController();
      const { events, onEvent } = captureEvents();
      const pulling = puller.pull(ref(), { signal: controller.signal, onEvent });
      while (!events.some((e) => e.type === 'blob-progress' && e.digest === big.digest && e.bytes > MiB))
        await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      await failing(pulling);
      const { partials } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.ok((partials.get(big.digest) ?? 0) > 0);

      proxy.reset();
      proxy.setRule((r) => (r.path === blobPath(big.digest) ? fault.ignoreRange() : undefined));
      await puller.pull(ref());
      const get = proxy.requests.find((r) => r.path === blobPath(big.digest));
      assert.match(String(get?.headers.range), /^bytes=\d+-$/);
      assert.equal(get?.status, 200);
      assert.equal(bytesSentFor(proxy.requests, big.digest), big.size);
      await assertPulled(puller);
    });

    test('a misaligned Content-Range on resume: started over, verified', async () => {
      proxy.setRule((r) => {
        if (r.path !== blobPath(big.digest)) return undefined;
        if (r.count === 1) return fault.cutAfter(MiB);
        return r.count === 2 ? fault.misalignedRange(-100) : undefined;
      });
      const { puller } = newPuller();
      await puller.pull(ref());
      const ranges = proxy.requests.filter((r) => r.path === blobPath(big.digest)).map((r) => r.headers.range);
      assert.equal(ranges.length, 3);
      assert.equal(ranges[2], undefined, 'the third request starts over');
      await assertPulled(puller);
    });
  });

  describe('corrupt and oversized bodies (S1, S2)', () => {
    test('one flipped byte in a layer: ErrDigestMismatch naming image and layer; nothing of it is kept; the next pull succeeds', async () => {
      proxy.setRule((r) => (r.path === blobPath(big.digest) ? fault.flipByte(1_234_567) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrDigestMismatch',
        image: ref(),
        says: [new RegExp(`expected ${big.digest}`)],
      });
      const { partials, blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.ok(!blobs.includes(big.digest), 'a corrupt layer reached blobs/');
      assert.ok(!partials.has(big.digest), 'the corrupt bytes were kept for a resume');
      proxy.reset();
      await puller.pull(ref());
      await assertPulled(puller);
    });

    test("a corrupt layer's error says which host sent it and that its bytes were discarded", async () => {
      proxy.setRule((r) => (r.path === blobPath(big.digest) ? fault.flipByte(77) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrDigestMismatch',
        image: ref(),
        says: [new RegExp(big.digest), new RegExp(proxy.host), /discarded/],
      });
    });

    test('one flipped byte after a resume is caught at commit; the corrupt partial is discarded', async () => {
      proxy.setRule((r) => {
        if (r.path !== blobPath(big.digest)) return undefined;
        return r.count === 1 ? fault.cutAfter(MiB) : fault.flipByte(10);
      });
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, { code: 'ErrDigestMismatch', image: ref(), says: [new RegExp(big.digest)] });
      const { partials } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.ok(!partials.has(big.digest));
    });

    test('one flipped byte in the manifest: ErrDigestMismatch, no blob requested, nothing stored', async () => {
      proxy.setRule((r) =>
        r.method === 'GET' && r.path === manifestPath(img.digest) ? fault.flipByte(20) : undefined,
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrDigestMismatch',
        image: ref(),
        says: [new RegExp(img.digest), new RegExp(proxy.host)],
      });
      assert.equal(proxy.requests.filter((r) => r.path.includes('/blobs/')).length, 0);
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    });

    test('one flipped byte in the config: ErrDigestMismatch naming the config', async () => {
      proxy.setRule((r) => (r.path === blobPath(config().digest) ? fault.flipByte(5) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, { code: 'ErrDigestMismatch', image: ref(), says: [new RegExp(config().digest)] });
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.ok(!blobs.includes(config().digest));
    });

    test('a chunked body longer than the descriptor: ErrSizeMismatch at size + 1, never more than the size kept', async () => {
      proxy.setRule((r) => (r.path === blobPath(small.digest) ? fault.extraBytes(10 * small.size, true) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrSizeMismatch',
        image: ref(),
        says: [new RegExp(small.digest), new RegExp(`more than the ${small.size} bytes`)],
      });
      const { partials, blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.ok(!blobs.includes(small.digest));
      assert.ok((partials.get(small.digest) ?? 0) <= small.size);
    });

    test('junk after the declared Content-Length is never read: the layer verifies', async () => {
      proxy.setRule((r) => (r.path === blobPath(small.digest) ? fault.extraBytes(100_000) : undefined));
      const { puller } = newPuller();
      await puller.pull(ref());
      await assertPulled(puller);
    });

    test('a 10× body declared in Content-Length is refused before reading', async () => {
      proxy.setRule((r) =>
        r.path === blobPath(small.digest) ? fault.replaceBody(Buffer.alloc(10 * small.size, 1)) : undefined,
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrSizeMismatch',
        image: ref(),
        says: [
          new RegExp(`declares Content-Length ${10 * small.size} but ${small.size} bytes are expected`),
          /nothing read/,
        ],
      });
      const { partials } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.equal(partials.get(small.digest) ?? 0, 0, 'nothing of the refused body is kept');
    });
  });

  describe('server errors and rate limits (R2)', () => {
    for (const status of [500, 502, 503] as const) {
      test(`HTTP ${status} once on every request, then recovery: the pull succeeds after back-off, and says what it retried`, async () => {
        proxy.setRule((r) => (r.count === 1 ? fault.serverError(status) : undefined));
        const { puller, clock } = newPuller();
        const { events, onEvent } = captureEvents();
        await puller.pull(ref(), { onEvent });
        await assertPulled(puller);
        const retried = retries(events).filter((e) => e.reason === `HTTP ${status}`);
        // HEAD by tag, GET manifest, config and two layers.
        assert.equal(retried.length, 5, JSON.stringify(retries(events)));
        assert.ok(retried.every((e) => e.attempt === 1 && e.host === proxy.host && e.delayMs > 0));
        assert.ok(clock.sleeps.length >= 1, 'no back-off');
      });

      test(`HTTP ${status} always: ErrRegistryUnavailable after 5 attempts, naming the image, the host and the status`, async () => {
        proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.serverError(status) : undefined));
        const { puller, clock } = newPuller();
        const err = await failing(puller.pull(ref()));
        assertClearFailure(err, {
          code: 'ErrRegistryUnavailable',
          image: ref(),
          says: [new RegExp(`HTTP ${status}`), new RegExp(proxy.host), /gave up after 5 attempts/],
        });
        assert.equal(err.cause instanceof Error && (err.cause as { attempts?: number }).attempts, 5);
        assert.ok(clock.sleeps.length >= 4);
        const { blobs, partials } = await assertStoreSound(await rootOf(puller), {
          known,
          image: { name: ref(), recorded: false },
        });
        assert.deepEqual(blobs, [img.digest], 'only the verified manifest is stored');
        assert.deepEqual(
          [...partials.values()].filter((n) => n > 0),
          [],
          'no byte was received, none is kept',
        );
      });
    }

    test('a blob that failed before its first byte leaves nothing in ingest/', async () => {
      proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.serverError(503) : undefined));
      const { puller } = newPuller();
      await failing(puller.pull(ref()));
      const { partials } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual([...partials.keys()], []);
    });

    test('429 with Retry-After: 7 waits at least 7 s (injected clock), then succeeds', async () => {
      proxy.setRule((r) => (r.path === blobPath(big.digest) && r.count === 1 ? fault.tooManyRequests(7) : undefined));
      const { puller, clock } = newPuller();
      const { events, onEvent } = captureEvents();
      await puller.pull(ref(), { onEvent });
      await assertPulled(puller);
      const retried = retries(events).find((e) => e.reason === 'HTTP 429');
      assert.ok(retried && retried.delayMs >= 7000, JSON.stringify(retries(events)));
      assert.ok(
        clock.sleeps.some((ms) => ms >= 7000),
        JSON.stringify(clock.sleeps),
      );
    });

    test('429 with Retry-After beyond 120 s fails at once, with the hint and the rate limit', async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD'
          ? fault.status(429, {
              'retry-after': '3600',
              'ratelimit-limit': '100;w=21600',
              'ratelimit-remaining': '0;w=21600',
            })
          : undefined,
      );
      const { puller, clock } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrTooManyRequests',
        image: ref(),
        says: [/retry after 3600 s/, /0 of 100 requests left/],
      });
      assert.equal(proxy.requests.length, 1);
      assert.deepEqual(clock.sleeps, []);
    });
  });

  describe('slow and silent servers (R7)', () => {
    test('a very slow trickle still completes, verified, with progress along the way', async () => {
      proxy.setRule((r) => (r.path === blobPath(small.digest) ? fault.trickle(25_000) : undefined));
      const { puller } = newPuller();
      const { events, onEvent } = captureEvents();
      await puller.pull(ref(), { onEvent });
      await assertPulled(puller);
      const progress = events.filter((e) => e.type === 'blob-progress' && e.digest === small.digest);
      assert.ok(progress.length >= 5, `${progress.length} progress events`);
    });

    test('a stalled body is dropped and resumed', async () => {
      proxy.setRule((r) => (r.path === blobPath(small.digest) && r.count === 1 ? fault.trickle(0.2) : undefined));
      const puller = new Puller({
        store: join(tmp.path, `store-${++stores}`),
        client: { clock: new FakeClock() },
        stallTimeoutMs: 500,
      });
      pullers.push(puller);
      await puller.pull(ref(), { signal: AbortSignal.timeout(2000) });
      await assertPulled(puller);
    });

    test('a registry that never answers: headers timeout, retried, then ErrRegistryUnavailable naming the host', async () => {
      proxy.setRule((r) => (r.path === blobPath(small.digest) ? fault.hang() : undefined));
      const { puller } = newPuller({ headersTimeoutMs: 300, retry: { maxAttempts: 2 } });
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: ref(),
        says: [/UND_ERR_HEADERS_TIMEOUT/, new RegExp(proxy.host), /gave up after 2 attempts/],
      });
      await assertStoreSound(await rootOf(puller), { known, image: { name: ref(), recorded: false } });
    });

    test('a whole-pull deadline ends a hanging pull, naming the image', async () => {
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.hang() : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref(), { signal: AbortSignal.timeout(300) }));
      assert.equal(err.image, ref());
      assert.match(err.message, new RegExp(ref().replace(/[.]/g, '\\.')));
      assert.equal((err.cause as Error).name, 'TimeoutError');
    });
  });

  describe('lying Docker-Content-Digest headers', () => {
    const lie = `sha256:${'1'.repeat(64)}`;

    test('HEAD names a digest the registry does not have: the pull fails on it, nothing is stored', async () => {
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.forgeHeader('docker-content-digest', lie) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, { code: 'ErrManifestUnknown', image: ref(), says: [new RegExp(lie)] });
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    });

    test('a GET by tag whose header disagrees with the bytes: ErrDigestMismatch', async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD' ? fault.methodNotAllowed() : fault.forgeHeader('docker-content-digest', lie),
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrDigestMismatch',
        image: ref(),
        says: [new RegExp(lie), new RegExp(img.digest)],
      });
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    });

    test('a GET by digest whose header disagrees: ErrDigestMismatch', async () => {
      proxy.setRule((r) =>
        r.method === 'GET' && r.path === manifestPath(img.digest)
          ? fault.forgeHeader('docker-content-digest', lie)
          : undefined,
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, { code: 'ErrDigestMismatch', image: ref(), says: [new RegExp(lie)] });
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    });

    test('a wrong header on a blob changes nothing: the content is verified against the descriptor', async () => {
      proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.forgeHeader('docker-content-digest', lie) : undefined));
      const { puller } = newPuller();
      await puller.pull(ref());
      await assertPulled(puller);
    });
  });

  describe('manifests over the size cap (S10)', () => {
    test('HEAD declares 5 MiB: refused before it is fetched', async () => {
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.forgeHeader('content-length', String(5 * MiB)) : undefined));
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, {
        code: 'ErrManifestTooLarge',
        image: ref(),
        says: [/larger than the limit of 4194304 bytes/],
      });
      assert.deepEqual(
        proxy.requests.map((r) => r.method),
        ['HEAD'],
      );
      await assertStoreSound(await rootOf(puller), { known, image: { name: ref(), recorded: false } });
    });

    test('a GET by tag that streams 5 MiB without Content-Length: aborted at the cap', async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD'
          ? fault.methodNotAllowed()
          : [fault.replaceBody(Buffer.alloc(5 * MiB, 0x20)), fault.chunked()],
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref()));
      assertClearFailure(err, { code: 'ErrManifestTooLarge', image: ref() });
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known,
        image: { name: ref(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    });
  });

  describe('load: concurrency caps (R4)', () => {
    let wide: BuiltImage[];
    let inFlightAtArrival: number[] = [];
    before(async () => {
      wide = await Promise.all(
        [0, 1].map((i) => buildImage({ layers: Array.from({ length: 10 }, () => 150_000), seed: `faults-wide-${i}` })),
      );
      await Promise.all(wide.map((w, i) => pushImage(w, registry, `faults/wide${i}:v1`)));
    });
    after(async () => Promise.all(wide?.map((w) => w.remove()) ?? []));

    /** Trickles every layer and notes, as each blob request arrives, how many are still being sent. */
    const countConcurrency = (sizes: ReadonlyMap<string, number>) => {
      inFlightAtArrival = [];
      proxy.setRule((r) => {
        const digest = r.path.slice(r.path.lastIndexOf('/') + 1);
        if (r.method !== 'GET' || !sizes.has(digest)) return undefined;
        const busy = proxy.requests.filter(
          (q) =>
            q.seq < r.seq &&
            q.method === 'GET' &&
            q.error === undefined &&
            q.bytesSent < (sizes.get(q.path.slice(q.path.lastIndexOf('/') + 1)) ?? 0),
        ).length;
        inFlightAtArrival.push(busy + 1);
        return fault.trickle(1_500_000);
      });
    };
    const layerSizes = (images: readonly BuiltImage[]) =>
      new Map(images.flatMap((w) => (w.images[0]?.layers ?? []).map((l) => [l.digest, l.size] as const)));

    test('one pull has at most 4 blobs in flight by default', async () => {
      const [w0] = wide;
      assert.ok(w0);
      countConcurrency(layerSizes([w0]));
      const { puller } = newPuller();
      await puller.pull(ref('faults/wide0'));
      const max = Math.max(...inFlightAtArrival);
      assert.ok(max <= 4 && max >= 3, `${max} blob requests in flight at once`);
    });

    test('pulls sharing a Puller have at most 8 requests in flight per host', async () => {
      countConcurrency(layerSizes(wide));
      const { puller } = newPuller({}, { concurrency: 8 });
      await Promise.all([puller.pull(ref('faults/wide0')), puller.pull(ref('faults/wide1'))]);
      // Two pulls want 16; more than one pull's 4 shows they overlap, never more than 8 per host.
      const max = Math.max(...inFlightAtArrival);
      assert.ok(max <= 8 && max > 4, `${max} blob requests in flight at once`);
    });
  });

  describe('a failing token endpoint', () => {
    let tokens: TokenServer;
    let tokenProxy: FaultProxy;
    let tokenRegistry: RunningRegistry;
    let tokImg: BuiltImage;
    let tokKnown: KnownBlobs;
    const tokRef = () => `${tokenRegistry.host}/faults/tok:v1`;
    const assertNothingPulled = async (puller: Puller) => {
      const { blobs } = await assertStoreSound(await rootOf(puller), {
        known: tokKnown,
        image: { name: tokRef(), recorded: false },
      });
      assert.deepEqual(blobs, []);
    };

    before(async () => {
      tokens = await startTokenServer();
      tokenProxy = await startFaultProxy({ upstream: tokens.url });
      tokenRegistry = await startRegistry({
        token: {
          realm: `${tokenProxy.url}/token`,
          service: tokens.service,
          issuer: tokens.issuer,
          certFile: tokens.certFile,
        },
      });
      tokImg = await buildImage({ layers: [20_000], seed: 'faults-token' });
      tokKnown = knownBlobs(tokImg);
      await pushImage(tokImg, tokenRegistry, 'faults/tok:v1');
    });
    beforeEach(() => tokenProxy.reset());
    after(async () => {
      await tokenProxy?.stop();
      await tokenRegistry?.stop();
      await tokens?.stop();
      await tokImg?.remove();
    });

    test('503 once: retried, the pull succeeds', async () => {
      tokenProxy.setRule((r) => (r.count === 1 ? fault.serverError(503) : undefined));
      const { puller } = newPuller();
      const { events, onEvent } = captureEvents();
      await puller.pull(tokRef(), { onEvent });
      assert.ok(retries(events).some((e) => e.host === tokenProxy.host && e.reason === 'HTTP 503'));
      await assertStoreSound(await rootOf(puller), { known: tokKnown, image: { name: tokRef(), recorded: true } });
    });

    test('a relative realm is resolved against the registry, and the token request follows a redirect (R6)', async () => {
      const relative = await startFaultProxy({ upstream: tokenRegistry.url, rewriteRealm: () => '/auth/token' });
      try {
        relative.setRule((r) =>
          r.path === '/auth/token' ? fault.redirect(`${tokenProxy.url}/token${r.url.slice(r.path.length)}`) : undefined,
        );
        const { puller } = newPuller();
        const image = `${relative.host}/faults/tok:v1`;
        await puller.pull(image);
        assert.ok(
          relative.requests.some((r) => r.path === '/auth/token'),
          'the relative realm was not asked',
        );
        assert.ok(
          tokenProxy.requests.some(
            (r) =>
              r.path === '/token' &&
              new URL(r.url, 'http://x').searchParams.get('scope') === 'repository:faults/tok:pull',
          ),
        );
        await assertStoreSound(await rootOf(puller), { known: tokKnown, image: { name: image, recorded: true } });
      } finally {
        await relative.stop();
      }
    });

    test('500 always: ErrRegistryUnavailable naming the image, the token server and the attempts', async () => {
      tokenProxy.setRule(() => fault.serverError(500));
      const { puller } = newPuller();
      const err = await failing(puller.pull(tokRef()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: tokRef(),
        says: [/token/, new RegExp(tokenProxy.host), /HTTP 500/, /gave up after 5 attempts/],
      });
      assert.equal(tokenProxy.requests.length, 5);
      await assertNothingPulled(puller);
    });

    test('401: ErrUnauthorized saying the token server refused anonymous access', async () => {
      tokenProxy.setRule(() => fault.status(401));
      const { puller } = newPuller();
      const err = await failing(puller.pull(tokRef()));
      assertClearFailure(err, {
        code: 'ErrUnauthorized',
        image: tokRef(),
        says: [new RegExp(`token server ${tokenProxy.host} refused anonymous access`)],
      });
      await assertNothingPulled(puller);
    });

    test('an answer that is not a token: ErrInvalidTokenResponse', async () => {
      tokenProxy.setRule(() => fault.status(200, { 'content-type': 'text/html' }, '<html>login</html>'));
      const { puller } = newPuller();
      const err = await failing(puller.pull(tokRef()));
      assertClearFailure(err, {
        code: 'ErrInvalidTokenResponse',
        image: tokRef(),
        says: [new RegExp(tokenProxy.host)],
      });
      await assertNothingPulled(puller);
    });

    test('a token endpoint that never answers: headers timeout, retried, ErrRegistryUnavailable', async () => {
      tokenProxy.setRule(() => fault.hang());
      const { puller } = newPuller({ headersTimeoutMs: 300, retry: { maxAttempts: 2 } });
      const err = await failing(puller.pull(tokRef()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: tokRef(),
        says: [/UND_ERR_HEADERS_TIMEOUT/, new RegExp(tokenProxy.host), /gave up after 2 attempts/],
      });
      await assertNothingPulled(puller);
    });

    test('a token endpoint that resets the connection: retried, then ErrRegistryUnavailable', async () => {
      tokenProxy.setRule(() => fault.cutAfter(0));
      const { puller } = newPuller();
      const err = await failing(puller.pull(tokRef()));
      assertClearFailure(err, {
        code: 'ErrRegistryUnavailable',
        image: tokRef(),
        says: [new RegExp(tokenProxy.host), /gave up after 5 attempts/],
      });
      await assertNothingPulled(puller);
    });
  });

  describe('kimg pull and kimg fsck, as a user runs them', () => {
    const env = () => ({
      HOME: tmp.path,
      XDG_DATA_HOME: join(tmp.path, 'xdg'),
      KIMG_STORE: '',
      DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
      REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
      XDG_RUNTIME_DIR: tmp.path,
    });
    before(async () => {
      await Promise.all(
        ['faults/cli-flip', 'faults/cli-503', 'faults/cli-reset'].map((repo) => pushImage(img, registry, `${repo}:v1`)),
      );
    });

    test('a corrupt layer exits 1 with one line naming the image, the layer and the code; a 503 and a reset are retried and succeed; kimg fsck is clean after each', async () => {
      proxy.setRule((r) => {
        if (r.path === blobPath(big.digest, 'faults/cli-flip')) return fault.flipByte(99);
        if (r.path.startsWith('/v2/faults/cli-503/') && r.count === 1) return fault.serverError(503);
        if (r.path === blobPath(big.digest, 'faults/cli-reset') && r.count === 1) return fault.cutAfter(MiB);
        return undefined;
      });
      const stores = ['flip', '503', 'reset'].map((s) => join(tmp.path, `cli-${s}`));
      const pull = (i: number) => [
        'pull',
        '--store',
        stores[i] ?? '',
        ref(['faults/cli-flip', 'faults/cli-503', 'faults/cli-reset'][i]),
      ];
      // The corrupt layer in a real process; the retried ones through the same `main` in-process.
      const [flip, unavailable, reset] = await Promise.all([
        runCli(pull(0), { env: env() }),
        kimg(pull(1), env()),
        kimg(pull(2), env()),
      ]);
      assert.equal(flip.status, 1, flip.stdout);
      // A store the user named that does not exist yet is announced before the pull starts.
      const line = flip.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('kimg: creating a new image store at '))
        .join('\n');
      assert.equal(line.split('\n').length, 1, flip.stderr);
      assert.match(
        line,
        new RegExp(
          `^kimg: pulling ${ref('faults/cli-flip').replace(/[.]/g, '\\.')}: layer ${big.digest} from [0-9.:]+: digest mismatch: expected ${big.digest}, got sha256:[0-9a-f]{64}; the downloaded bytes were discarded \\(ErrDigestMismatch\\)$`,
        ),
      );
      assert.equal(unavailable.status, 0, unavailable.stderr);
      assert.match(
        unavailable.stdout,
        new RegExp(`^retrying ${proxy.host.replace(/[.]/g, '\\.')} \\(attempt 1\\): HTTP 503$`, 'm'),
      );
      assert.equal(reset.status, 0, reset.stderr);
      assert.match(reset.stdout, new RegExp(`resuming ${big.digest} at byte \\d+`));

      for (const [i, dir] of stores.entries()) {
        const fsck = await kimg(['fsck', '--store', dir], env());
        assert.equal(fsck.status, 0, `${dir}: ${fsck.stdout}${fsck.stderr}`);
        assert.match(fsck.stdout, /^ok: \d+ blobs/m);
        await assertStoreSound(dir, {
          known,
          image: { name: ref(['faults/cli-flip', 'faults/cli-503', 'faults/cli-reset'][i]), recorded: i > 0 },
        });
      }
    });
  });
});
