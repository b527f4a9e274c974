// What a digest look-up costs the registry when the webhook's digest cache is off and every pod
// brings its own pull Secret: the registry's challenge (Basic from htpasswd, or Bearer from a
// token server) is learned once per host, and tokens are kept per scope per credential (as
// containerd's authorizer keeps them), so after the first look-up each one is ONE request to the
// registry, whichever pod's credential it carries. Counted by a fault proxy (forwarding only) in
// front of a real Distribution registry, the admission handler driven as the webhook server does.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAdmissionRuntime, parseAdmissionConfig, type AdmissionRuntime } from '../../src/admission/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
  type TokenServer,
} from '../harness/index.ts';
import { admissionRequest } from './apiserver.ts';
import { objects } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);
const HOST = 'private.kimg.test';
const users = {
  alice: { user: 'alice', password: 'alice-S3cret' },
  bob: { user: 'bob', password: 'bob-S3cret' },
};

function pullSecret(namespace: string, name: string, who: { user: string; password: string }): unknown {
  const auth = Buffer.from(`${who.user}:${who.password}`).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { namespace, name },
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [HOST]: { auth } } })).toString('base64') },
  };
}

describe('look-ups against a private registry, digest cache off', { skip }, () => {
  let temp: TempDir;
  let image: BuiltImage;
  let tokens: TokenServer;
  const registries: RunningRegistry[] = [];
  const proxies: FaultProxy[] = [];
  const runtimes: AdmissionRuntime[] = [];
  let objectsFile: string;

  before(async () => {
    temp = await makeTempDir('kimg-admission-requests-');
    image = await buildImage({ layers: [1000], seed: 'adm-requests' });
    tokens = await startTokenServer({
      users: { [users.alice.user]: users.alice.password, [users.bob.user]: users.bob.password },
      allowAnonymous: false,
    });
    objectsFile = join(temp.path, 'objects.yaml');
    const secrets = [pullSecret('team', 'regcred', users.alice), pullSecret('other', 'regcred', users.bob)];
    const accounts = ['team', 'other'].map((namespace) => ({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { namespace, name: 'default' },
    }));
    await writeFile(objectsFile, [...secrets, ...accounts].map((o) => JSON.stringify(o)).join('\n---\n'));
  });

  after(async () => {
    for (const runtime of runtimes) await runtime.close();
    await Promise.all(proxies.map((p) => p.stop()));
    await Promise.all(registries.map((r) => r.stop()));
    await tokens?.stop();
    await image?.remove();
    await temp?.remove();
  });

  /** A registry with `auth`, both users' images pushed, a counting proxy in front, a webhook runtime on it. */
  async function setUp(auth: 'htpasswd' | 'token') {
    const registry = await startRegistry(
      auth === 'htpasswd' ? { htpasswd: [users.alice, users.bob] } : { token: tokens },
    );
    registries.push(registry);
    await pushImage(image, registry, 'team/app:v1', { creds: users.alice });
    await pushImage(image, registry, 'team/tool:v1', { creds: users.alice });
    const proxy = await startFaultProxy({ upstream: registry.url });
    proxies.push(proxy);
    const config = parseAdmissionConfig({
      resolver: {
        registryHosts: { [HOST]: proxy.url },
        cacheTtlSeconds: 0,
        secretSource: { file: objectsFile },
        dockerConfig: join(temp.path, 'none.json'),
      },
    });
    const runtime = await createAdmissionRuntime(config, { env: {} });
    runtimes.push(runtime);
    /** One review of a pod in `namespace` (whose pull Secret is that namespace's user) running `repo`. */
    const review = async (namespace: string, repo: string) => {
      proxy.reset();
      const pod = objects.pod({
        imagePullSecrets: [{ name: 'regcred' }],
        containers: objects.containers(`${HOST}/${repo}:v1`),
      });
      const decision = await runtime.handler.mutate(admissionRequest({ object: pod, namespace }));
      assert.equal(decision.response.allowed, true, JSON.stringify(decision.response.status));
      assert.ok(decision.response.patch !== undefined, 'the image is pinned');
      return proxy.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    };
    return { review };
  }

  test('htpasswd (Basic): the challenge is learned once; each look-up after the first is one HEAD', async () => {
    const { review } = await setUp('htpasswd');
    assert.deepEqual(await review('team', 'team/app'), [
      'HEAD /v2/team/app/manifests/v1 401',
      'HEAD /v2/team/app/manifests/v1 200',
    ]);
    for (const [namespace, repo] of [
      ['other', 'team/app'],
      ['team', 'team/app'],
      ['other', 'team/tool'],
      ['team', 'team/tool'],
    ] as const) {
      assert.deepEqual(await review(namespace, repo), [`HEAD /v2/${repo}/manifests/v1 200`], `${namespace} ${repo}`);
    }
  });

  test('token auth (Bearer): one HEAD per look-up; one token per scope per credential', async () => {
    const { review } = await setUp('token');
    const tokensBefore = tokens.requests.length;
    assert.deepEqual(await review('team', 'team/app'), [
      'HEAD /v2/team/app/manifests/v1 401',
      'HEAD /v2/team/app/manifests/v1 200',
    ]);
    for (const [namespace, repo] of [
      ['other', 'team/app'],
      ['team', 'team/app'],
      ['other', 'team/app'],
      ['team', 'team/tool'],
      ['team', 'team/tool'],
    ] as const) {
      assert.deepEqual(await review(namespace, repo), [`HEAD /v2/${repo}/manifests/v1 200`], `${namespace} ${repo}`);
    }
    // alice and bob for team/app, alice for team/tool: each (scope, credential) asked for once.
    const asked = tokens.requests.slice(tokensBefore).map((r) => `${r.user ?? 'anonymous'} ${r.status}`);
    assert.deepEqual(asked, ['alice 200', 'bob 200', 'alice 200']);
  });
});
