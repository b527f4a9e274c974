// Pull credentials for lookups (docs/semantics.md admission §4.8) against a real TLS registry with htpasswd auth, reached
// as the logical registry `private.kimg.test` through `registryHosts` with a custom CA: the pod's
// imagePullSecrets, then its service account's, then the Docker config; Secrets from a file
// source; the digest cache keyed per credential.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ImagePolicy,
  WebhookServer,
  createAdmissionRuntime,
  parseAdmissionConfig,
  type AdmissionRuntime,
} from '../../src/admission/index.ts';
import {
  buildImage,
  createCertificateAuthority,
  issueCertificate,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { SERVICE_NAME, admissionRequest, callWebhook, patchMap, type CallResult } from './apiserver.ts';
import { objects } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl', 'htpasswd']);
const USER = { user: 'alice', password: 's3cret-admission' };
const IMAGE = 'private.kimg.test/team/app:v1';

function dockerConfigJson(host: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
}

function pullSecret(namespace: string, name: string, user: string, password: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { namespace, name },
    data: {
      '.dockerconfigjson': Buffer.from(dockerConfigJson('private.kimg.test', user, password)).toString('base64'),
    },
  };
}

describe('pull credentials for lookups', { skip }, () => {
  let registry: RunningRegistry;
  let image: BuiltImage;
  let temp: TempDir;
  let certFile: string;
  let keyFile: string;
  let caPem: string;
  const running: { server: WebhookServer; runtime: AdmissionRuntime }[] = [];

  async function webhook(
    resolver: Record<string, unknown>,
  ): Promise<(spec: Parameters<typeof admissionRequest>[0]) => Promise<CallResult>> {
    const config = parseAdmissionConfig({
      resolver: {
        registryHosts: { 'private.kimg.test': registry.url },
        caFile: registry.caFile,
        dockerConfig: join(temp.path, 'none.json'),
        ...resolver,
      },
    });
    const runtime = await createAdmissionRuntime(config, { env: {} });
    const server = await WebhookServer.start({
      handler: runtime.handler,
      certFile,
      keyFile,
      host: '127.0.0.1',
      port: 0,
    });
    running.push({ server, runtime });
    return (spec) => callWebhook({ port: server.port, caPem }, '/mutate', admissionRequest(spec));
  }

  before(async () => {
    temp = await makeTempDir('kimg-admission-creds-');
    registry = await startRegistry({ tls: true, htpasswd: [USER] });
    image = await buildImage({ layers: [1000], seed: 'adm-private' });
    await pushImage(image, registry, 'team/app:v1', { creds: USER });
    const ca = await createCertificateAuthority(join(temp.path, 'tls'));
    const leaf = await issueCertificate(ca, { name: 'tls', sans: [SERVICE_NAME] });
    ({ certFile, keyFile } = leaf);
    caPem = ca.certPem;
    const objectsFile = join(temp.path, 'objects.yaml');
    await writeFile(
      objectsFile,
      [
        pullSecret('team', 'regcred', USER.user, USER.password),
        pullSecret('team', 'wrong', USER.user, 'not-the-password'),
        pullSecret('other', 'regcred-elsewhere', USER.user, USER.password),
        {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: { namespace: 'team', name: 'opaque' },
          stringData: { x: 'y' },
        },
        {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { namespace: 'team', name: 'builder' },
          imagePullSecrets: [{ name: 'regcred' }],
        },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace: 'team', name: 'default' } },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n---\n'),
    );
    await writeFile(
      join(temp.path, 'docker-config.json'),
      dockerConfigJson('private.kimg.test', USER.user, USER.password),
    );
  });

  after(async () => {
    for (const { server, runtime } of running) {
      await server.close();
      await runtime.close();
    }
    await registry?.stop();
    await image?.remove();
    await temp?.remove();
  });

  const pinned = () => ({ '/spec/containers/0/image': `${IMAGE}@${image.digest}` });

  test("the pod's imagePullSecrets, then its service account's; a missing or wrong Secret is skipped", async () => {
    const mutate = await webhook({ secretSource: { file: join(temp.path, 'objects.yaml') } });
    const pod = (spec: Record<string, unknown>) => objects.pod({ containers: objects.containers(IMAGE), ...spec });

    const anonymous = await mutate({ object: pod({}) });
    assert.equal(anonymous.response.allowed, false);
    assert.match(anonymous.response.status?.message ?? '', /private\.kimg\.test\/team\/app:v1: auth/);

    assert.deepEqual(
      patchMap(
        (
          await mutate({
            object: pod({ imagePullSecrets: [{ name: 'missing' }, { name: 'opaque' }, { name: 'regcred' }] }),
          })
        ).patch,
      ),
      pinned(),
    );
    assert.deepEqual(patchMap((await mutate({ object: pod({ serviceAccountName: 'builder' }) })).patch), pinned());
    // A wrong credential first: the next candidate (the service account's) is tried.
    assert.deepEqual(
      patchMap(
        (await mutate({ object: pod({ imagePullSecrets: [{ name: 'wrong' }], serviceAccountName: 'builder' }) })).patch,
      ),
      pinned(),
    );
    // Secrets of another namespace are not used.
    const elsewhere = await mutate({ object: pod({ imagePullSecrets: [{ name: 'regcred-elsewhere' }] }) });
    assert.equal(elsewhere.response.allowed, false);
    // The digest cache is keyed per credential: a pod without credentials is not served what another pod resolved.
    const stillAnonymous = await mutate({ object: pod({}) });
    assert.equal(stillAnonymous.response.allowed, false);
    // A Deployment's template carries the secrets.
    const deployment = objects.deployment({
      imagePullSecrets: [{ name: 'regcred' }],
      containers: objects.containers(IMAGE),
    });
    assert.deepEqual(patchMap((await mutate({ object: deployment, namespace: 'team' })).patch), {
      '/spec/template/spec/containers/0/image': `${IMAGE}@${image.digest}`,
    });
  });

  test('the Docker config is the last source', async () => {
    const mutate = await webhook({ dockerConfig: join(temp.path, 'docker-config.json') });
    assert.deepEqual(
      patchMap((await mutate({ object: objects.pod({ containers: objects.containers(IMAGE) }) })).patch),
      pinned(),
    );
  });

  test('the validating webhook needs no credentials', () => {
    assert.deepEqual(
      new ImagePolicy({ requireDigest: true }).validate(
        objects.pod({ containers: objects.containers(`${IMAGE}@${image.digest}`) }),
      ),
      [],
    );
  });
});
