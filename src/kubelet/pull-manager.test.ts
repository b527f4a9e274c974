import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import { ImagePullManager } from './pull-manager.ts';
import { MemoryPullRecords } from './pull-records-store.ts';
import type { ImagePulledRecord, PodCredentials } from './pull-records.ts';
import type { VerificationPolicy } from './verification-policy.ts';

const repo = 'docker.io/library/nginx';
const regcred = { uid: 'u1', namespace: 'default', name: 'regcred', credentialHash: 'H1' };
const noCredentials = async (): Promise<PodCredentials> => ({ secrets: [] });
const withSecret = async (): Promise<PodCredentials> => ({ secrets: [regcred] });

function manager(policy: VerificationPolicy = 'NeverVerifyPreloadedImages', allowlist: string[] = []) {
  const records = new MemoryPullRecords();
  const clock = new ManualClock();
  const checks: string[] = [];
  const errors: string[] = [];
  const pm = new ImagePullManager({
    records,
    policy,
    allowlist,
    clock,
    onMustPullCheck: (r) => checks.push(r),
    onError: (_e, context) => errors.push(context),
  });
  return { records, clock, pm, checks, errors };
}

describe('ImagePullManager.mustAttemptImagePull, in upstream order (docs/semantics.md kubelet §10)', () => {
  it('1. an empty imageRef → pull', async () => {
    const { pm } = manager('NeverVerify');
    assert.equal(await pm.mustAttemptImagePull('nginx', '', noCredentials), 'pull');
  });

  it('2. unreadable records → pull (fail safe)', async () => {
    const { pm, records, errors } = manager('NeverVerify');
    records.getRecord = async () => Promise.reject(new Error('EIO'));
    assert.equal(await pm.mustAttemptImagePull('nginx', 'sha256:1', noCredentials), 'pull');
    assert.equal(errors.length, 1);
  });

  it('3. a policy that requires no verification → use (preloaded images are trusted)', async () => {
    const { pm } = manager();
    assert.equal(
      await pm.mustAttemptImagePull('nginx', 'sha256:preloaded', noCredentials),
      'use',
      "no record, no intent: loaded behind the kubelet's back",
    );
    const never = manager('NeverVerify');
    await never.pm.recordImagePulled('nginx', 'sha256:1', { kubernetesSecrets: [regcred] });
    assert.equal(await never.pm.mustAttemptImagePull('nginx', 'sha256:1', noCredentials), 'use');
  });

  it('4. kubelet-pulled by an intent only (in flight, or on disk after a crash) → pull', async () => {
    const { pm } = manager();
    await pm.recordPullIntent('nginx');
    assert.equal(await pm.mustAttemptImagePull('nginx', 'sha256:1', noCredentials), 'pull', 'an intent in flight');
    const restarted = manager();
    await restarted.records.writeIntent('nginx');
    assert.equal(
      await restarted.pm.mustAttemptImagePull('nginx', 'sha256:1', noCredentials),
      'pull',
      'an intent on disk',
    );
  });

  it('5–8. a record decides by repository entry and the pod secrets, calling getPodCredentials only when needed', async () => {
    const { pm, records } = manager();
    await pm.recordImagePulled('nginx:1.25', 'sha256:1', { kubernetesSecrets: [regcred] });
    assert.equal(
      await pm.mustAttemptImagePull('nginx:1.25', 'sha256:1', noCredentials),
      'pull',
      'a pod without the secret must pull',
    );
    assert.equal(await pm.mustAttemptImagePull('nginx:1.25', 'sha256:1', withSecret), 'use');
    assert.equal(
      await pm.mustAttemptImagePull('other/nginx:1.25', 'sha256:1', withSecret),
      'pull',
      'no entry for that repository',
    );
    await pm.mustAttemptImagePull('nginx:1.25', 'sha256:1', async () => ({
      secrets: [{ ...regcred, uid: 'u2', name: 'copy' }],
    }));
    const merged = await records.getRecord('sha256:1');
    assert.deepEqual(
      merged?.credentialMapping[repo]?.kubernetesSecrets?.map((s) => s.name),
      ['copy', 'regcred'],
      'a secret with the same content under another name is remembered',
    );
  });

  it('counts a preloaded name sharing an imageRef with a kubelet-pulled image as kubelet-pulled', async () => {
    const { pm } = manager();
    await pm.recordImagePulled('private.example.com/app:v1', 'sha256:same', { kubernetesSecrets: [regcred] });
    assert.equal(await pm.mustAttemptImagePull('preloaded/app:v1', 'sha256:same', noCredentials), 'pull');
  });

  it('AlwaysVerify checks even preloaded images; the allowlist exempts', async () => {
    const always = manager('AlwaysVerify');
    assert.equal(await always.pm.mustAttemptImagePull('nginx', 'sha256:preloaded', noCredentials), 'pull');
    const allow = manager('NeverVerifyAllowlistedImages', ['docker.io/library/nginx']);
    assert.equal(await allow.pm.mustAttemptImagePull('nginx', 'sha256:x', noCredentials), 'use');
    assert.equal(await allow.pm.mustAttemptImagePull('redis', 'sha256:x', noCredentials), 'pull');
  });

  it('counts checks by result and passes getPodCredentials errors through', async () => {
    const { pm, checks } = manager('AlwaysVerify');
    await pm.recordImagePulled('nginx', 'sha256:1', { kubernetesSecrets: [regcred] });
    await assert.rejects(
      pm.mustAttemptImagePull('nginx', 'sha256:1', async () =>
        Promise.reject(new Error('invalid pull secret default/x')),
      ),
      /invalid pull secret/,
    );
    await pm.mustAttemptImagePull('nginx', 'sha256:1', withSecret);
    assert.deepEqual(checks, ['error', 'use']);
  });

  it('explains without recording in a preflight', async () => {
    const { pm, records } = manager();
    await pm.recordImagePulled('nginx', 'sha256:1', { kubernetesSecrets: [regcred] });
    const before = await records.getRecord('sha256:1');
    const explained = await pm.explainMustAttemptImagePull(
      'nginx',
      'sha256:1',
      async () => ({ secrets: [{ ...regcred, name: 'copy', uid: 'u9' }] }),
      { write: false },
    );
    assert.equal(explained.decision, 'use');
    assert.deepEqual(await records.getRecord('sha256:1'), before);
  });
});

describe('ImagePullManager records', () => {
  it('reference-counts intents per image; the file goes when the last pull ends', async () => {
    const { pm, records } = manager();
    await pm.recordPullIntent('nginx');
    await pm.recordPullIntent('nginx');
    assert.equal(pm.intentCount('nginx'), 2);
    await pm.recordImagePullFailed('nginx');
    assert.equal(records.intents.has('nginx'), true);
    await pm.recordImagePulled('nginx', 'sha256:1', { nodePodsAccessible: true });
    assert.equal(records.intents.has('nginx'), false);
    assert.equal(pm.intentCount('nginx'), 0);
    assert.deepEqual(records.records.get('sha256:1')?.credentialMapping, { [repo]: { nodePodsAccessible: true } });
  });

  it('keeps the intent when the pulled record cannot be written', async () => {
    const { pm, records, errors } = manager();
    await pm.recordPullIntent('nginx');
    records.writeRecord = async () => Promise.reject(new Error('ENOSPC'));
    await pm.recordImagePulled('nginx', 'sha256:1', { nodePodsAccessible: true });
    assert.equal(records.intents.has('nginx'), true);
    assert.ok(errors.some((e) => e.includes('failed to write image pulled record')));
  });

  it('fails recordPullIntent with the kubelet prefix', async () => {
    const { pm, records } = manager();
    records.writeIntent = async () => Promise.reject(new Error('read-only file system'));
    await assert.rejects(pm.recordPullIntent('nginx'), {
      message: 'failed to record image pull intent: read-only file system',
    });
  });

  it('on start, turns intents of images the runtime has into records without credentials', async () => {
    const { pm, records } = manager();
    await records.writeIntent('docker.io/library/nginx:1.25');
    await records.writeIntent('nginx:1.25');
    await records.writeIntent('gone:1');
    await pm.initialize([
      { id: 'sha256:n', repoTags: ['docker.io/library/nginx:1.25'], repoDigests: ['docker.io/library/nginx@sha256:n'] },
    ]);
    assert.deepEqual(records.records.get('sha256:n'), {
      lastUpdatedTime: '2025-01-02T03:04:05Z',
      imageRef: 'sha256:n',
      credentialMapping: {},
    } satisfies ImagePulledRecord);
    assert.deepEqual(
      [...records.intents.keys()].sort(),
      ['gone:1', 'nginx:1.25'],
      'only exact RepoTags/RepoDigests matches are converted',
    );
    assert.equal(
      await pm.mustAttemptImagePull('docker.io/library/nginx:1.25', 'sha256:n', withSecret),
      'pull',
      'forces re-verification',
    );
  });

  it('prunes records of vanished images last updated before the GC round', async () => {
    const { pm, records, clock } = manager();
    await pm.recordImagePulled('a', 'sha256:a', { nodePodsAccessible: true });
    await pm.recordImagePulled('b', 'sha256:b', { nodePodsAccessible: true });
    clock.advance(5_000);
    const round = clock.now();
    await pm.recordImagePulled('c', 'sha256:c', { nodePodsAccessible: true });
    assert.deepEqual(await pm.pruneOrphanedRecords(new Set(['sha256:a']), round), ['sha256:b']);
    assert.deepEqual([...records.records.keys()].sort(), ['sha256:a', 'sha256:c']);
  });
});
