// The mutating webhook end to end: the apiserver-like harness posts AdmissionReviews over HTTPS
// to `kimg webhook serve`'s server, which resolves images against the real local registry (via
// the fault proxy, which counts requests). docs/semantics.md admission §4.1–§4.4, §4.6, §4.9, §4.11–§4.14.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireTools } from '../harness/index.ts';
import { patchMap } from './apiserver.ts';
import { objects, startRegistryFixture, startWebhook, type RegistryFixture, type RunningWebhook } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

const APP = 'registry.kimg.test/team/app:v1';

function heads(fixture: RegistryFixture): string[] {
  return fixture.proxy.requests.filter((r) => r.method === 'HEAD').map((r) => r.path);
}

describe('mutating webhook against the real registry', { skip }, () => {
  let fx: RegistryFixture;
  let hook: RunningWebhook;

  before(async () => {
    fx = await startRegistryFixture();
    hook = await startWebhook(fx);
  });

  after(async () => {
    await hook?.stop();
    await fx?.stop();
  });

  test('every kind and every slot: containers, initContainers, ephemeralContainers, image volumes', async () => {
    const D = fx.digest('app');
    const podSpec = {
      initContainers: [{ name: 'init', image: APP }],
      containers: [
        { name: 'main', image: APP },
        { name: 'side', image: `${APP}@${D}` },
      ],
      ephemeralContainers: [{ name: 'debug', image: APP }],
      volumes: [
        { name: 'cfg', configMap: { name: 'x' } },
        { name: 'data', image: { reference: APP, pullPolicy: 'IfNotPresent' } },
      ],
    };
    const kinds: [string, string, string][] = [
      ['v1', 'Pod', '/spec'],
      ['v1', 'PodTemplate', '/template/spec'],
      ['v1', 'ReplicationController', '/spec/template/spec'],
      ['apps/v1', 'ReplicaSet', '/spec/template/spec'],
      ['apps/v1', 'Deployment', '/spec/template/spec'],
      ['apps/v1', 'StatefulSet', '/spec/template/spec'],
      ['apps/v1', 'DaemonSet', '/spec/template/spec'],
      ['batch/v1', 'Job', '/spec/template/spec'],
      ['batch/v1', 'CronJob', '/spec/jobTemplate/spec/template/spec'],
    ];
    for (const [apiVersion, kind, base] of kinds) {
      const result = await hook.mutate({ object: objects.workload(apiVersion, kind, podSpec) });
      assert.equal(result.response.allowed, true, kind);
      assert.deepEqual(
        patchMap(result.patch),
        {
          [`${base}/initContainers/0/image`]: `${APP}@${D}`,
          [`${base}/containers/0/image`]: `${APP}@${D}`,
          [`${base}/ephemeralContainers/0/image`]: `${APP}@${D}`,
          [`${base}/volumes/1/image/reference`]: `${APP}@${D}`,
        },
        kind,
      );
    }
  });

  test('custom resources through extraPodSpecPaths; other kinds are left alone without a lookup', async () => {
    const custom = await startWebhook(fx, {
      mutate: {
        extraPodSpecPaths: {
          'argoproj.io/Rollout': ['spec.template.spec'],
          'serving.knative.dev/Service': ['spec.template.spec'],
        },
      },
    });
    try {
      const D = fx.digest('app');
      const rollout = objects.workload('argoproj.io/v1alpha1', 'Rollout', { containers: objects.containers(APP) });
      assert.deepEqual(patchMap((await custom.mutate({ object: rollout })).patch), {
        '/spec/template/spec/containers/0/image': `${APP}@${D}`,
      });
      const ksvc = {
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata: { name: 'k' },
        spec: { template: { spec: { containers: [{ image: APP }] } } },
      };
      assert.deepEqual(patchMap((await custom.mutate({ object: ksvc })).patch), {
        '/spec/template/spec/containers/0/image': `${APP}@${D}`,
      });
      fx.proxy.reset();
      // Not configured on the default webhook: a CRD, a ConfigMap holding an image-like string.
      const plain = await hook.mutate({ object: rollout });
      assert.equal(plain.patch, undefined);
      const cm = await hook.mutate({
        object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { image: APP } },
      });
      assert.equal(cm.response.allowed, true);
      assert.equal(cm.patch, undefined);
      assert.equal(fx.proxy.requests.length, 0);
    } finally {
      await custom.stop();
    }
  });

  test('worked example A: a Job, two lookups, the implicit-latest warning, canonical values', async () => {
    const fresh = await startWebhook(fx);
    try {
      fx.proxy.reset();
      const D1 = fx.digest('migrate');
      const D2 = fx.digest('redis');
      const D9 = `sha256:${'9'.repeat(64)}`;
      const job = objects.workload('batch/v1', 'Job', {
        initContainers: [{ name: 'migrate', image: 'quay.io/team/migrate' }],
        containers: [
          { name: 'cache', image: 'redis:7.2' },
          { name: 'old', image: `redis:7.2@${D9}` },
        ],
        restartPolicy: 'Never',
      });
      const result = await fresh.mutate({ object: job });
      assert.equal(result.response.allowed, true);
      assert.equal(result.response.patchType, 'JSONPatch');
      assert.deepEqual(result.patch, [
        { op: 'replace', path: '/spec/template/spec/initContainers/0/image', value: `quay.io/team/migrate@${D1}` },
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: `redis:7.2@${D2}` },
      ]);
      const warnings = result.response.warnings ?? [];
      assert.equal(warnings.length, 1);
      assert.ok(
        warnings[0]?.includes('quay.io/team/migrate') &&
          warnings[0].includes('implicit') &&
          warnings[0].includes('latest'),
        warnings[0],
      );
      assert.deepEqual(heads(fx).sort(), ['/v2/library/redis/manifests/7.2', '/v2/team/migrate/manifests/latest']);
    } finally {
      await fresh.stop();
    }
    const canonical = await startWebhook(fx, { mutate: { outputFormat: 'canonical' } });
    const digestOnly = await startWebhook(fx, { mutate: { outputFormat: 'digest-only' } });
    try {
      const pod = objects.pod({
        containers: objects.containers('quay.io/team/migrate', 'redis:7.2', 'registry.kimg.test/team/app:v1'),
      });
      assert.deepEqual(patchMap((await canonical.mutate({ object: pod })).patch), {
        '/spec/containers/0/image': `quay.io/team/migrate:latest@${fx.digest('migrate')}`,
        '/spec/containers/1/image': `docker.io/library/redis:7.2@${fx.digest('redis')}`,
        '/spec/containers/2/image': `registry.kimg.test/team/app:v1@${fx.digest('app')}`,
      });
      const result = await digestOnly.mutate({ object: pod });
      assert.deepEqual(patchMap(result.patch), {
        '/spec/containers/0/image': `quay.io/team/migrate@${fx.digest('migrate')}`,
        '/spec/containers/1/image': `docker.io/library/redis@${fx.digest('redis')}`,
        '/spec/containers/2/image': `registry.kimg.test/team/app@${fx.digest('app')}`,
      });
      assert.equal(result.response.warnings, undefined, 'the implicit-latest warning is for preserve only');
    } finally {
      await canonical.stop();
      await digestOnly.stop();
    }
  });

  test('four spellings of one Docker Hub image: one lookup, each spelling kept', async () => {
    const fresh = await startWebhook(fx);
    try {
      fx.proxy.reset();
      const spellings = [
        'redis:7.2',
        'docker.io/redis:7.2',
        'docker.io/library/redis:7.2',
        'index.docker.io/library/redis:7.2',
      ];
      const result = await fresh.mutate({ object: objects.pod({ containers: objects.containers(...spellings) }) });
      const D = fx.digest('redis');
      assert.deepEqual(
        patchMap(result.patch),
        Object.fromEntries(spellings.map((s, i) => [`/spec/containers/${i}/image`, `${s}@${D}`])),
      );
      assert.deepEqual(heads(fx), ['/v2/library/redis/manifests/7.2']);
    } finally {
      await fresh.stop();
    }
  });

  test('50 concurrent admissions of one uncached image: one upstream HEAD', async () => {
    const fresh = await startWebhook(fx);
    try {
      fx.proxy.reset();
      // Slow the registry down so the admissions overlap for sure.
      fx.proxy.setRule((r) => (r.method === 'HEAD' ? { kind: 'delay', ms: 300 } : undefined));
      const pod = objects.pod({ containers: objects.containers('registry.kimg.test/team/multi:v1') });
      const results = await Promise.all(Array.from({ length: 50 }, () => fresh.mutate({ object: pod })));
      for (const r of results)
        assert.deepEqual(patchMap(r.patch), {
          '/spec/containers/0/image': `registry.kimg.test/team/multi:v1@${fx.digest('multi')}`,
        });
      assert.equal(heads(fx).length, 1);
      assert.equal(fresh.runtime.pinner.stats.lookups, 1);
    } finally {
      fx.proxy.setRule(undefined);
      await fresh.stop();
    }
  });

  test('the TTL cache answers repeats; cacheTtlSeconds 0 looks up every request; failures are not cached', async () => {
    const cached = await startWebhook(fx);
    const uncached = await startWebhook(fx, { resolver: { cacheTtlSeconds: 0 } });
    try {
      const pod = objects.pod({ containers: objects.containers(APP) });
      fx.proxy.reset();
      await cached.mutate({ object: pod });
      await cached.mutate({ object: pod });
      assert.equal(heads(fx).length, 1);
      fx.proxy.reset();
      await uncached.mutate({ object: pod });
      await uncached.mutate({ object: pod });
      assert.equal(heads(fx).length, 2);

      fx.proxy.reset();
      fx.proxy.setRule(() => ({ kind: 'status', status: 404 }));
      const failed = await cached.mutate({
        object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v2') }),
      });
      assert.equal(failed.response.allowed, false);
      fx.proxy.setRule(undefined);
      const ok = await cached.mutate({
        object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v2') }),
      });
      assert.deepEqual(patchMap(ok.patch), {
        '/spec/containers/0/image': `registry.kimg.test/team/app:v2@${fx.digest('appV2')}`,
      });
    } finally {
      fx.proxy.setRule(undefined);
      await cached.stop();
      await uncached.stop();
    }
  });

  test('pinned images, blank images and skipped prefixes cost nothing', async () => {
    const skipping = await startWebhook(fx, { mutate: { skipPrefixes: ['registry.kimg.test/sidecars/'] } });
    try {
      fx.proxy.reset();
      const pod = objects.pod({
        containers: [
          { name: 'a', image: `${APP}@${fx.digest('app')}` },
          { name: 'b', image: `registry.kimg.test/team/other@${fx.digest('app')}` },
          { name: 'c', image: ' ' },
          { name: 'd', image: '' },
          { name: 'e' },
          { name: 'f', image: 'registry.kimg.test/sidecars/proxy:1' },
        ],
      });
      const result = await skipping.mutate({ object: pod });
      assert.equal(result.response.allowed, true);
      assert.equal(result.patch, undefined);
      assert.equal(result.response.warnings, undefined);
      assert.equal(fx.proxy.requests.length, 0);
    } finally {
      await skipping.stop();
    }
  });

  test('invalid references: never sent to a registry; a warning, or a denial under invalidReference: deny', async () => {
    const denying = await startWebhook(fx, { mutate: { invalidReference: 'deny' } });
    try {
      fx.proxy.reset();
      const bad = ['registry.kimg.test/team/app@sha256:abc', 'registry.kimg.test/Team/App:v1', 'nginx:'];
      const pod = objects.pod({ containers: objects.containers(...bad, APP) });
      const warned = await hook.mutate({ object: pod });
      assert.equal(warned.response.allowed, true);
      assert.deepEqual(patchMap(warned.patch), { '/spec/containers/3/image': `${APP}@${fx.digest('app')}` });
      for (const image of bad)
        assert.ok(
          warned.response.warnings?.some((w) => w.includes(image) && w.includes('invalid')),
          image,
        );
      const refused = await denying.mutate({ object: pod });
      assert.equal(refused.response.allowed, false);
      assert.equal(refused.response.status?.code, 403);
      for (const image of bad) assert.ok(refused.response.status?.message.includes(image), image);
      assert.ok(
        fx.proxy.requests.every((r) => r.path.includes('/team/app/')),
        'only the valid image was looked up',
      );
    } finally {
      await denying.stop();
    }
  });

  test('resolution failure: denied naming every image and its cause; allowed with a warning per image under onResolveError: allow', async () => {
    const allowing = await startWebhook(fx, { mutate: { onResolveError: 'allow' } });
    try {
      const pod = objects.pod({
        containers: objects.containers('registry.kimg.test/team/missing:v1', 'registry.kimg.test/nobody/here:v9', APP),
      });
      const refused = await hook.mutate({ object: pod });
      assert.equal(refused.response.allowed, false);
      assert.equal(refused.response.status?.code, 403);
      const message = refused.response.status?.message ?? '';
      assert.ok(
        message.includes('registry.kimg.test/team/missing:v1') && message.includes('registry.kimg.test/nobody/here:v9'),
        message,
      );
      assert.match(message, /not found/);
      const allowed = await allowing.mutate({ object: pod });
      assert.equal(allowed.response.allowed, true);
      assert.deepEqual(patchMap(allowed.patch), { '/spec/containers/2/image': `${APP}@${fx.digest('app')}` });
      const warnings = allowed.response.warnings ?? [];
      for (const image of ['registry.kimg.test/team/missing:v1', 'registry.kimg.test/nobody/here:v9']) {
        assert.equal(warnings.filter((w) => w.includes(image) && w.includes('not found')).length, 1, image);
      }
    } finally {
      await allowing.stop();
    }
  });

  test('401 and 403 from the registry are reported as auth', async () => {
    fx.proxy.setRule((r) =>
      r.path.includes('/locked/')
        ? { kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="x"' } }
        : r.path.includes('/forbidden/')
          ? { kind: 'status', status: 403 }
          : undefined,
    );
    try {
      const result = await hook.mutate({
        object: objects.pod({
          containers: objects.containers('registry.kimg.test/locked/app:v1', 'registry.kimg.test/forbidden/app:v1'),
        }),
      });
      assert.equal(result.response.allowed, false);
      assert.match(result.response.status?.message ?? '', /registry\.kimg\.test\/locked\/app:v1: auth/);
      assert.match(result.response.status?.message ?? '', /registry\.kimg\.test\/forbidden\/app:v1: auth/);
    } finally {
      fx.proxy.setRule(undefined);
    }
  });

  test('index digest by default; a platform manifest digest on request; a single manifest pins itself; an absent platform fails', async () => {
    const arm = await startWebhook(fx, { mutate: { resolve: { platform: 'linux/arm64' } } });
    const armV8 = await startWebhook(fx, { mutate: { resolve: { platform: 'linux/arm64/v8' } } });
    const riscv = await startWebhook(fx, { mutate: { resolve: { platform: 'linux/riscv64' } } });
    try {
      const pod = objects.pod({
        containers: objects.containers('registry.kimg.test/team/multi:v1', APP, 'registry.kimg.test/team/dlist:v1'),
      });
      assert.deepEqual(patchMap((await hook.mutate({ object: pod })).patch), {
        '/spec/containers/0/image': `registry.kimg.test/team/multi:v1@${fx.digest('multi')}`,
        '/spec/containers/1/image': `${APP}@${fx.digest('app')}`,
        '/spec/containers/2/image': `registry.kimg.test/team/dlist:v1@${fx.digest('dockerList')}`,
      });
      const armPod = objects.pod({ containers: objects.containers('registry.kimg.test/team/multi:v1', APP) });
      const expected = {
        '/spec/containers/0/image': `registry.kimg.test/team/multi:v1@${fx.platformDigest('multi', 'linux/arm64/v8')}`,
        '/spec/containers/1/image': `${APP}@${fx.digest('app')}`,
      };
      assert.deepEqual(patchMap((await arm.mutate({ object: armPod })).patch), expected);
      assert.deepEqual(patchMap((await armV8.mutate({ object: armPod })).patch), expected);
      const missing = await riscv.mutate({
        object: objects.pod({ containers: objects.containers('registry.kimg.test/team/multi:v1') }),
      });
      assert.equal(missing.response.allowed, false);
      const message = missing.response.status?.message ?? '';
      assert.ok(message.includes('registry.kimg.test/team/multi:v1') && message.includes('linux/riscv64'), message);
    } finally {
      await Promise.all([arm.stop(), armV8.stop(), riscv.stop()]);
    }
  });

  test('existing digests: kept without a lookup; verified, warned or denied on request', async () => {
    const warn = await startWebhook(fx, { mutate: { existingDigest: 'verify-warn' } });
    const deny = await startWebhook(fx, { mutate: { existingDigest: 'verify-deny' } });
    try {
      const stale = `${APP}@${fx.digest('appV2')}`;
      const good = `${APP}@${fx.digest('app')}`;
      const child = `redis:7.2@${fx.platformDigest('redis', 'linux/arm64')}`;
      fx.proxy.reset();
      const kept = await hook.mutate({ object: objects.pod({ containers: objects.containers(stale) }) });
      assert.equal(kept.patch, undefined);
      assert.equal(kept.response.warnings, undefined);
      assert.equal(fx.proxy.requests.length, 0);

      const fine = await warn.mutate({ object: objects.pod({ containers: objects.containers(good, child) }) });
      assert.equal(fine.response.allowed, true);
      assert.equal(
        fine.response.warnings,
        undefined,
        'a digest equal to the tag, or to a child of its index, is silent',
      );
      const warned = await warn.mutate({ object: objects.pod({ containers: objects.containers(stale) }) });
      assert.equal(warned.response.allowed, true);
      assert.equal(warned.patch, undefined);
      assert.ok(
        warned.response.warnings?.some((w) => w.includes(stale) && w.includes(fx.digest('app'))),
        String(warned.response.warnings),
      );
      const denied = await deny.mutate({ object: objects.pod({ containers: objects.containers(stale) }) });
      assert.equal(denied.response.allowed, false);
      const message = denied.response.status?.message ?? '';
      assert.ok(
        message.includes(stale) && message.includes(fx.digest('app')) && message.includes('does not match'),
        message,
      );
    } finally {
      await warn.stop();
      await deny.stop();
    }
  });

  test('UPDATE resolves only changed slots; unchanged tag-only images stay with a not-pinned warning', async () => {
    const before = objects.deployment({
      initContainers: [{ name: 'migrate', image: 'quay.io/team/migrate' }],
      containers: [{ name: 'cache', image: 'redis:7.2' }],
    });
    const labelled = { ...before, metadata: { name: 'api', labels: { app: 'api', team: 'x' } } };
    fx.proxy.reset();
    const labelOnly = await hook.mutate({ operation: 'UPDATE', object: labelled, oldObject: before });
    assert.equal(labelOnly.response.allowed, true);
    assert.equal(labelOnly.patch, undefined);
    const warnings = labelOnly.response.warnings ?? [];
    assert.equal(warnings.length, 2);
    for (const image of ['quay.io/team/migrate', 'redis:7.2'])
      assert.ok(
        warnings.some((w) => w.includes(image) && w.includes('not pinned')),
        image,
      );
    assert.equal(fx.proxy.requests.length, 0, 'zero lookups');

    const changed = objects.deployment({
      initContainers: [{ name: 'migrate', image: 'quay.io/team/migrate' }],
      containers: [
        { name: 'cache', image: APP },
        { name: 'new', image: 'redis:7.2' },
      ],
    });
    const result = await hook.mutate({ operation: 'UPDATE', object: changed, oldObject: before });
    assert.deepEqual(patchMap(result.patch), {
      '/spec/template/spec/containers/0/image': `${APP}@${fx.digest('app')}`,
      '/spec/template/spec/containers/1/image': `redis:7.2@${fx.digest('redis')}`,
    });

    // A GitOps re-apply sends the tag without the digest: a change, resolved again.
    const pinnedBefore = objects.deployment({
      containers: [{ name: 'cache', image: `redis:7.2@${fx.digest('redis')}` }],
    });
    const reapplied = objects.deployment({ containers: [{ name: 'cache', image: 'redis:7.2' }] });
    assert.deepEqual(
      patchMap((await hook.mutate({ operation: 'UPDATE', object: reapplied, oldObject: pinnedBefore })).patch),
      {
        '/spec/template/spec/containers/0/image': `redis:7.2@${fx.digest('redis')}`,
      },
    );

    const all = await startWebhook(fx, { mutate: { onUpdate: 'all' } });
    try {
      const again = await all.mutate({ operation: 'UPDATE', object: labelled, oldObject: before });
      assert.equal(Object.keys(patchMap(again.patch)).length, 2);
    } finally {
      await all.stop();
    }
  });

  test('pods/ephemeralcontainers: only the new ephemeral containers are pinned', async () => {
    const running = objects.pod({
      containers: [{ name: 'main', image: 'redis:7.2' }],
      ephemeralContainers: [{ name: 'debug-1', image: 'registry.kimg.test/team/app:v2' }],
    });
    const withNew = objects.pod({
      containers: [{ name: 'main', image: 'redis:7.2' }],
      ephemeralContainers: [
        { name: 'debug-1', image: 'registry.kimg.test/team/app:v2' },
        { name: 'debug-2', image: APP },
      ],
    });
    const result = await hook.mutate({
      operation: 'UPDATE',
      subResource: 'ephemeralcontainers',
      object: withNew,
      oldObject: running,
    });
    assert.deepEqual(patchMap(result.patch), { '/spec/ephemeralContainers/1/image': `${APP}@${fx.digest('app')}` });
    assert.equal(result.response.warnings, undefined, 'the other slots are untouched and silent');
  });

  test('dryRun requests get the same patch', async () => {
    const pod = objects.pod({ containers: objects.containers(APP, 'redis:7.2') });
    const real = await hook.mutate({ object: pod });
    const dry = await hook.mutate({ object: pod, dryRun: true });
    assert.deepEqual(dry.patch, real.patch);
    assert.deepEqual(dry.response.warnings, real.response.warnings);
  });

  test('ReplicaSets owned by a Deployment are left to the Deployment, with a warning and no lookup', async () => {
    const rs = objects.workload(
      'apps/v1',
      'ReplicaSet',
      { containers: objects.containers('registry.kimg.test/team/app:v2') },
      'api-5d4f',
    );
    const owned = {
      ...rs,
      metadata: {
        name: 'api-5d4f',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: 'u1', controller: true }],
      },
    };
    fx.proxy.reset();
    const result = await hook.mutate({ object: owned });
    assert.equal(result.response.allowed, true);
    assert.equal(result.patch, undefined);
    assert.ok(
      result.response.warnings?.some((w) => w.includes('owned by Deployment api')),
      String(result.response.warnings),
    );
    assert.equal(fx.proxy.requests.length, 0);
    // Not the controller, or no owner at all: pinned.
    const notController = {
      ...rs,
      metadata: { name: 'x', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: 'u1' }] },
    };
    assert.ok((await hook.mutate({ object: notController })).patch);
    assert.ok((await hook.mutate({ object: rs })).patch);
    // Pods are pinned even when a ReplicaSet owns them (sidecars injected later).
    const pod = objects.pod({ containers: objects.containers(APP) }, 'api-5d4f-x', {
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-5d4f', uid: 'u2', controller: true }],
    });
    assert.ok((await hook.mutate({ object: pod })).patch);
  });

  test('request gates: DELETE, CONNECT, the own namespace, other subresources: allowed, no patch, no lookup', async () => {
    const pod = objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v2') });
    fx.proxy.reset();
    for (const spec of [
      { operation: 'DELETE' as const, oldObject: pod },
      { operation: 'CONNECT' as const, object: pod },
      { object: { ...pod, metadata: { name: 'p', namespace: 'team' } }, namespace: 'kimg-system' },
      { operation: 'UPDATE' as const, subResource: 'status', object: pod, oldObject: pod },
      { operation: 'UPDATE' as const, subResource: 'scale', object: pod, oldObject: pod },
    ]) {
      const result = await hook.mutate(spec);
      assert.equal(result.response.allowed, true, JSON.stringify(spec.operation));
      assert.equal(result.patch, undefined);
      assert.equal(result.response.warnings, undefined);
    }
    assert.equal(fx.proxy.requests.length, 0);
    // A pod created by a controller carries no namespace in its object: request.namespace decides.
    const own = await hook.mutate({
      object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v2') }, 'x'),
      namespace: 'kimg-system',
    });
    assert.equal(own.patch, undefined);
  });

  test('pinned images are left alone: a second admission of the patched object changes nothing', async () => {
    const first = await hook.mutate({ object: objects.pod({ containers: objects.containers(APP, 'redis:7.2') }) });
    fx.proxy.reset();
    const second = await hook.mutate({ object: first.patched });
    assert.equal(second.patch, undefined);
    assert.equal(fx.proxy.requests.length, 0);
  });
});
