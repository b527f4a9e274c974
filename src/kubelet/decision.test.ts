import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decidePull, type PullDecision } from './decision.ts';
import type { PullPolicy } from './policy.ts';

const REF = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';

type Presence = 'absent' | 'present' | 'inspect-error';
type Verdict = 'use' | 'pull' | 'throws' | '-';

/** One row: the inputs, then the decision's kind and facts. `-`: the verifier must not be asked. */
const TABLE: readonly [
  PullPolicy,
  Presence,
  boolean,
  Verdict,
  Partial<PullDecision> & { kind: PullDecision['kind'] },
][] = [
  ['Always', 'absent', false, '-', { kind: 'pull', image: 'busybox:latest' }],
  ['Always', 'present', true, '-', { kind: 'pull', image: 'busybox:latest' }],
  ['Always', 'inspect-error', true, '-', { kind: 'pull', image: 'busybox:latest' }],
  ['IfNotPresent', 'absent', false, '-', { kind: 'pull', image: 'busybox:latest' }],
  ['IfNotPresent', 'absent', true, '-', { kind: 'pull', image: 'busybox:latest' }],
  ['Never', 'absent', false, '-', { kind: 'never-pull', present: false }],
  ['Never', 'absent', true, '-', { kind: 'never-pull', present: false }],
  ['IfNotPresent', 'inspect-error', false, '-', { kind: 'inspect-failed' }],
  ['Never', 'inspect-error', true, '-', { kind: 'inspect-failed' }],
  ['IfNotPresent', 'present', false, '-', { kind: 'use-local', imageRef: REF, verified: false }],
  ['Never', 'present', false, '-', { kind: 'use-local', imageRef: REF, verified: false }],
  ['IfNotPresent', 'present', true, 'use', { kind: 'use-local', imageRef: REF, verified: true }],
  ['Never', 'present', true, 'use', { kind: 'use-local', imageRef: REF, verified: true }],
  ['IfNotPresent', 'present', true, 'pull', { kind: 'pull', image: 'busybox:latest', presentAs: REF }],
  ['Never', 'present', true, 'pull', { kind: 'never-pull', present: true }],
  ['IfNotPresent', 'present', true, 'throws', { kind: 'verify-failed', imageRef: REF }],
  ['Never', 'present', true, 'throws', { kind: 'verify-failed', imageRef: REF }],
];

describe('decidePull: the kubelet pull decision, every case once', () => {
  for (const [policy, presence, gate, verdict, expected] of TABLE) {
    it(`${policy}, ${presence}, KEP-2535 gate ${gate ? 'on' : 'off'}, verifier ${verdict} → ${expected.kind}`, async () => {
      const asked: string[] = [];
      const decision = await decidePull({
        image: 'busybox',
        policy,
        ensureSecretPulledImages: gate,
        getImageRef: async (image) => {
          asked.push(`ref ${image}`);
          if (presence === 'inspect-error') throw new Error('store unreadable');
          return presence === 'present' ? REF : '';
        },
        mustAttempt: async (imageRef) => {
          asked.push(`verify ${imageRef}`);
          if (verdict === 'throws') throw new Error('secret unreadable');
          assert.notEqual(verdict, '-', 'the verifier was asked');
          return verdict as 'use' | 'pull';
        },
      });
      for (const [key, value] of Object.entries(expected))
        assert.deepEqual(decision[key as keyof PullDecision], value, `${key} of ${JSON.stringify(decision)}`);
      if (decision.kind === 'pull' && !('presentAs' in expected)) assert.equal(decision.presentAs, undefined);
      // Presence is never looked up under Always; the verifier only for a present image, gate on.
      assert.equal(asked.includes('ref busybox:latest'), policy !== 'Always', `presence lookups: ${asked.join(', ')}`);
      assert.equal(asked.includes(`verify ${REF}`), verdict !== '-', `verifier calls: ${asked.join(', ')}`);
    });
  }

  it('an invalid name is decided before any lookup, with the parser error', async () => {
    const decision = await decidePull({
      image: 'Nginx',
      policy: 'IfNotPresent',
      ensureSecretPulledImages: true,
      getImageRef: () => assert.fail('looked up'),
      mustAttempt: () => assert.fail('verified'),
    });
    assert.equal(decision.kind, 'invalid-name');
    assert.match(decision.kind === 'invalid-name' ? decision.error : '', /couldn't parse image name "Nginx"/);
  });

  it('the default tag is added as written; a digest reference is looked up as it is', async () => {
    const looked: string[] = [];
    const lookup = async (image: string) => (looked.push(image), '');
    const image = `registry.example/app@${REF}`;
    await decidePull({
      image: 'registry.example/app',
      policy: 'IfNotPresent',
      ensureSecretPulledImages: false,
      getImageRef: lookup,
      mustAttempt: async () => 'use',
    });
    const pinned = await decidePull({
      image,
      policy: 'IfNotPresent',
      ensureSecretPulledImages: false,
      getImageRef: lookup,
      mustAttempt: async () => 'use',
    });
    assert.deepEqual(looked, ['registry.example/app:latest', image]);
    assert.deepEqual(pinned, { kind: 'pull', image });
  });
});
