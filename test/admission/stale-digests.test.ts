// Bounded stale-while-error (docs/semantics.md admission §7, `resolver.staleIfErrorSeconds`): when the real registry
// behind the fault proxy cannot answer (5xx, a hang past the request budget, connection refused),
// a digest looked up earlier is pinned with a warning naming the image, the word `stale` and its
// age; a 404 or 401 is the registry's answer and still fails; nothing is bridged by default or
// once the stale window has closed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Pinner, RegistryResolver } from '../../src/admission/index.ts';
import { fault, httpRequest, requireTools, startFaultProxy } from '../harness/index.ts';
import { SERVICE_NAME, patchMap } from './apiserver.ts';
import { objects, startRegistryFixture, startWebhook, type RegistryFixture, type RunningWebhook } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

const APP = 'registry.kimg.test/team/app:v1';
const NEVER_LOOKED_UP = 'registry.kimg.test/team/app:v2';

async function metrics(hook: RunningWebhook): Promise<string> {
  const res = await httpRequest(`https://127.0.0.1:${hook.port}/metrics`, { ca: hook.caPem, servername: SERVICE_NAME });
  return res.body.toString('utf8');
}

describe('stale-while-error', { skip }, () => {
  let fx: RegistryFixture;
  // cacheTtlSeconds 0: every admission asks the registry, so each failure below is a real lookup failure.
  let plain: RunningWebhook;
  let bridging: RunningWebhook;

  before(async () => {
    fx = await startRegistryFixture(['app', 'appV2']);
    plain = await startWebhook(fx, { resolver: { cacheTtlSeconds: 0 } });
    bridging = await startWebhook(fx, { resolver: { cacheTtlSeconds: 0, staleIfErrorSeconds: 300 } });
  });

  after(async () => {
    await plain?.stop();
    await bridging?.stop();
    await fx?.stop();
  });

  const pod = (...images: string[]) => ({ object: objects.pod({ containers: objects.containers(...images) }) });

  test('a registry answering 503: pinned from the stale digest with a warning; off by default', async () => {
    const D = fx.digest('app');
    for (const hook of [plain, bridging])
      assert.deepEqual(patchMap((await hook.mutate(pod(APP))).patch), { '/spec/containers/0/image': `${APP}@${D}` });

    fx.proxy.setRule(() => fault.serverError(503));
    try {
      const denied = await plain.mutate(pod(APP));
      assert.equal(denied.response.allowed, false);
      assert.match(denied.response.status?.message ?? '', /registry\.kimg\.test\/team\/app:v1: HTTP 503/);

      const bridged = await bridging.mutate(pod(APP));
      assert.equal(bridged.response.allowed, true);
      assert.deepEqual(patchMap(bridged.patch), { '/spec/containers/0/image': `${APP}@${D}` });
      const warnings = bridged.response.warnings ?? [];
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(
        warnings[0] ?? '',
        /^registry\.kimg\.test\/team\/app:v1: pinned a stale digest, looked up \d+ s ago \(registry lookup failed: HTTP 503\)$/,
      );

      // Nothing cached for this one: the failure stands.
      const uncached = await bridging.mutate(pod(NEVER_LOOKED_UP));
      assert.equal(uncached.response.allowed, false);
      assert.match(uncached.response.status?.message ?? '', /registry\.kimg\.test\/team\/app:v2: HTTP 503/);
    } finally {
      fx.proxy.setRule(undefined);
    }
    assert.match(await metrics(bridging), /^kimg_digest_stale_served_total\{cause="HTTP 503"\} 1$/m);
    assert.doesNotMatch(await metrics(plain), /^kimg_digest_stale_served_total\{/m);
  });

  test('404 and 401 are answers about the image: they fail even with a stale digest at hand', async () => {
    assert.ok((await bridging.mutate(pod(APP))).patch, 'a fresh answer is cached first');
    const cases: [ReturnType<typeof fault.status>, RegExp][] = [
      [fault.notFound(), /registry\.kimg\.test\/team\/app:v1: not found/],
      [fault.unauthorized('Basic realm="registry"'), /registry\.kimg\.test\/team\/app:v1: auth/],
      [fault.forbidden(), /registry\.kimg\.test\/team\/app:v1: auth/],
    ];
    for (const [answer, message] of cases) {
      fx.proxy.setRule(() => answer);
      try {
        const result = await bridging.mutate(pod(APP));
        assert.equal(result.response.allowed, false, String(message));
        assert.match(result.response.status?.message ?? '', message);
        assert.equal(result.response.warnings, undefined);
      } finally {
        fx.proxy.setRule(undefined);
      }
    }
  });

  test('a hanging registry: the stale digest is pinned within ?timeout=2s', async () => {
    assert.ok((await bridging.mutate(pod(APP))).patch);
    const before = await metrics(bridging);
    fx.proxy.setRule(() => fault.hang());
    try {
      // The harness gives up at the 2 s deadline, as the apiserver would.
      const result = await bridging.mutate(pod(APP), 2);
      assert.equal(result.response.allowed, true);
      assert.deepEqual(patchMap(result.patch), { '/spec/containers/0/image': `${APP}@${fx.digest('app')}` });
      assert.ok(
        result.response.warnings?.some((w) => w.startsWith(`${APP}: pinned a stale digest`) && w.includes('timeout')),
        JSON.stringify(result.response.warnings),
      );
    } finally {
      fx.proxy.setRule(undefined);
      fx.proxy.reset();
    }
    assert.doesNotMatch(before, /cause="timeout"/);
    assert.match(await metrics(bridging), /^kimg_digest_stale_served_total\{cause="timeout"\} 1$/m);
  });

  test('the stale window is bounded; an unreachable registry (connection refused) is bridged inside it', async () => {
    // The Pinner with a clock of its own, on the real registry through a proxy this test can stop.
    const proxy = await startFaultProxy({ upstream: fx.registry.url });
    const resolver = new RegistryResolver({ registryHosts: { 'registry.kimg.test': proxy.url } });
    let now = 1_000_000;
    const pinner = new Pinner({ resolver, cacheTtlSeconds: 10, staleIfErrorSeconds: 30, now: () => now });
    const D = fx.digest('app');
    try {
      assert.equal((await pinner.pin(APP)).image, `${APP}@${D}`);

      proxy.setRule(() => fault.serverError(502));
      now += 15_000; // expired 5 s ago
      const stale = await pinner.pin(APP);
      assert.equal(stale.status, 'pinned');
      assert.equal(stale.image, `${APP}@${D}`);
      assert.deepEqual(stale.stale, { reference: 'registry.kimg.test/team/app:v1', ageMs: 15_000, reason: 'HTTP 502' });
      assert.deepEqual(stale.warnings, [
        `${APP}: pinned a stale digest, looked up 15 s ago (registry lookup failed: HTTP 502)`,
      ]);

      now += 25_000; // expired 30 s ago: the window has closed
      const closed = await pinner.pin(APP);
      assert.equal(closed.status, 'failed');
      assert.equal(closed.failure?.reason, 'HTTP 502');
      assert.equal(closed.image, APP);

      proxy.setRule(undefined);
      assert.equal((await pinner.pin(APP)).stale, undefined, 'a fresh lookup again');
      await proxy.stop();
      now += 20_000; // expired 10 s ago; nothing listens on the proxy's port any more
      const refused = await pinner.pin(APP);
      assert.equal(refused.image, `${APP}@${D}`);
      assert.equal(refused.stale?.reason, 'ECONNREFUSED');
      assert.equal(pinner.stats.staleServes, 2);
    } finally {
      await proxy.stop().catch(() => undefined);
      await resolver.close();
    }
  });
});
