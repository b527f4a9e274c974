// The registry client against a real registry behind the fault-injecting proxy: HEAD quirks,
// lying headers, corrupt and oversized bodies, resume after broken and stalled connections,
// Range misbehaviour, retries and shared back-off (with an injected clock), concurrency caps,
// redirects.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isKimgError } from '../../src/errors/index.ts';
import { RegistryClient, RegistryError, type RegistryClientOptions } from '../../src/registry/index.ts';
import {
  buildImage,
  fault,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type BuiltLayer,
  type FaultProxy,
  type RunningRegistry,
} from '../harness/index.ts';
import { FakeClock, HandClock, MemorySink, captureEvents, eventually, readBlob } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const REPO = { registry: 'faults.test', path: 'test/img' };

describe('registry client behind the fault proxy', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let layer: BuiltLayer;
  let layerBytes: Buffer;
  const clients: RegistryClient[] = [];
  const makeClient = (options: RegistryClientOptions = {}): RegistryClient => {
    const c = new RegistryClient({
      endpoints: () => [{ baseUrl: proxy.url, insecure: true }],
      clock: new FakeClock(),
      ...options,
    });
    clients.push(c);
    return c;
  };
  const blobPath = () => `/v2/${REPO.path}/blobs/${layer.digest}`;
  const manifestPath = (ref: string) => `/v2/${REPO.path}/manifests/${ref}`;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    image = await buildImage({ layers: [2_000_000], seed: 'faults' });
    await pushImage(image, registry, `${REPO.path}:v1`);
    const l = image.images[0]?.layers[0];
    assert.ok(l);
    layer = l;
    layerBytes = await readBlob(image.blobPath(layer.digest));
  });
  beforeEach(() => proxy.reset());
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
  });

  describe('resolve quirks (R6)', () => {
    test('HEAD 405 → GET by tag, bytes hashed and returned', async () => {
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.methodNotAllowed() : undefined));
      const result = await makeClient().resolve(REPO, 'v1');
      assert.equal(result.via, 'GET');
      assert.equal(result.descriptor.digest, image.digest);
      assert.equal(result.manifest?.document.kind, 'manifest');
      assert.deepEqual(
        proxy.requests.map((r) => r.method),
        ['HEAD', 'GET'],
      );
    });

    for (const header of ['docker-content-digest', 'content-length', 'content-type']) {
      test(`HEAD without ${header} → GET`, async () => {
        proxy.setRule((r) => (r.method === 'HEAD' ? fault.dropHeader(header) : undefined));
        const result = await makeClient().resolve(REPO, 'v1');
        assert.equal(result.via, 'GET');
        assert.equal(result.descriptor.digest, image.digest);
      });
    }

    test('a lying Docker-Content-Digest on the GET fails the resolve', async () => {
      const lie = `sha256:${'1'.repeat(64)}`;
      proxy.setRule((r) =>
        r.method === 'HEAD' ? fault.methodNotAllowed() : fault.forgeHeader('docker-content-digest', lie),
      );
      await assert.rejects(makeClient().resolve(REPO, 'v1'), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrDigestMismatch');
        assert.equal(err.expectedDigest, lie);
        assert.equal(err.actualDigest, image.digest);
        return true;
      });
    });

    test('a lying HEAD digest is caught by the GET by digest that follows', async () => {
      const lie = `sha256:${'2'.repeat(64)}`;
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.forgeHeader('docker-content-digest', lie) : undefined));
      const client = makeClient();
      const resolved = await client.resolve(REPO, 'v1');
      assert.equal(resolved.descriptor.digest, lie);
      await assert.rejects(
        client.getManifest(REPO, lie, { descriptor: resolved.descriptor }),
        (err: unknown) => isKimgError(err) && ['ErrManifestUnknown', 'ErrDigestMismatch'].includes(err.code),
      );
    });

    test('HEAD 403 → one GET to surface the error body', async () => {
      proxy.setRule(() =>
        fault.status(
          403,
          {},
          JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }),
        ),
      );
      await assert.rejects(makeClient().resolve(REPO, 'v1'), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrDenied');
        assert.match(err.message, /requested access to the resource is denied/);
        return true;
      });
      assert.deepEqual(
        proxy.requests.map((r) => r.method),
        ['HEAD', 'GET'],
      );
    });

    test('Content-Type parameters are ignored; Warning 299 and rate-limit headers are surfaced once', async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD'
          ? [
              fault.forgeHeader('content-type', `${image.mediaType}; charset=utf-8`),
              fault.forgeHeader('warning', '299 - "this repository is deprecated"'),
              fault.forgeHeader('ratelimit-remaining', '76;w=21600'),
              fault.forgeHeader('ratelimit-limit', '100;w=21600'),
            ]
          : undefined,
      );
      const { events, onEvent } = captureEvents();
      const client = makeClient({ onEvent });
      const first = await client.resolve(REPO, 'v1');
      await client.resolve(REPO, 'v1');
      assert.equal(first.descriptor.mediaType, image.mediaType);
      assert.deepEqual(first.warnings, ['this repository is deprecated']);
      assert.deepEqual(first.rateLimit, { limit: 100, remaining: 76, windowSeconds: 21600 });
      assert.equal(events.filter((e) => e.type === 'warning').length, 1);
    });

    test('a manifest 404 by digest falls back to /blobs/, other statuses do not', async () => {
      // Distribution keeps manifests out of the repository's blob links, so store the bytes as a blob too.
      const bytes = await readBlob(image.blobPath(image.digest));
      const start = await fetch(`${registry.url}/v2/${REPO.path}/blobs/uploads/`, { method: 'POST' });
      assert.equal(start.status, 202);
      const upload = new URL(start.headers.get('location') ?? '', registry.url);
      upload.searchParams.set('digest', image.digest);
      const put = await fetch(upload, {
        method: 'PUT',
        body: bytes,
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(put.status, 201);

      proxy.setRule((r) => (r.path === manifestPath(image.digest) ? fault.notFound() : undefined));
      const m = await makeClient().getManifest(REPO, image.digest, {
        descriptor: { mediaType: image.mediaType, digest: image.digest, size: image.size },
      });
      assert.equal(m.digest, image.digest);
      assert.deepEqual(
        proxy.requests.map((r) => r.path),
        [manifestPath(image.digest), `/v2/${REPO.path}/blobs/${image.digest}`],
      );
      proxy.reset();
      proxy.setRule((r) => (r.path === manifestPath(image.digest) ? fault.status(400) : undefined));
      await assert.rejects(makeClient().getManifest(REPO, image.digest), (err: unknown) =>
        isKimgError(err, 'ErrUnexpectedStatus'),
      );
      assert.equal(proxy.requests.length, 1);
    });
  });

  describe('manifest verification and caps (S1, S7, S10)', () => {
    test('one flipped byte → ErrDigestMismatch', async () => {
      proxy.setRule(() => fault.flipByte(10));
      await assert.rejects(makeClient().getManifest(REPO, image.digest), (err: unknown) =>
        isKimgError(err, 'ErrDigestMismatch'),
      );
    });

    test('a manifest over the cap fails at cap + 1 bytes, declared or chunked', async () => {
      const client = makeClient({ maxManifestBytes: 100 });
      await assert.rejects(client.getManifest(REPO, image.digest), (err: unknown) =>
        isKimgError(err, 'ErrManifestTooLarge'),
      );
      proxy.setRule(() => fault.chunked());
      await assert.rejects(client.getManifest(REPO, image.digest), (err: unknown) =>
        isKimgError(err, 'ErrManifestTooLarge'),
      );
      proxy.setRule(() => fault.replaceBody(Buffer.alloc(5 * 1024 * 1024, 0x20)));
      await assert.rejects(makeClient().getManifest(REPO, image.digest), (err: unknown) =>
        isKimgError(err, 'ErrManifestTooLarge'),
      );
    });

    test('a body that does not match the descriptor size is refused before reading', async () => {
      await assert.rejects(
        makeClient().getManifest(REPO, image.digest, {
          descriptor: { mediaType: image.mediaType, digest: image.digest, size: image.size - 1 },
        }),
        (err: unknown) => isKimgError(err, 'ErrSizeMismatch'),
      );
    });

    test('an ambiguous document (manifests + layers) is refused even when the digest matches', async () => {
      const evil = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          manifests: [],
          layers: [],
          config: layer,
        }),
      );
      const { createHash } = await import('node:crypto');
      const digest = `sha256:${createHash('sha256').update(evil).digest('hex')}`;
      proxy.setRule(() => fault.status(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, evil));
      await assert.rejects(makeClient().getManifest(REPO, digest), (err: unknown) =>
        isKimgError(err, 'ErrManifestInvalid'),
      );
    });
  });

  describe('blob streaming (S1, S2, R3, R7)', () => {
    test('one flipped byte → ErrDigestMismatch and an emptied sink', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.flipByte(123_456) : undefined));
      const sink = new MemorySink();
      await assert.rejects(makeClient().fetchBlob(REPO, layer, sink), (err: unknown) =>
        isKimgError(err, 'ErrDigestMismatch'),
      );
      assert.equal(sink.offset, 0);
    });

    test('a body longer than declared is aborted at once (chunked, no Content-Length)', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.extraBytes(10 * layer.size, true) : undefined));
      const sink = new MemorySink();
      await assert.rejects(makeClient().fetchBlob(REPO, layer, sink), (err: unknown) =>
        isKimgError(err, 'ErrSizeMismatch'),
      );
      assert.ok(sink.offset <= layer.size, 'never more than the declared size reaches the sink');
    });

    test('a 10× body with a matching Content-Length is refused before reading', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.replaceBody(Buffer.alloc(10 * layer.size)) : undefined));
      const sink = new MemorySink();
      await assert.rejects(makeClient().fetchBlob(REPO, layer, sink), (err: unknown) =>
        isKimgError(err, 'ErrSizeMismatch'),
      );
      assert.equal(sink.offset, 0);
    });

    test('resumes with Range after the connection is cut, repeatedly', async () => {
      proxy.setRule((r) => (r.path === blobPath() && r.count <= 5 ? fault.cutAfter(300_000) : undefined));
      const { events, onEvent } = captureEvents();
      const sink = new MemorySink();
      const result = await makeClient({ onEvent }).fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.equal(result.resumes, 5);
      // Each resume asks for exactly what the sink lacks (bytes in flight at the cut are lost).
      const ranges = proxy.requests.filter((r) => r.path === blobPath()).map((r) => r.headers.range);
      assert.equal(ranges.length, 6);
      assert.equal(ranges[0], undefined);
      const starts = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(String(r))?.[1]));
      assert.ok(
        starts.every((s, i) => s > (starts[i - 1] ?? 0)),
        JSON.stringify(ranges),
      );
      assert.ok(result.bytesReceived <= layer.size * 1.1);
      assert.equal(events.filter((e) => e.type === 'resuming').length, 5);
    });

    test('a truncated body (clean close, too few bytes) is resumed', async () => {
      proxy.setRule((r) => (r.path === blobPath() && r.count === 1 ? fault.truncate(500_000) : undefined));
      const sink = new MemorySink();
      const result = await makeClient().fetchBlob(REPO, layer, sink);
      assert.equal(result.resumes, 1);
      assert.deepEqual(sink.bytes(), layerBytes);
    });

    test('gives up after 3 attempts in a row without progress', async () => {
      // After a first cut, every resume gets its headers and then no body at all (a stall).
      proxy.setRule((r) => {
        if (r.path !== blobPath()) return undefined;
        if (r.count === 1) return fault.cutAfter(100_000);
        const start = Number(/^bytes=(\d+)-$/.exec(String(r.headers.range))?.[1] ?? 0);
        return fault.replaceBody(Buffer.alloc(0), layer.size - start);
      });
      const sink = new MemorySink();
      await assert.rejects(makeClient().fetchBlob(REPO, layer, sink, { stallTimeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrResumeExhausted', String(err));
        assert.match(err.message, /3 times in a row without progress at byte \d+/);
        return true;
      });
      assert.equal(proxy.requests.length, 4);
    });

    test('a registry that ignores Range and truncates every body: bounded, and the cause is named', async () => {
      // Every answer is the whole blob cut at the same byte: each resume starts over and gets no
      // further. (Before the bound counted progress of the committed offset, this downloaded the
      // 2 MB blob 1,001 times.)
      const cut = 1_000_000;
      proxy.setRule((r) => (r.path === blobPath() ? [fault.ignoreRange(), fault.truncate(cut)] : undefined));
      const sink = new MemorySink();
      await assert.rejects(makeClient().fetchBlob(REPO, layer, sink), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrRangeIgnored', String(err));
        assert.match(err.message, /ignored Range and truncated the body 3 times/);
        return true;
      });
      const blobRequests = proxy.requests.filter((r) => r.path === blobPath());
      assert.equal(blobRequests.length, 4, 'the first answer, then three restarts without progress');
      const sent = blobRequests.reduce((sum, r) => sum + r.bytesSent, 0);
      assert.ok(sent <= 4 * cut, `${sent} bytes sent for a ${layer.size}-byte blob`);
    });

    test('a stalled body is dropped and resumed', async () => {
      // One byte every 5 s; undici checks body timeouts on ~0.5 s ticks.
      proxy.setRule((r) => (r.path === blobPath() && r.count === 1 ? fault.trickle(0.2) : undefined));
      const sink = new MemorySink();
      const result = await makeClient().fetchBlob(REPO, layer, sink, { stallTimeoutMs: 500 });
      assert.ok(result.resumes >= 1);
      assert.deepEqual(sink.bytes(), layerBytes);
    });

    test('a server ignoring Range: restart from 0 by default, or fail when asked to', async () => {
      const half = layerBytes.subarray(0, 1_000_000);
      proxy.setRule((r) => (r.path === blobPath() ? fault.ignoreRange() : undefined));
      const sink = new MemorySink(half);
      const { events, onEvent } = captureEvents();
      const result = await makeClient({ onEvent }).fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.equal(sink.resets, 1);
      assert.equal(result.bytesReceived, layer.size);
      assert.equal(events.filter((e) => e.type === 'rangeIgnored').length, 1);
      await assert.rejects(
        makeClient().fetchBlob(REPO, layer, new MemorySink(half), { onRangeIgnored: 'error' }),
        (err: unknown) => isKimgError(err, 'ErrRangeIgnored'),
      );
    });

    test('a misaligned Content-Range restarts from 0', async () => {
      proxy.setRule((r) => (r.path === blobPath() && r.count === 1 ? fault.misalignedRange(-10) : undefined));
      const sink = new MemorySink(layerBytes.subarray(0, 1_000_000));
      await makeClient().fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      const ranges = proxy.requests.filter((r) => r.path === blobPath()).map((r) => r.headers.range);
      assert.deepEqual(ranges, ['bytes=1000000-', undefined]);
    });

    test('the caller can abort a download', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.trickle(100_000) : undefined));
      const ac = new AbortController();
      const sink = new MemorySink();
      const pending = makeClient().fetchBlob(REPO, layer, sink, { signal: ac.signal });
      await eventually(() => sink.offset > 0);
      ac.abort(new Error('user gave up'));
      await assert.rejects(pending, /user gave up/);
    });
  });

  describe('retries and back-off (R2)', () => {
    test('503 twice then 200 → success after two scheduled retries', async () => {
      proxy.setRule((r) => (r.path === blobPath() && r.count <= 2 ? fault.serverError(503) : undefined));
      const clock = new FakeClock();
      const { events, onEvent } = captureEvents();
      const sink = new MemorySink();
      await makeClient({ clock, onEvent, random: () => 0.5 }).fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      const retries = events.filter((e) => e.type === 'retrying');
      assert.deepEqual(
        retries.map((e) => (e.type === 'retrying' ? [e.reason, e.attempt, e.delayMs] : [])),
        [
          ['HTTP 503', 1, 375],
          ['HTTP 503', 2, 750],
        ],
      );
      assert.deepEqual(clock.sleeps, [375, 750]);
    });

    test('429 with Retry-After: 2 waits at least 2 s (injected clock)', async () => {
      proxy.setRule((r) => (r.path === blobPath() && r.count === 1 ? fault.tooManyRequests(2) : undefined));
      const clock = new FakeClock();
      await makeClient({ clock }).fetchBlob(REPO, layer, new MemorySink());
      assert.equal(clock.sleeps.length, 1);
      assert.ok((clock.sleeps[0] ?? 0) >= 2000);
    });

    test('always 503 → ErrRegistryUnavailable after 5 attempts, naming them', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.serverError(503) : undefined));
      await assert.rejects(makeClient().fetchBlob(REPO, layer, new MemorySink()), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrRegistryUnavailable');
        assert.equal(err.attempts, 5);
        assert.match(err.message, /gave up after 5 attempts/);
        return true;
      });
      assert.equal(proxy.requests.length, 5);
    });

    test('429 with a Retry-After beyond 120 s fails at once with the hint and rate limit', async () => {
      proxy.setRule(() =>
        fault.status(429, {
          'retry-after': '3600',
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': '0;w=21600',
        }),
      );
      await assert.rejects(makeClient().resolve(REPO, 'v1'), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrTooManyRequests');
        assert.equal(err.retryAfterMs, 3_600_000);
        assert.deepEqual(err.rateLimit, { limit: 100, remaining: 0, windowSeconds: 21600 });
        assert.match(err.message, /0 of 100 requests left per 21600 s/);
        return true;
      });
      assert.equal(proxy.requests.length, 1);
    });

    test('404 is not retried', async () => {
      await assert.rejects(makeClient().resolve(REPO, 'missing'), (err: unknown) =>
        isKimgError(err, 'ErrManifestUnknown'),
      );
      assert.equal(proxy.requests.length, 1);
    });

    test('concurrent requests share the host back-off', async () => {
      const clock = new HandClock();
      proxy.setRule((r) => (r.path === blobPath() && r.count === 1 ? fault.tooManyRequests(3) : undefined));
      const client = makeClient({ clock });
      const first = client.fetchBlob(REPO, layer, new MemorySink());
      await eventually(() => clock.sleepers === 1);
      // A second request to the same host, started during the back-off, must wait too.
      const second = client.resolve(REPO, 'v1');
      await eventually(() => clock.sleepers === 2);
      assert.equal(proxy.requests.length, 1, 'nothing sent during the back-off');
      clock.advance(3000);
      await Promise.all([first, second]);
      assert.equal(proxy.requests.length, 3);
    });
  });

  describe('concurrency cap (R4)', () => {
    test('never more requests in flight per host than the cap', async () => {
      // Counted when each request arrives: the earlier ones the proxy is still sending bytes for.
      // (The proxy's own in-flight count ends at its socket's close, a moment after the client
      // has read the last byte and moved on, so it over-counts by that skew.)
      let max = 0;
      proxy.setRule((r) => {
        if (r.path !== blobPath()) return undefined;
        const busy = proxy.requests.filter(
          (q) => q.path === blobPath() && q.seq < r.seq && q.bytesSent < layer.size && q.error === undefined,
        ).length;
        max = Math.max(max, busy + 1);
        return fault.trickle(4_000_000);
      });
      const client = makeClient({ maxConcurrentPerHost: 3 });
      await Promise.all(Array.from({ length: 8 }, () => client.fetchBlob(REPO, layer, new MemorySink())));
      assert.equal(max, 3);
    });
  });

  describe('redirects (docs/semantics.md registry §9, S6)', () => {
    test('a relative Location is followed', async () => {
      proxy.setRule((r) =>
        r.path === blobPath() && r.count === 1 ? fault.redirect(`../blobs/${layer.digest}?hop=1`) : undefined,
      );
      const sink = new MemorySink();
      await makeClient().fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.equal(proxy.requests[1]?.url, `${blobPath()}?hop=1`);
    });

    test('more than 10 hops → ErrTooManyRedirects', async () => {
      proxy.setRule((r) => (r.path === blobPath() ? fault.redirect(`${blobPath()}?n=${r.count}`) : undefined));
      await assert.rejects(makeClient().fetchBlob(REPO, layer, new MemorySink()), (err: unknown) =>
        isKimgError(err, 'ErrTooManyRedirects'),
      );
      assert.equal(proxy.requests.length, 11);
    });
  });
});
