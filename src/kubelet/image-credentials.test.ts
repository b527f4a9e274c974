import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Keyring } from '../credentials/index.ts';
import { decodeDockerConfigJson } from '../credentials/kubelet-config.ts';
import { lookupImageCredentials, podCredentialsOf, pulledCredentialsOf } from './image-credentials.ts';

const secret = (name: string, auths: Record<string, { username: string; password: string }>) => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}` },
  type: 'kubernetes.io/dockerconfigjson',
  stringData: { '.dockerconfigjson': JSON.stringify({ auths }) },
});
const cred = (username: string) => ({ username, password: 'p' });

describe('the kubelet credential order for one image (docs/semantics.md kubelet §8, §6)', () => {
  it('puts all pod secrets in one keyring, most specific key first, then the node keyring', async () => {
    const node = new Keyring().add(
      { kind: 'node', path: '/var/lib/kubelet/config.json' },
      decodeDockerConfigJson({ auths: { 'quay.io': cred('node') } }),
    );
    const matches = await lookupImageCredentials(
      'quay.io/coreos/etcd',
      [
        secret('a', { 'quay.io': cred('a-registry') }),
        secret('b', { 'quay.io/coreos': cred('b-path') }),
        { type: 'Opaque', metadata: { name: 'ignored' } },
      ],
      { node },
      'default',
    );
    assert.deepEqual(
      matches.map((m) => `${m.key} ${m.credential.username} ${m.sourceLabel}`),
      [
        'quay.io/coreos b-path secret default/b',
        'quay.io a-registry secret default/a',
        'quay.io node node config /var/lib/kubelet/config.json',
      ],
    );
  });

  it('applies the Docker Hub fallback per source', async () => {
    const matches = await lookupImageCredentials(
      'docker.io/library/nginx',
      [secret('hub', { 'https://index.docker.io/v1/': cred('hub') })],
      {},
      'default',
    );
    assert.deepEqual(
      matches.map((m) => [m.key, m.viaDockerHubFallback]),
      [['index.docker.io', true]],
    );
  });

  it('fails the lookup on a malformed usable secret', async () => {
    const broken = {
      metadata: { name: 'broken' },
      type: 'kubernetes.io/dockerconfigjson',
      stringData: { '.dockerconfigjson': '[' },
    };
    await assert.rejects(
      lookupImageCredentials('docker.io/library/nginx', [broken], {}, 'prod'),
      /invalid pull secret prod\/broken/,
    );
  });

  it('yields only secret-sourced credentials to the verifier, and records what pulled', async () => {
    const node = new Keyring().add(
      { kind: 'node', path: '/n' },
      decodeDockerConfigJson({ auths: { 'quay.io': cred('node') } }),
    );
    const matches = await lookupImageCredentials(
      'quay.io/x',
      [secret('s', { 'quay.io': cred('s') })],
      { node },
      'default',
    );
    const pod = podCredentialsOf(matches);
    assert.deepEqual(
      pod.secrets.map((s) => s.name),
      ['s'],
    );
    assert.equal(pod.serviceAccount, undefined);
    assert.match(pod.secrets[0]?.credentialHash ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(pulledCredentialsOf(undefined), { nodePodsAccessible: true });
    assert.deepEqual(
      pulledCredentialsOf(matches[1]),
      { nodePodsAccessible: true },
      'node credentials make the image node-accessible',
    );
    assert.deepEqual(pulledCredentialsOf(matches[0])?.kubernetesSecrets?.[0]?.name, 's');
    assert.deepEqual(podCredentialsOf([]), { secrets: [] });
  });

  it("a service-account-mode plugin credential is the pod's service account, and a pull with it records the account", () => {
    const keyring = new Keyring().add(
      { kind: 'serviceAccount', namespace: 'team', name: 'builder', uid: 'uid-sa', provider: 'ecr' },
      decodeDockerConfigJson({ auths: { 'reg.example.com': cred('sa') } }),
    );
    const matches = keyring.lookup('reg.example.com/app');
    assert.deepEqual(podCredentialsOf(matches), {
      secrets: [],
      serviceAccount: { uid: 'uid-sa', namespace: 'team', name: 'builder' },
    });
    assert.deepEqual(pulledCredentialsOf(matches[0]), {
      kubernetesServiceAccounts: [{ uid: 'uid-sa', namespace: 'team', name: 'builder' }],
    });
  });
});
