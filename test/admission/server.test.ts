// The webhook server's surface (docs/semantics.md admission §4.10, §4.16): bad requests get a 4xx and a reason, odd
// reviews a well-formed answer, health, readiness and metrics endpoints, the answer inside the
// apiserver's deadline when the registry hangs, and the serving certificate reloaded from disk.
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { issueCertificate, requireTools } from '../harness/index.ts';
import { SERVICE_NAME, admissionRequest, callWebhook, patchMap, post } from './apiserver.ts';
import { objects, startRegistryFixture, startWebhook, type RegistryFixture, type RunningWebhook } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

async function get(hook: RunningWebhook, path: string): Promise<{ status: number; body: string }> {
  const { httpRequest } = await import('../harness/index.ts');
  const res = await httpRequest(`https://127.0.0.1:${hook.port}${path}`, { ca: hook.caPem, servername: SERVICE_NAME });
  return { status: res.status, body: res.body.toString('utf8') };
}

function servedSerial(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: SERVICE_NAME, ca: caPem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('webhook server', { skip }, () => {
  let fx: RegistryFixture;
  let hook: RunningWebhook;

  before(async () => {
    fx = await startRegistryFixture(['app', 'redis']);
    hook = await startWebhook(fx, { validate: { disallowedTags: ['latest'] } });
  });

  after(async () => {
    await hook?.stop();
    await fx?.stop();
  });

  test('bad requests: HTTP 400 with a reason, never a crash', async () => {
    const client = { port: hook.port, caPem: hook.caPem };
    const cases: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[]', /not a JSON object/],
      [
        '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}',
        /admission\.k8s\.io\/v1/,
      ],
      ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', /no request/],
      ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}', /no uid/],
      ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}', /no uid/],
    ];
    for (const path of ['/mutate', '/validate']) {
      for (const [body, reason] of cases) {
        const res = await post(client, path, body);
        assert.equal(res.status, 400, body);
        assert.match(res.body, reason);
      }
    }
    assert.equal((await get(hook, '/mutate')).status, 405);
    assert.equal((await get(hook, '/nope')).status, 404);
    // The server still answers properly afterwards.
    const ok = await hook.mutate({ object: objects.pod({ containers: objects.containers('redis:7.2') }) });
    assert.ok(ok.patch);
  });

  test('odd objects get an allowed, well-formed answer without a patch', async () => {
    const client = { port: hook.port, caPem: hook.caPem };
    const odd: unknown[] = [
      42,
      'pod',
      null,
      [],
      { apiVersion: 'v1', kind: 'Pod' },
      { apiVersion: 'v1', kind: 'Pod', spec: { containers: 'nginx' } },
      { apiVersion: 'v1', kind: 'Pod', spec: { containers: [null, 3, { image: 5 }] } },
    ];
    for (const object of odd) {
      for (const path of ['/mutate', '/validate'] as const) {
        const request = { ...admissionRequest({ object: { apiVersion: 'v1', kind: 'Pod' } }), object };
        const result = await callWebhook(client, path, request);
        assert.equal(result.response.allowed, true, JSON.stringify(object));
        assert.equal(result.patch, undefined);
      }
    }
  });

  test('random reviews: always a well-formed answer (property test over HTTPS)', async () => {
    const client = { port: hook.port, caPem: hook.caPem };
    const image = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'redis:7.2',
        'registry.kimg.test/team/app:v1',
        'x@sha256:abc',
        'Nginx',
        ' ',
        '',
        'nginx:latest',
        `redis@sha256:${'a'.repeat(64)}`,
      ),
      fc.stringMatching(/^[a-z0-9./:@-]{1,40}$/).map((s) => `registry.kimg.test/${s}`),
    );
    const container = fc.record(
      { name: fc.option(fc.string(), { nil: undefined }), image: fc.oneof(image, fc.anything()) },
      { requiredKeys: [] },
    );
    const podSpec = fc.record(
      {
        containers: fc.oneof(fc.array(container, { maxLength: 4 }), fc.anything()),
        initContainers: fc.array(container, { maxLength: 2 }),
        volumes: fc.array(
          fc.record({ name: fc.string(), image: fc.record({ reference: fc.oneof(image, fc.anything()) }) }),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    );
    const kind = fc.constantFrom(
      ['v1', 'Pod'],
      ['apps/v1', 'Deployment'],
      ['batch/v1', 'CronJob'],
      ['v1', 'PodTemplate'],
      ['v1', 'ConfigMap'],
      ['example.com/v1', 'Thing'],
    );
    await fc.assert(
      fc.asyncProperty(
        kind,
        podSpec,
        fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'PATCH'),
        fc.option(fc.constantFrom('status', 'ephemeralcontainers', ''), { nil: undefined }),
        async ([apiVersion, k], spec, operation, subResource) => {
          const object = objects.workload(apiVersion, k, spec as Record<string, unknown>);
          const request = {
            ...admissionRequest({ object, oldObject: object, ...(subResource !== undefined && { subResource }) }),
            operation,
          };
          for (const path of ['/mutate', '/validate'] as const) await callWebhook(client, path, request);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('/healthz, /readyz and /metrics', async () => {
    assert.deepEqual(await get(hook, '/healthz'), { status: 200, body: 'ok\n' });
    assert.equal((await get(hook, '/readyz')).status, 200);
    const violations = (text: string) =>
      Number(
        /kimg_admission_decisions_total\{webhook="validate",reason="PolicyViolation"\} (\d+)/.exec(text)?.[1] ?? 0,
      );
    const before = violations((await get(hook, '/metrics')).body);
    await hook.mutate({ object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v1') }) });
    await hook.mutate({ object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v1') }) });
    await hook.validate({ object: objects.pod({ containers: objects.containers('nginx') }) });
    const metrics = (await get(hook, '/metrics')).body;
    assert.match(metrics, /kimg_admission_decisions_total\{webhook="mutate",reason="Patched"\} \d+/);
    assert.equal(violations(metrics), before + 1);
    assert.match(metrics, /kimg_registry_lookup_duration_seconds_bucket\{result="ok",le="\+Inf"\} \d+/);
    assert.match(metrics, /kimg_digest_cache_requests_total\{result="hit"\} [1-9]/);
    assert.match(metrics, /kimg_digest_cache_hit_ratio 0\.\d+/);
    assert.match(metrics, /kimg_admission_bad_requests_total\{code="400"\} \d+/);
    assert.match(metrics, /kimg_admission_request_duration_seconds_count\{webhook="mutate"\} \d+/);
  });

  test('a hanging registry: the answer comes within ?timeout=2s, naming the image and timeout', async () => {
    fx.proxy.setRule((r) => (r.path.includes('/hang/') ? { kind: 'hang' } : undefined));
    const allowing = await startWebhook(fx, { mutate: { onResolveError: 'allow' } });
    try {
      // The harness aborts the call at the 2 s deadline, as the apiserver would.
      const denied = await hook.mutate(
        { object: objects.pod({ containers: objects.containers('registry.kimg.test/hang/app:v1', 'redis:7.2') }) },
        2,
      );
      assert.equal(denied.response.allowed, false);
      assert.match(denied.response.status?.message ?? '', /registry\.kimg\.test\/hang\/app:v1: timeout/);
      const allowed = await allowing.mutate(
        { object: objects.pod({ containers: objects.containers('registry.kimg.test/hang/app:v1', 'redis:7.2') }) },
        2,
      );
      assert.equal(allowed.response.allowed, true);
      assert.deepEqual(patchMap(allowed.patch), { '/spec/containers/1/image': `redis:7.2@${fx.digest('redis')}` });
      assert.ok(
        allowed.response.warnings?.some((w) => w.includes('registry.kimg.test/hang/app:v1') && w.includes('timeout')),
      );
    } finally {
      fx.proxy.setRule(undefined);
      fx.proxy.reset();
      await allowing.stop();
    }
  });

  test('the serving certificate is reloaded when its files change; a broken pair keeps the old one', async () => {
    const dir = join(fx.temp.path, 'reload');
    const first = await issueCertificate(fx.ca, { name: 'tls', sans: [SERVICE_NAME], dir });
    const { WebhookServer } = await import('../../src/admission/index.ts');
    const server = await WebhookServer.start({
      handler: hook.runtime.handler,
      certFile: first.certFile,
      keyFile: first.keyFile,
      host: '127.0.0.1',
      port: 0,
      reloadIntervalMs: 50,
    });
    try {
      const before = await servedSerial(server.port, fx.ca.certPem);
      const second = await issueCertificate(fx.ca, { name: 'next', sans: [SERVICE_NAME], dir });
      await copyFile(second.keyFile, first.keyFile);
      await copyFile(second.certFile, first.certFile);
      let after = before;
      for (let i = 0; i < 100 && after === before; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = await servedSerial(server.port, fx.ca.certPem);
      }
      assert.notEqual(after, before, 'the new certificate is served');
      // A certificate without its key is refused; the current pair stays.
      const third = await issueCertificate(fx.ca, { name: 'third', sans: [SERVICE_NAME], dir });
      await copyFile(third.certFile, first.certFile);
      assert.equal(await server.reloadCertificates(), false);
      assert.equal(await servedSerial(server.port, fx.ca.certPem), after);
      const result = await callWebhook(
        { port: server.port, caPem: fx.ca.certPem },
        '/validate',
        admissionRequest({ object: objects.pod({ containers: objects.containers('redis:7.2') }) }),
      );
      assert.equal(result.response.allowed, true);
    } finally {
      await server.close();
    }
  });

  test('HTTPS only: a plain HTTP request gets no answer', async () => {
    const { httpRequest } = await import('../harness/index.ts');
    await assert.rejects(httpRequest(`http://127.0.0.1:${hook.port}/healthz`, { timeoutMs: 2000 }));
  });
});
