import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowlistProblems, isAllowlisted, parseAllowlist, requiresVerification } from './verification-policy.ts';

describe('KEP-2535 verification policies (docs/semantics.md kubelet §10)', () => {
  const empty = parseAllowlist([]);
  it('decides when verification is required', () => {
    const table: [Parameters<typeof requiresVerification>[0], boolean, boolean][] = [
      ['NeverVerify', true, false],
      ['NeverVerify', false, false],
      ['NeverVerifyPreloadedImages', true, true],
      ['NeverVerifyPreloadedImages', false, false],
      ['NeverVerifyAllowlistedImages', false, true],
      ['NeverVerifyAllowlistedImages', true, true],
      ['AlwaysVerify', false, true],
      ['AlwaysVerify', true, true],
    ];
    for (const [policy, pulledByKubelet, required] of table) {
      assert.equal(
        requiresVerification(policy, empty, 'nginx', pulledByKubelet),
        required,
        `${policy} pulledByKubelet=${pulledByKubelet}`,
      );
    }
  });

  it('skips verification for allowlisted images, kubelet-pulled or not', () => {
    const allowlist = parseAllowlist(['docker.io/library/alpine', 'registry.k8s.io/*']);
    assert.equal(requiresVerification('NeverVerifyAllowlistedImages', allowlist, 'alpine:3.20', true), false);
    assert.equal(
      requiresVerification('NeverVerifyAllowlistedImages', allowlist, 'registry.k8s.io/pause:3.9', false),
      false,
    );
    assert.equal(requiresVerification('NeverVerifyAllowlistedImages', allowlist, 'nginx', false), true);
  });
});

describe('preloadedImagesVerificationAllowlist', () => {
  it('rejects malformed entries at start-up', () => {
    const bad = [
      ' docker.io/library/alpine',
      'docker.io/library/alpine ',
      '',
      '*',
      '/*',
      'docker.io/*/x',
      'docker.io/library/*/*',
      'docker.io/library*',
      'alpine',
      'docker.io/library/alpine:3.20',
      `docker.io/library/alpine@sha256:${'a'.repeat(64)}`,
      'docker.io/library/alpine/',
      'Docker.io/x/Y',
    ];
    for (const entry of bad)
      assert.equal(allowlistProblems([entry]).length, 1, `${JSON.stringify(entry)} should be rejected`);
    assert.throws(() => parseAllowlist(['alpine']), /normalized repository "docker.io\/library\/alpine"/);
  });

  it('accepts exact normalized repositories and <prefix>/*, collapsing duplicates', () => {
    assert.deepEqual(
      allowlistProblems(['docker.io/library/alpine', 'registry.k8s.io/*', 'quay.io/org/*', 'anything goes here/*']),
      [],
    );
    const allowlist = parseAllowlist(['docker.io/library/alpine', 'docker.io/library/alpine', 'quay.io/org/*']);
    assert.equal(allowlist.exact.size, 1);
  });

  it('matches the normalized pod image without tag or digest: equality or string prefix at any depth', () => {
    const allowlist = parseAllowlist(['docker.io/library/alpine', 'quay.io/org/*']);
    assert.equal(isAllowlisted(allowlist, 'alpine'), true);
    assert.equal(isAllowlisted(allowlist, `alpine:3.20@sha256:${'b'.repeat(64)}`), true);
    assert.equal(isAllowlisted(allowlist, 'alpine-extra'), false);
    assert.equal(isAllowlisted(allowlist, 'quay.io/org/team/app:v1'), true);
    assert.equal(isAllowlisted(allowlist, 'quay.io/org'), false);
    assert.equal(isAllowlisted(allowlist, 'quay.io/organisation/app'), false);
    assert.equal(isAllowlisted(allowlist, 'Alpine'), false);
  });
});
