import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import { FakeImageService } from './testing/fake-image-service.ts';
import { ImagePullManager } from './pull-manager.ts';
import { MemoryPullRecords } from './pull-records-store.ts';
import { preflightPod, type PreflightContainer } from './preflight.ts';
import type { PodImageSpec } from './pod.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const registry = 'private.example.com';
const regcred = {
  metadata: { name: 'regcred', namespace: 'default', uid: 'u1' },
  type: 'kubernetes.io/dockerconfigjson',
  stringData: {
    '.dockerconfigjson': JSON.stringify({ auths: { [registry]: { username: 'alice', password: 'right' } } }),
  },
};

function check(
  pod: Partial<PodImageSpec> & Pick<PodImageSpec, 'containers'>,
  secrets: Record<string, unknown> = {},
  prepare?: (fake: FakeImageService) => void,
) {
  const fake = new FakeImageService();
  fake.addRemote(`${registry}/team/app:v1`, { digest: D1, auth: [{ username: 'alice', password: 'right' }] });
  fake.addRemote('nginx:1.25', { digest: D1 });
  fake.addRemote('arm/only:1', { digest: D1, platforms: ['linux/arm64', 'linux/arm/v7'] });
  prepare?.(fake);
  const spec: PodImageSpec = {
    uid: 'u',
    namespace: 'default',
    name: 'web',
    imagePullSecrets: [],
    initContainers: [],
    ...pod,
  };
  return preflightPod(spec, { imageService: fake, platform: 'linux/amd64', getSecret: (name) => secrets[name] }).then(
    (report) => ({ report, fake }),
  );
}

const summary = (c: PreflightContainer | undefined) => `${c?.action} ${c?.reason ?? '-'} ${c?.problem ?? '-'}`;

describe('preflight (kimg ensure --dry-run)', () => {
  it('finds a missing imagePullSecret for a private registry, with the kubelet message and a fix', async () => {
    const { report } = await check({
      imagePullSecrets: ['regcred'],
      containers: [{ name: 'app', image: `${registry}/team/app:v1` }],
    });
    const app = report.containers[0];
    assert.equal(report.ok, false);
    assert.deepEqual(report.missingSecrets, ['regcred']);
    assert.equal(summary(app), 'fail ErrImagePull missing-secret');
    assert.equal(app?.message, `resolve ${registry}/team/app:v1: authentication required or refused (HTTP 401)`);
    assert.match(
      app?.fix ?? '',
      /no such Secret exists in namespace default: create it \(kubectl create secret docker-registry regcred --docker-server=private\.example\.com/,
    );
    assert.deepEqual(
      app?.attempts.map((a) => a.credential),
      ['anonymous'],
    );
  });

  it('passes with the secret, naming the credential that works, without pulling', async () => {
    const { report, fake } = await check(
      { imagePullSecrets: ['regcred'], containers: [{ name: 'app', image: `${registry}/team/app:v1` }] },
      { regcred },
    );
    assert.equal(summary(report.containers[0]), 'pull - -');
    assert.equal(report.containers[0]?.resolved?.credential, 'secret default/regcred');
    assert.equal(report.containers[0]?.resolved?.digest, D1);
    assert.equal(fake.count('pullImage'), 0);
    assert.equal(report.ok, true);
  });

  it('tells a pod without imagePullSecrets how to add one, and a pod whose secrets lack the registry', async () => {
    const none = await check({ containers: [{ name: 'app', image: `${registry}/team/app:v1` }] });
    assert.equal(none.report.containers[0]?.problem, 'no-credentials');
    assert.match(none.report.containers[0]?.fix ?? '', /the pod has no imagePullSecrets/);
    const other = {
      ...regcred,
      metadata: { name: 'other', namespace: 'default' },
      stringData: { '.dockerconfigjson': JSON.stringify({ auths: { 'quay.io': { username: 'x', password: 'y' } } }) },
    };
    const wrong = await check(
      { imagePullSecrets: ['other'], containers: [{ name: 'app', image: `${registry}/team/app:v1` }] },
      { other },
    );
    assert.match(
      wrong.report.containers[0]?.fix ?? '',
      /none of the pod's imagePullSecrets \(other\) has an entry for private\.example\.com/,
    );
  });

  it('reports refused credentials, unknown tags, missing platforms and invalid names', async () => {
    const bad = {
      ...regcred,
      stringData: {
        '.dockerconfigjson': JSON.stringify({ auths: { [registry]: { username: 'alice', password: 'wrong' } } }),
      },
    };
    const { report } = await check(
      {
        imagePullSecrets: ['regcred'],
        containers: [
          { name: 'refused', image: `${registry}/team/app:v1` },
          { name: 'tag', image: 'nginx:1.99' },
          { name: 'platform', image: 'arm/only:1' },
          { name: 'name', image: 'Nginx:1.25' },
        ],
      },
      { regcred: bad },
    );
    assert.deepEqual(report.containers.map(summary), [
      'fail ErrImagePull credentials-refused',
      'fail ErrImagePull unknown-tag',
      'fail ErrImagePull missing-platform',
      'fail InvalidImageName invalid-name',
    ]);
    assert.match(report.containers[0]?.fix ?? '', /refused the credentials from secret default\/regcred/);
    assert.match(report.containers[1]?.fix ?? '', /has no tag "1\.99"/);
    assert.match(report.containers[3]?.fix ?? '', /"nginx:1\.25"/);
    assert.equal(
      report.containers[3]?.message,
      'Failed to apply default image tag "Nginx:1.25": couldn\'t parse image name "Nginx:1.25": invalid reference format: repository name (library/Nginx) must be lowercase',
    );
  });

  it('reports Never with an absent image, and uses present images without the network', async () => {
    const { report, fake } = await check(
      {
        containers: [
          { name: 'never', image: 'app:v2', imagePullPolicy: 'Never' },
          { name: 'local', image: 'nginx:1.25' },
        ],
      },
      {},
      (f) => f.addLocal('nginx:1.25', D1),
    );
    assert.equal(summary(report.containers[0]), 'fail ErrImageNeverPull never-absent');
    assert.equal(report.containers[0]?.message, 'Container image "app:v2" is not present with pull policy of Never');
    assert.match(report.containers[0]?.fix ?? '', /kimg pull app:v2/);
    assert.equal(summary(report.containers[1]), 'use-local - -');
    assert.equal(fake.count('resolveImage'), 0);
  });

  it("applies KEP-2535: a present image pulled with another pod's secret is not usable with Never", async () => {
    const clock = new ManualClock();
    const verifier = new ImagePullManager({
      records: new MemoryPullRecords(),
      policy: 'NeverVerifyPreloadedImages',
      clock,
    });
    await verifier.recordImagePulled(`${registry}/team/app:v1`, D1, {
      kubernetesSecrets: [{ uid: 'u1', namespace: 'default', name: 'regcred', credentialHash: 'H' }],
    });
    const fake = new FakeImageService().addLocal(`${registry}/team/app:v1`, D1);
    const report = await preflightPod(
      {
        uid: 'u',
        namespace: 'default',
        name: 'web',
        imagePullSecrets: [],
        initContainers: [],
        containers: [{ name: 'app', image: `${registry}/team/app:v1`, imagePullPolicy: 'Never' }],
      },
      { imageService: fake, platform: 'linux/amd64', getSecret: () => undefined, verifier },
    );
    assert.equal(summary(report.containers[0]), 'fail ErrImageNeverPull never-not-verified');
  });

  it('lists init containers first', async () => {
    const { report } = await check({
      initContainers: [{ name: 'init', image: 'nginx:1.25' }],
      containers: [{ name: 'app', image: 'nginx:1.25' }],
    });
    assert.deepEqual(
      report.containers.map((c) => `${c.init} ${c.name}`),
      ['true init', 'false app'],
    );
  });
});
