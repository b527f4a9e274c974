// The validating webhook (docs/semantics.md admission §4.15) over HTTPS: worked example B, enforcement deny and warn,
// every slot of every covered kind, controller-owned objects and the ephemeralcontainers
// subresource evaluated too, the request gates, and never a registry request or a patch.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireTools } from '../harness/index.ts';
import { objects, startRegistryFixture, startWebhook, type RegistryFixture, type RunningWebhook } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);
const D3 = `sha256:${'3'.repeat(64)}`;
const POLICY = { disallowedTags: ['latest'], requireDigest: true, allowedRepositories: ['quay.io/team/*'] };

describe('validating webhook', { skip }, () => {
  let fx: RegistryFixture;
  let deny: RunningWebhook;
  let warn: RunningWebhook;

  before(async () => {
    fx = await startRegistryFixture(['app']);
    deny = await startWebhook(fx, { validate: POLICY });
    warn = await startWebhook(fx, { validate: { ...POLICY, enforcement: 'warn' } });
  });

  after(async () => {
    await deny?.stop();
    await warn?.stop();
    await fx?.stop();
  });

  const job = () =>
    objects.workload('batch/v1', 'Job', {
      containers: [
        { name: 'm', image: 'quay.io/team/migrate' },
        { name: 't', image: `quay.io/teamx/tool:1@${D3}` },
      ],
    });

  const EXPECTED = [
    {
      path: 'spec.template.spec.containers[0].image',
      rule: 'implicit-latest',
      image: 'quay.io/team/migrate',
      container: 'm',
    },
    {
      path: 'spec.template.spec.containers[0].image',
      rule: 'missing-digest',
      image: 'quay.io/team/migrate',
      container: 'm',
    },
    {
      path: 'spec.template.spec.containers[1].image',
      rule: 'registry-not-allowed',
      image: `quay.io/teamx/tool:1@${D3}`,
      container: 't',
    },
  ];

  test('worked example B: denied, 403, violations in the audit annotation as one compact JSON string', async () => {
    fx.proxy.reset();
    const result = await deny.validate({ object: job() });
    assert.equal(result.response.allowed, false);
    assert.equal(result.response.status?.code, 403);
    assert.equal(result.response.auditAnnotations?.['violations'], JSON.stringify(EXPECTED));
    const message = result.response.status?.message ?? '';
    for (const v of EXPECTED) assert.ok(message.includes(`${v.path}: ${v.rule}: ${v.image}`), message);
    assert.equal(fx.proxy.requests.length, 0, 'never contacts a registry');
  });

  test('enforcement warn: allowed, the same annotation, one warning per violation', async () => {
    const result = await warn.validate({ object: job() });
    assert.equal(result.response.allowed, true);
    assert.equal(result.response.auditAnnotations?.['violations'], JSON.stringify(EXPECTED));
    assert.deepEqual(
      result.response.warnings,
      EXPECTED.map((v) => `${v.path}: ${v.rule}: ${v.image}`),
    );
  });

  test('no violation: allowed, no annotation', async () => {
    const result = await deny.validate({
      object: objects.pod({ containers: [{ name: 'a', image: `quay.io/team/app:1@${D3}` }] }),
    });
    assert.equal(result.response.allowed, true);
    assert.equal(result.response.auditAnnotations, undefined);
    assert.equal(result.response.warnings, undefined);
  });

  test('every slot, controller-owned objects and the ephemeralcontainers subresource too', async () => {
    const spec = {
      initContainers: [{ name: 'i', image: 'quay.io/team/a:latest' }],
      containers: [{ name: 'c', image: `quay.io/team/b@${D3}` }],
      ephemeralContainers: [{ name: 'e', image: 'docker.io/library/busybox:1' }],
      volumes: [{ name: 'v', image: { reference: 'quay.io/team/data' } }],
    };
    const rs = objects.workload('apps/v1', 'ReplicaSet', spec, 'api-1');
    const owned = {
      ...rs,
      metadata: {
        name: 'api-1',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', controller: true }],
      },
    };
    const result = await warn.validate({ object: owned });
    const records = JSON.parse(result.response.auditAnnotations?.['violations'] ?? '[]') as {
      path: string;
      rule: string;
      container: string;
    }[];
    assert.deepEqual(
      records.map((r) => `${r.path} ${r.rule} ${r.container}`),
      [
        'spec.template.spec.initContainers[0].image disallowed-tag i',
        'spec.template.spec.initContainers[0].image missing-digest i',
        'spec.template.spec.ephemeralContainers[0].image missing-digest e',
        'spec.template.spec.ephemeralContainers[0].image registry-not-allowed e',
        'spec.template.spec.volumes[0].image.reference implicit-latest v',
        'spec.template.spec.volumes[0].image.reference missing-digest v',
      ],
    );
    const pod = objects.pod(spec);
    const sub = await deny.validate({
      operation: 'UPDATE',
      subResource: 'ephemeralcontainers',
      object: pod,
      oldObject: pod,
    });
    assert.equal(sub.response.allowed, false);
  });

  test('request gates apply: DELETE, the own namespace, other subresources, other kinds', async () => {
    const bad = objects.pod({ containers: [{ name: 'a', image: 'nginx' }] });
    for (const spec of [
      { operation: 'DELETE' as const, oldObject: bad },
      { object: bad, namespace: 'kimg-system' },
      { operation: 'UPDATE' as const, subResource: 'status', object: bad, oldObject: bad },
      { object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { image: 'nginx' } } },
    ]) {
      const result = await deny.validate(spec);
      assert.equal(result.response.allowed, true);
      assert.equal(result.response.auditAnnotations, undefined);
    }
  });

  test('a neutral policy allows everything', async () => {
    const neutral = await startWebhook(fx);
    try {
      const result = await neutral.validate({
        object: objects.pod({
          containers: [
            { name: 'a', image: 'nginx' },
            { name: 'b', image: 'Bad Image' },
          ],
        }),
      });
      assert.equal(result.response.allowed, true);
    } finally {
      await neutral.stop();
    }
  });
});
