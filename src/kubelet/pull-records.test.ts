import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BasicCredential } from '../credentials/index.ts';
import { credentialHash } from '../credentials/credential-hash.ts';
import {
  decodePullIntent,
  decodePulledRecord,
  encodePullIntent,
  encodePulledRecord,
  recordFileName,
} from './pull-records-codec.ts';
import { CachedPullRecords, FsPullRecords, MemoryPullRecords } from './pull-records-store.ts';
import {
  checkRecordedCredentials,
  mergePulledRecord,
  recordTime,
  type ImagePulledRecord,
  type ImagePullSecretRef,
  type PodCredentials,
} from './pull-records.ts';

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const repo = 'docker.io/library/nginx';
const secret = (
  name: string,
  hash = `hash-${name}`,
  namespace = 'default',
  uid = `uid-${name}`,
): ImagePullSecretRef => ({ uid, namespace, name, credentialHash: hash });

describe('pulled records: merging the credentials of a pull (docs/semantics.md kubelet §10)', () => {
  it('always writes a new record; an empty mapping without credentials', () => {
    assert.deepEqual(mergePulledRecord(undefined, 'sha256:1', repo, undefined, T0), {
      record: { lastUpdatedTime: '2025-01-02T03:04:05Z', imageRef: 'sha256:1', credentialMapping: {} },
      changed: true,
    });
    const withSecret = mergePulledRecord(undefined, 'sha256:1', repo, { kubernetesSecrets: [secret('a')] }, T0);
    assert.deepEqual(withSecret.record.credentialMapping, { [repo]: { kubernetesSecrets: [secret('a')] } });
  });

  it('leaves a record alone for absent or empty credentials', () => {
    const existing = mergePulledRecord(undefined, 'sha256:1', repo, { kubernetesSecrets: [secret('a')] }, T0).record;
    assert.equal(mergePulledRecord(existing, 'sha256:1', repo, undefined, T0 + 5000).changed, false);
    assert.equal(mergePulledRecord(existing, 'sha256:1', repo, {}, T0 + 5000).changed, false);
    assert.equal(mergePulledRecord(existing, 'sha256:1', repo, { kubernetesSecrets: [] }, T0 + 5000).changed, false);
  });

  it('stores new credentials as given for a repository not yet mapped', () => {
    const existing = mergePulledRecord(undefined, 'sha256:1', repo, { nodePodsAccessible: true }, T0).record;
    const merged = mergePulledRecord(
      existing,
      'sha256:1',
      'docker.io/team/nginx',
      { kubernetesSecrets: [secret('b')] },
      T0 + 10_000,
    );
    assert.equal(merged.changed, true);
    assert.equal(merged.record.lastUpdatedTime, '2025-01-02T03:04:15Z');
    assert.deepEqual(merged.record.credentialMapping['docker.io/team/nginx'], { kubernetesSecrets: [secret('b')] });
  });

  it('keeps node-accessible sticky, and node-accessible replaces secret lists', () => {
    const node = mergePulledRecord(undefined, 'sha256:1', repo, { nodePodsAccessible: true }, T0).record;
    assert.equal(
      mergePulledRecord(node, 'sha256:1', repo, { kubernetesSecrets: [secret('a')] }, T0 + 1000).changed,
      false,
    );
    const secrets = mergePulledRecord(undefined, 'sha256:1', repo, { kubernetesSecrets: [secret('a')] }, T0).record;
    const nowNode = mergePulledRecord(secrets, 'sha256:1', repo, { nodePodsAccessible: true }, T0 + 1000);
    assert.deepEqual(nowNode.record.credentialMapping[repo], { nodePodsAccessible: true });
  });

  it('de-duplicates secrets by namespace, name and uid, the new hash winning, sorted in byte order', () => {
    const first = mergePulledRecord(
      undefined,
      'sha256:1',
      repo,
      { kubernetesSecrets: [secret('zeta', 'h1')] },
      T0,
    ).record;
    const second = mergePulledRecord(
      first,
      'sha256:1',
      repo,
      { kubernetesSecrets: [secret('alpha', 'h2', 'prod'), secret('Beta', 'h3')] },
      T0 + 1000,
    ).record;
    const third = mergePulledRecord(second, 'sha256:1', repo, { kubernetesSecrets: [secret('zeta', 'h9')] }, T0 + 2000);
    assert.equal(third.changed, true);
    assert.deepEqual(third.record.credentialMapping[repo]?.kubernetesSecrets, [
      secret('Beta', 'h3'),
      secret('zeta', 'h9'),
      secret('alpha', 'h2', 'prod'),
    ]);
    const again = mergePulledRecord(
      third.record,
      'sha256:1',
      repo,
      { kubernetesSecrets: [secret('zeta', 'h9')] },
      T0 + 3000,
    );
    assert.equal(again.changed, false, 'nothing new: not updated, lastUpdatedTime unchanged');
    assert.equal(again.record.lastUpdatedTime, '2025-01-02T03:04:07Z');
  });

  it('unions service accounts in the same order', () => {
    const sa = (name: string) => ({ uid: `u-${name}`, namespace: 'ns', name });
    const first = mergePulledRecord(undefined, 'sha256:1', repo, { kubernetesServiceAccounts: [sa('b')] }, T0).record;
    const merged = mergePulledRecord(first, 'sha256:1', repo, { kubernetesServiceAccounts: [sa('a'), sa('b')] }, T0);
    assert.deepEqual(merged.record.credentialMapping[repo]?.kubernetesServiceAccounts, [sa('a'), sa('b')]);
  });

  it('formats lastUpdatedTime as RFC 3339 UTC whole seconds', () =>
    assert.equal(recordTime(T0), '2025-01-02T03:04:05Z'));
});

describe('checking a pod against a pulled record (docs/semantics.md kubelet §10 decision 5–10)', () => {
  const record = (creds: ImagePulledRecord['credentialMapping'][string]): ImagePulledRecord => ({
    lastUpdatedTime: 'x',
    imageRef: 'sha256:1',
    credentialMapping: { [repo]: creds },
  });
  const pod = (p: PodCredentials) => async () => p;
  const never = async (): Promise<PodCredentials> => assert.fail('getPodCredentials must not be called');

  it('pulls when the repository has no entry, or the entry names no credentials', async () => {
    assert.equal(
      (await checkRecordedCredentials({ lastUpdatedTime: 'x', imageRef: 'r', credentialMapping: {} }, repo, never))
        .decision,
      'pull',
    );
    assert.equal((await checkRecordedCredentials(record({}), repo, never)).decision, 'pull');
  });

  it('uses a node-accessible image without asking for the pod credentials', async () => {
    assert.equal((await checkRecordedCredentials(record({ nodePodsAccessible: true }), repo, never)).decision, 'use');
  });

  it('uses on an equal non-empty hash, merging the pod secret when its coordinates differ', async () => {
    const result = await checkRecordedCredentials(
      record({ kubernetesSecrets: [secret('a', 'H')] }),
      repo,
      pod({ secrets: [secret('other', 'H')] }),
    );
    assert.equal(result.decision, 'use');
    assert.deepEqual(result.decision === 'use' && result.merge, secret('other', 'H'));
    const same = await checkRecordedCredentials(
      record({ kubernetesSecrets: [secret('a', 'H')] }),
      repo,
      pod({ secrets: [secret('a', 'H')] }),
    );
    assert.equal(same.decision === 'use' && same.merge, undefined);
  });

  it('uses on equal coordinates with another hash (the secret was rotated), merging the new hash', async () => {
    const result = await checkRecordedCredentials(
      record({ kubernetesSecrets: [secret('a', 'old')] }),
      repo,
      pod({ secrets: [secret('a', 'new')] }),
    );
    assert.deepEqual(result, {
      decision: 'use',
      why: 'secret default/a was used to pull it',
      merge: secret('a', 'new'),
    });
    const emptyStored = await checkRecordedCredentials(
      record({ kubernetesSecrets: [secret('a', '')] }),
      repo,
      pod({ secrets: [secret('a', '')] }),
    );
    assert.equal(emptyStored.decision, 'use', 'an empty stored hash still matches by coordinates');
  });

  it('never matches an empty hash by hash', async () => {
    const result = await checkRecordedCredentials(
      record({ kubernetesSecrets: [secret('a', '')] }),
      repo,
      pod({ secrets: [secret('b', '')] }),
    );
    assert.equal(result.decision, 'pull');
  });

  it('at 100 recorded secrets a hash match still uses without merging, a coordinate-only match is skipped', async () => {
    const many = Array.from({ length: 100 }, (_, i) => secret(`s${String(i).padStart(3, '0')}`));
    const byHash = await checkRecordedCredentials(
      record({ kubernetesSecrets: many }),
      repo,
      pod({ secrets: [secret('x', 'hash-s050')] }),
    );
    assert.deepEqual(byHash, { decision: 'use', why: 'secret default/x holds the credential it was pulled with' });
    const byCoordinates = await checkRecordedCredentials(
      record({ kubernetesSecrets: many }),
      repo,
      pod({ secrets: [secret('s050', 'rotated')] }),
    );
    assert.equal(byCoordinates.decision, 'pull');
    const ninetyNine = await checkRecordedCredentials(
      record({ kubernetesSecrets: many.slice(1) }),
      repo,
      pod({ secrets: [secret('s050', 'rotated')] }),
    );
    assert.equal(ninetyNine.decision, 'use');
  });

  it('uses when the pod service account is recorded, else pulls', async () => {
    const sa = { uid: 'u', namespace: 'ns', name: 'builder' };
    const recorded = record({ kubernetesServiceAccounts: [sa] });
    assert.equal(
      (await checkRecordedCredentials(recorded, repo, pod({ secrets: [], serviceAccount: sa }))).decision,
      'use',
    );
    assert.equal(
      (await checkRecordedCredentials(recorded, repo, pod({ secrets: [], serviceAccount: { ...sa, uid: 'other' } })))
        .decision,
      'pull',
    );
    assert.equal((await checkRecordedCredentials(recorded, repo, pod({ secrets: [] }))).decision, 'pull');
  });

  it('returns the getPodCredentials error', async () => {
    await assert.rejects(
      checkRecordedCredentials(record({ kubernetesSecrets: [secret('a')] }), repo, async () =>
        Promise.reject(new Error('bad secret')),
      ),
      /bad secret/,
    );
  });
});

describe('records on disk (docs/semantics.md kubelet §10)', () => {
  const sample: ImagePulledRecord = {
    lastUpdatedTime: '2025-01-02T03:04:05Z',
    imageRef: 'sha256:abc',
    credentialMapping: {
      'docker.io/library/nginx': {
        kubernetesSecrets: [{ uid: 'u1', namespace: 'default', name: 'regcred', credentialHash: 'h<&>' }],
      },
      'docker.io/a/b': { nodePodsAccessible: true },
    },
  };

  it('encodes as kubelet.config.k8s.io/v1beta1 JSON with Go field order and escaping', () => {
    assert.equal(
      encodePulledRecord(sample),
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2025-01-02T03:04:05Z","imageRef":"sha256:abc","credentialMapping":{"docker.io/a/b":{"nodePodsAccessible":true},"docker.io/library/nginx":{"kubernetesSecrets":[{"uid":"u1","namespace":"default","name":"regcred","credentialHash":"h\\u003c\\u0026\\u003e"}]}}}\n',
    );
    assert.equal(
      encodePullIntent({ image: 'nginx' }),
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"nginx"}\n',
    );
    assert.deepEqual(decodePulledRecord(encodePulledRecord(sample)), sample);
  });

  it('reads v1alpha1 and rejects unknown fields and wrong kinds', () => {
    assert.deepEqual(
      decodePullIntent('{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1alpha1","image":"x"}'),
      { image: 'x' },
    );
    assert.throws(
      () =>
        decodePullIntent(
          '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x","extra":1}',
        ),
      /unknown field "extra"/,
    );
    assert.throws(
      () => decodePullIntent('{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x"}'),
      /kind must be/,
    );
    assert.throws(() => decodePullIntent('{"kind":"ImagePullIntent","apiVersion":"v1","image":"x"}'), /apiVersion/);
    assert.throws(
      () =>
        decodePulledRecord(
          '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2025-01-02T03:04:05Z","imageRef":"r","credentialMapping":{"x":{"kubernetesSecrets":[{"uid":"","namespace":"","name":"","credentialHash":"","extra":1}]}}}',
        ),
      /unknown field/,
    );
  });

  it('names files sha256-<hex of the key>', () => {
    assert.equal(recordFileName('nginx'), `sha256-${createHash('sha256').update('nginx').digest('hex')}`);
  });

  it('writes intents and records 0600 in 0700 dirs via <name>.tmp and rename', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kimg-kubelet-records-'));
    try {
      const records = new FsPullRecords(root);
      await records.writeIntent('nginx');
      await records.writeRecord(sample);
      const intentPath = join(root, 'image_manager', 'pulling', recordFileName('nginx'));
      const recordPath = join(root, 'image_manager', 'pulled', recordFileName('sha256:abc'));
      assert.equal((await stat(intentPath)).mode & 0o777, 0o600);
      assert.equal((await stat(recordPath)).mode & 0o777, 0o600);
      assert.equal((await stat(join(root, 'image_manager', 'pulled'))).mode & 0o777, 0o700);
      assert.deepEqual(await readdir(join(root, 'image_manager', 'pulled')), [recordFileName('sha256:abc')]);
      assert.equal(await readFile(recordPath, 'utf8'), encodePulledRecord(sample));
      assert.deepEqual(await records.getRecord('sha256:abc'), sample);
      assert.equal(await records.intentExists('nginx'), true);
      assert.deepEqual(await records.listIntents(), [{ image: 'nginx' }]);
      await writeFile(join(root, 'image_manager', 'pulled', recordFileName('broken')), '{"kind":"ImagePulledRecord"}');
      const skipped: string[] = [];
      assert.deepEqual(await new FsPullRecords(root, { onSkip: (p) => skipped.push(p) }).listRecords(), [sample]);
      assert.equal(skipped.length, 1);
      await assert.rejects(
        records.getRecord('broken'),
        /apiVersion/,
        'a record that cannot be read is an error (the manager then pulls)',
      );
      await records.deleteIntent('nginx');
      assert.equal(await records.intentExists('nginx'), false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('caches write-through; the cache is authoritative until it evicts', async () => {
    const disk = new MemoryPullRecords();
    await disk.writeRecord({ ...sample, imageRef: 'r0' });
    const cached = await CachedPullRecords.open(disk, { recordCapacity: 2, intentCapacity: 2 });
    assert.deepEqual(cached.authoritative, { intents: true, records: true });
    assert.equal((await cached.getRecord('r0'))?.imageRef, 'r0');
    disk.records.set('sneaky', { ...sample, imageRef: 'sneaky' });
    assert.equal(await cached.getRecord('sneaky'), undefined, 'authoritative: a miss is an answer');
    await cached.writeRecord({ ...sample, imageRef: 'r1' });
    await cached.writeRecord({ ...sample, imageRef: 'r2' });
    assert.equal(cached.authoritative.records, false);
    assert.equal((await cached.getRecord('sneaky'))?.imageRef, 'sneaky', 'after an eviction a miss goes to disk');
    assert.equal((await cached.getRecord('r0'))?.imageRef, 'r0');
  });
});

describe('credentialHash (docs/semantics.md kubelet §10)', () => {
  it('hashes {"username":"user","password":"password"}', () => {
    const expected = createHash('sha256').update('{"username":"user","password":"password"}').digest('hex');
    assert.equal(credentialHash(new BasicCredential('user', 'password')), expected);
  });
});
