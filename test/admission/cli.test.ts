// `kimg webhook serve` and `kimg webhook manifests` as a user runs them (child processes): the
// server answering the apiserver-like harness and stopping on SIGTERM, configuration errors as
// exit 2, and generated manifests whose certificate verifies against their caBundle.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { AdmissionHandler, WebhookServer, parseAdmissionConfig } from '../../src/admission/index.ts';
import { requireTools } from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import { admissionRequest, callWebhook, patchMap } from './apiserver.ts';
import { objects, startRegistryFixture, type RegistryFixture } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);
const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

type Obj = Record<string, unknown> & { kind: string; metadata: Record<string, unknown> };

function documents(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

describe('kimg webhook (CLI)', { skip }, () => {
  let fx: RegistryFixture;

  before(async () => {
    fx = await startRegistryFixture(['app']);
  });

  after(async () => {
    await fx?.stop();
  });

  test('serve: answers AdmissionReviews over HTTPS and stops on SIGTERM', async () => {
    const config = join(fx.temp.path, 'serve.yaml');
    await writeFile(
      config,
      `resolver:\n  registryHosts: ${JSON.stringify(fx.registryHosts)}\n  secretSource: none\n  dockerConfig: ${JSON.stringify(join(fx.temp.path, 'none.json'))}\nvalidate:\n  disallowedTags: [latest]\n`,
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        BIN,
        'webhook',
        'serve',
        '--config',
        config,
        '--tls-cert-file',
        fx.certFile,
        '--tls-key-file',
        fx.keyFile,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, KUBERNETES_SERVICE_HOST: '' },
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let port: number | undefined;
      for (let i = 0; i < 300 && port === undefined; i++) {
        const m = /serving https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m?.[1] !== undefined) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(port, `the server did not start: ${stderr}`);
      const client = { port, caPem: fx.ca.certPem };
      const mutateRequest = admissionRequest({
        object: objects.pod({ containers: objects.containers('registry.kimg.test/team/app:v1') }),
      });
      const mutated = await callWebhook(client, '/mutate', mutateRequest);
      assert.deepEqual(patchMap(mutated.patch), {
        '/spec/containers/0/image': `registry.kimg.test/team/app:v1@${fx.digest('app')}`,
      });
      const validated = await callWebhook(
        client,
        '/validate',
        admissionRequest({ object: objects.pod({ containers: objects.containers('nginx') }) }),
      );
      assert.equal(validated.response.allowed, false);
      // One line per review: who asked, the answer, the registry look-ups it took, the time.
      for (let i = 0; i < 100 && !/review webhook=validate/.test(stderr); i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.match(
        stderr,
        new RegExp(
          `^kimg webhook: review webhook=mutate uid=${mutateRequest.uid} kind=v1/Pod namespace=team name=\\S* op=CREATE allowed=true reason=Patched lookups=1 ms=\\d+$`,
          'm',
        ),
      );
      assert.match(
        stderr,
        /^kimg webhook: review webhook=validate uid=\S+ kind=v1\/Pod .* allowed=false reason=\S+ lookups=0 ms=\d+$/m,
      );
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });

  test('serve: configuration and certificate problems exit 2 naming them', async () => {
    const bad = join(fx.temp.path, 'bad.yaml');
    await writeFile(bad, 'mutate:\n  outputFormat: short\n');
    const r1 = await runCli([
      'webhook',
      'serve',
      '--config',
      bad,
      '--tls-cert-file',
      fx.certFile,
      '--tls-key-file',
      fx.keyFile,
      '--port',
      '0',
    ]);
    assert.equal(r1.status, 2);
    assert.match(r1.stderr, /mutate\.outputFormat: unknown value "short"/);
    const r2 = await runCli(
      [
        'webhook',
        'serve',
        '--tls-cert-file',
        join(fx.temp.path, 'missing.crt'),
        '--tls-key-file',
        fx.keyFile,
        '--port',
        '0',
      ],
      { env: { KUBERNETES_SERVICE_HOST: '' } },
    );
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /missing\.crt/);
    const informer = join(fx.temp.path, 'informer.yaml');
    await writeFile(informer, 'resolver:\n  secretSource: informer\n');
    const r3 = await runCli(
      [
        'webhook',
        'serve',
        '--config',
        informer,
        '--tls-cert-file',
        fx.certFile,
        '--tls-key-file',
        fx.keyFile,
        '--port',
        '0',
      ],
      { env: { KUBERNETES_SERVICE_HOST: '' } },
    );
    assert.equal(r3.status, 2);
    assert.match(r3.stderr, /resolver\.secretSource: informer: not in a cluster/);
  });

  test('manifests: every object, the webhook defaults, and a certificate valid for the Service under its caBundle', async () => {
    const certDir = join(fx.temp.path, 'manifest-certs');
    const result = await runCli([
      'webhook',
      'manifests',
      '--image',
      `registry.example.com/kimg@sha256:${'e'.repeat(64)}`,
      '--cert-dir',
      certDir,
    ]);
    assert.equal(result.status, 0, result.stderr);
    const docs = documents(result.stdout);
    assert.deepEqual(
      docs.map((d) => d.kind),
      [
        'Namespace',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Secret',
        'ConfigMap',
        'Deployment',
        'PodDisruptionBudget',
        'Service',
        'NetworkPolicy',
        'MutatingWebhookConfiguration',
        'ValidatingWebhookConfiguration',
      ],
    );
    const byKind = (kind: string): unknown => docs.find((d) => d.kind === kind);
    const deployment = byKind('Deployment') as {
      spec: {
        replicas: number;
        template: { spec: { containers: { readinessProbe: unknown; livenessProbe: unknown; args: string[] }[] } };
      };
    };
    assert.equal(deployment.spec.replicas, 2);
    const container = deployment.spec.template.spec.containers[0];
    assert.ok(container?.readinessProbe && container.livenessProbe);
    assert.deepEqual(container.args.slice(0, 2), ['webhook', 'serve']);
    assert.deepEqual((byKind('PodDisruptionBudget') as { spec: { minAvailable: number } }).spec.minAvailable, 1);

    const mutating = (byKind('MutatingWebhookConfiguration') as { webhooks: Record<string, unknown>[] })
      .webhooks[0] as Record<string, unknown>;
    const validating = (byKind('ValidatingWebhookConfiguration') as { webhooks: Record<string, unknown>[] })
      .webhooks[0] as Record<string, unknown>;
    for (const hook of [mutating, validating]) {
      assert.equal(hook['sideEffects'], 'None');
      assert.deepEqual(hook['admissionReviewVersions'], ['v1']);
      assert.equal(hook['timeoutSeconds'], 10);
      assert.equal(hook['failurePolicy'], 'Fail');
      const rules = hook['rules'] as { operations: string[]; resources: string[] }[];
      assert.ok(rules.some((r) => r.resources.includes('pods/ephemeralcontainers') && r.operations.includes('UPDATE')));
      for (const resource of [
        'pods',
        'podtemplates',
        'replicationcontrollers',
        'deployments',
        'replicasets',
        'statefulsets',
        'daemonsets',
        'jobs',
        'cronjobs',
      ]) {
        assert.ok(
          rules.some((r) => r.resources.includes(resource)),
          resource,
        );
      }
      assert.deepEqual(hook['namespaceSelector'], {
        matchExpressions: [
          { key: 'kimg.dev/digest-pinning', operator: 'In', values: ['enabled'] },
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kimg-system'] },
        ],
      });
    }
    assert.equal(mutating['reinvocationPolicy'], 'IfNeeded');
    assert.equal((mutating['clientConfig'] as { service: { path: string } }).service.path, '/mutate');
    assert.equal((validating['clientConfig'] as { service: { path: string } }).service.path, '/validate');

    // The Secret's certificate is served by the webhook and verifies as <svc>.<ns>.svc under the caBundle.
    const secret = byKind('Secret') as { stringData: Record<string, string> };
    const caBundle = Buffer.from((mutating['clientConfig'] as { caBundle: string }).caBundle, 'base64').toString(
      'utf8',
    );
    await writeFile(join(fx.temp.path, 'm.crt'), secret.stringData['tls.crt'] ?? '');
    await writeFile(join(fx.temp.path, 'm.key'), secret.stringData['tls.key'] ?? '', { mode: 0o600 });
    const server = await WebhookServer.start({
      handler: new AdmissionHandler(),
      certFile: join(fx.temp.path, 'm.crt'),
      keyFile: join(fx.temp.path, 'm.key'),
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const answer = await callWebhook(
        { port: server.port, caPem: caBundle, servername: 'kimg-webhook.kimg-system.svc' },
        '/validate',
        admissionRequest({ object: objects.pod({ containers: objects.containers('nginx') }) }),
      );
      assert.equal(answer.response.allowed, true);
    } finally {
      await server.close();
    }

    // The mounted configuration parses and names the own namespace.
    const configMap = byKind('ConfigMap') as { data: Record<string, string> };
    assert.match(configMap.data['config.yaml'] ?? '', /ownNamespace: kimg-system/);
    const mounted = parseAdmissionConfig(parseAllDocuments(configMap.data['config.yaml'] ?? '')[0]?.toJS(), {
      env: {},
    });
    assert.equal(mounted.resolver.secretSource, 'informer');

    // --cert-dir: the same CA on the next run.
    const again = await runCli(['webhook', 'manifests', '--image', 'x', '--cert-dir', certDir]);
    const againHook = (
      documents(again.stdout).find((d) => d.kind === 'MutatingWebhookConfiguration') as unknown as {
        webhooks: { clientConfig: { caBundle: string } }[];
      }
    ).webhooks[0];
    assert.equal(againHook?.clientConfig.caBundle, (mutating['clientConfig'] as { caBundle: string }).caBundle);
  });

  test('manifests: options, informer RBAC, custom resources, matchConditions; bad values exit 2', async () => {
    const config = join(fx.temp.path, 'm.yaml');
    await writeFile(config, 'mutate:\n  extraPodSpecPaths:\n    argoproj.io/Rollout: [spec.template.spec]\n');
    const result = await runCli([
      'webhook',
      'manifests',
      '--image',
      'x',
      '--config',
      config,
      '--namespace',
      'pinning',
      '--timeout-seconds',
      '5',
      '--failure-policy',
      'Ignore',
      '--match-conditions',
      '--no-validating',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const docs = documents(result.stdout);
    assert.ok(
      docs.some((d) => d.kind === 'ClusterRole'),
      'the informer needs to list Secrets and ServiceAccounts',
    );
    assert.ok(!docs.some((d) => d.kind === 'ValidatingWebhookConfiguration'));
    const hook = (
      docs.find((d) => d.kind === 'MutatingWebhookConfiguration') as unknown as { webhooks: Record<string, unknown>[] }
    ).webhooks[0] as Record<string, unknown>;
    assert.equal(hook['timeoutSeconds'], 5);
    assert.equal(hook['failurePolicy'], 'Ignore');
    assert.ok(
      (hook['rules'] as { apiGroups: string[]; resources: string[] }[]).some(
        (r) => r.apiGroups[0] === 'argoproj.io' && r.resources.includes('rollouts'),
      ),
    );
    const conditions = hook['matchConditions'] as { name: string; expression: string }[];
    assert.equal(conditions.length, 1);
    assert.match(
      conditions[0]?.expression ?? '',
      /object\.spec\.template\.spec\.containers\.all\(x, !has\(x\.image\) \|\| x\.image\.contains\('@'\)\)/,
    );
    assert.match(
      conditions[0]?.expression ?? '',
      /request\.kind\.group == 'argoproj\.io' && request\.kind\.kind == 'Rollout'/,
    );
    assert.deepEqual(
      (hook['namespaceSelector'] as { matchExpressions: { values: string[] }[] }).matchExpressions[1]?.values,
      ['kube-system', 'pinning'],
    );

    for (const args of [
      ['--timeout-seconds', '31'],
      ['--failure-policy', 'Sometimes'],
      ['--replicas', '0'],
    ]) {
      const r = await runCli(['webhook', 'manifests', '--image', 'x', ...args]);
      assert.equal(r.status, 2, args.join(' '));
    }
    assert.equal((await runCli(['webhook', 'manifests'])).status, 2, '--image is required');
  });
});
