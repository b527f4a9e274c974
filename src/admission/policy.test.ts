import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdmissionConfigError } from './errors.ts';
import { ImagePolicy, validate, type PolicyRule } from './policy.ts';

const D = `sha256:${'a'.repeat(64)}`;

function rules(policy: ImagePolicy, image: string): PolicyRule[] {
  return policy.evaluate(image).violations.map((v) => v.rule);
}

describe('ImagePolicy (docs/semantics.md admission §4.15)', () => {
  test('defaults are neutral', () => {
    const policy = new ImagePolicy();
    for (const image of ['nginx', 'nginx:latest', 'Bad Image', '', `x@sha256:abc`])
      assert.deepEqual(policy.evaluate(image), { allowed: true, violations: [] });
    assert.equal(policy.isEmpty, true);
  });

  test('disallowed tags and the implicit latest; a port is not a tag; a digest satisfies tag rules unless told otherwise', () => {
    const policy = new ImagePolicy({ disallowedTags: ['latest', 'dev'] });
    assert.deepEqual(rules(policy, 'nginx:latest'), ['disallowed-tag']);
    assert.deepEqual(rules(policy, 'nginx'), ['implicit-latest']);
    assert.deepEqual(
      rules(policy, 'registry:443/app'),
      ['implicit-latest'],
      'Gatekeeper calls this untagged too; kimg reads the port as a port',
    );
    assert.deepEqual(rules(policy, 'registry:443/app:1'), []);
    assert.deepEqual(rules(policy, 'app:dev'), ['disallowed-tag']);
    assert.deepEqual(rules(policy, 'app:Latest'), [], 'exact and case-sensitive');
    assert.deepEqual(rules(policy, `nginx:latest@${D}`), []);
    assert.deepEqual(rules(policy, `nginx@${D}`), []);
    const strict = new ImagePolicy({ disallowedTags: ['latest'], digestSatisfiesTagRules: false });
    assert.deepEqual(rules(strict, `nginx:latest@${D}`), ['disallowed-tag']);
    assert.deepEqual(
      rules(new ImagePolicy({ disallowedTags: ['latest'], implicitLatestIsLatest: false }), 'nginx'),
      [],
    );
    assert.deepEqual(
      rules(new ImagePolicy({ disallowedTags: ['dev'] }), 'nginx'),
      [],
      'implicit-latest only when latest is listed',
    );
  });

  test('requireDigest needs a digest that parses (Gatekeeper accepts alpine@sha256:randomsha)', () => {
    const policy = new ImagePolicy({ requireDigest: true });
    assert.deepEqual(rules(policy, 'nginx:1.25'), ['missing-digest']);
    assert.deepEqual(rules(policy, `nginx:1.25@${D}`), []);
    assert.deepEqual(
      rules(policy, 'alpine@sha256:randomsha'),
      [],
      'unparseable: no rule runs unless invalid references are rejected',
    );
    const checked = new ImagePolicy({ requireDigest: true, digestMustBeValid: true });
    assert.deepEqual(rules(checked, 'alpine@sha256:randomsha'), ['invalid-reference']);
    assert.deepEqual(rules(checked, ''), ['invalid-reference']);
    assert.deepEqual(rules(checked, '  '), ['invalid-reference']);
    assert.deepEqual(
      rules(new ImagePolicy({ rejectInvalidReferences: true, disallowedTags: ['latest'] }), 'Nginx:latest'),
      ['invalid-reference'],
      'exactly one rule',
    );
  });

  test('allowed repositories match the normalized repository at path boundaries', () => {
    const policy = new ImagePolicy({
      allowedRepositories: ['docker.io/acme/*', 'quay.io/team/tool', 'registry.example.com:5000/*'],
    });
    assert.deepEqual(rules(policy, 'acme/web:1'), []);
    assert.deepEqual(rules(policy, 'docker.io/acme/web/deep:1'), []);
    assert.deepEqual(
      rules(policy, 'acmecorp/web:1'),
      ['registry-not-allowed'],
      'Gatekeeper k8sallowedrepos admits acmemalicious/x for "acme"',
    );
    assert.deepEqual(rules(policy, 'docker.io/acme'), ['registry-not-allowed'], 'the prefix itself is not below it');
    assert.deepEqual(
      rules(policy, `quay.io/team/tool:1@${D}`),
      [],
      'pinned images still pass (k8sallowedreposv2 exact entries stop matching)',
    );
    assert.deepEqual(rules(policy, 'quay.io/team/tool2'), ['registry-not-allowed']);
    assert.deepEqual(rules(policy, 'registry.example.com:5000/x/y:1'), []);
    assert.deepEqual(rules(policy, 'registry.example.com/x'), ['registry-not-allowed']);
    assert.deepEqual(rules(new ImagePolicy({ allowedRepositories: ['docker.io/*'] }), 'nginx'), []);
  });

  test('allowedRepositories entries must be normalized; "*" only as a final "/*"', () => {
    for (const entry of [
      'nginx',
      'acme/*',
      'docker.io/*/web',
      'quay.io/team*',
      'docker.io/library/nginx:1',
      'docker.io/library/Nginx',
    ]) {
      assert.throws(() => new ImagePolicy({ allowedRepositories: [entry] }), AdmissionConfigError, entry);
    }
    assert.throws(() => new ImagePolicy({ allowedRepositories: ['nginx'] }), /docker\.io\/library\/nginx/);
  });

  test('exempt images: exact, or prefix with a trailing *, on the image as written', () => {
    const policy = new ImagePolicy({ requireDigest: true, exemptImages: ['nginx:1.25', 'registry.k8s.io/*'] });
    assert.deepEqual(rules(policy, 'nginx:1.25'), []);
    assert.deepEqual(rules(policy, 'docker.io/library/nginx:1.25'), ['missing-digest'], 'as written, not normalized');
    assert.deepEqual(rules(policy, 'registry.k8s.io/pause:3.9'), []);
  });

  test('rules 3–5 are independent; enforcement decides allowed', () => {
    const config = { disallowedTags: ['latest'], requireDigest: true, allowedRepositories: ['quay.io/team/*'] };
    assert.deepEqual(rules(new ImagePolicy(config), 'nginx'), [
      'implicit-latest',
      'missing-digest',
      'registry-not-allowed',
    ]);
    assert.equal(new ImagePolicy(config).evaluate('nginx').allowed, false);
    assert.equal(new ImagePolicy({ ...config, enforcement: 'warn' }).evaluate('nginx').allowed, true);
  });

  test('validate(object, policy): records in slot order with path, rule, image and container', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        initContainers: [{ name: 'i', image: 'nginx' }],
        containers: [
          { name: 'c', image: 'nginx:latest' },
          { name: 'ok', image: 'nginx:1' },
        ],
        volumes: [{ name: 'v', image: { reference: 'data:latest' } }],
      },
    };
    assert.deepEqual(validate(pod, { disallowedTags: ['latest'] }), [
      { path: 'spec.initContainers[0].image', rule: 'implicit-latest', image: 'nginx', container: 'i' },
      { path: 'spec.containers[0].image', rule: 'disallowed-tag', image: 'nginx:latest', container: 'c' },
      { path: 'spec.volumes[0].image.reference', rule: 'disallowed-tag', image: 'data:latest', container: 'v' },
    ]);
    assert.deepEqual(
      validate({ apiVersion: 'v1', kind: 'ConfigMap', data: { image: 'nginx' } }, { disallowedTags: ['latest'] }),
      [],
    );
  });

  test('unknown policy keys and values are errors naming them', () => {
    assert.throws(() => new ImagePolicy({ enforcement: 'audit' } as never), /validate\.enforcement/);
    assert.throws(() => new ImagePolicy({ requireDigests: true } as never), /validate\.requireDigests: unknown key/);
  });
});
