import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAdmissionConfig, parseMutateConfig, parseResolverConfig } from './config.ts';
import { AdmissionConfigError } from './errors.ts';

describe('admission configuration (docs/semantics.md admission §3)', () => {
  test('an empty object takes every default', () => {
    const config = parseAdmissionConfig({});
    assert.deepEqual(config.mutate, {
      outputFormat: 'preserve',
      resolve: 'index',
      skipPrefixes: [],
      onResolveError: 'deny',
      existingDigest: 'keep',
      onUpdate: 'changed-only',
      skipControllerOwned: ['apps/v1 ReplicaSet owned by apps/v1 Deployment'],
      ownNamespace: 'kimg-system',
      invalidReference: 'warn-and-skip',
      extraPodSpecPaths: {},
    });
    assert.deepEqual(config.resolver, {
      registryHosts: {},
      cacheTtlSeconds: 60,
      staleIfErrorSeconds: 0,
      registryTimeoutMs: 5000,
      budgetFraction: 0.8,
      maxBudgetMs: 8000,
      secretSource: 'none',
    });
    assert.equal(config.validate.enforcement, 'deny');
    assert.deepEqual(config.validate.disallowedTags, []);
    assert.equal(config.validate.requireDigest, false);
  });

  test('in a cluster: POD_NAMESPACE is the own namespace and Secrets come from an informer', () => {
    const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', POD_NAMESPACE: 'pinning' };
    const config = parseAdmissionConfig({}, { env });
    assert.equal(config.mutate.ownNamespace, 'pinning');
    assert.equal(config.resolver.secretSource, 'informer');
    assert.equal(parseAdmissionConfig({ mutate: { ownNamespace: 'x' } }, { env }).mutate.ownNamespace, 'x');
  });

  test('the example of docs/semantics.md admission §3 parses', () => {
    const config = parseAdmissionConfig({
      mutate: {
        outputFormat: 'preserve',
        onResolveError: 'deny',
        resolve: { platform: 'linux/arm64' },
        extraPodSpecPaths: { 'argoproj.io/Rollout': ['spec.template.spec'] },
      },
      validate: { enforcement: 'deny', disallowedTags: ['latest'], requireDigest: true },
      resolver: {
        registryHosts: {
          'ghcr.io': 'https://127.0.0.1:5443',
          'localhost:5000': 'http://127.0.0.1:5000/',
          '[::1]:5000': 'http://[::1]:5000',
        },
        secretSource: { file: '/x.yaml' },
      },
    });
    assert.deepEqual(config.mutate.resolve, { platform: 'linux/arm64' });
    assert.equal(config.resolver.registryHosts['localhost:5000'], 'http://127.0.0.1:5000');
    assert.deepEqual(config.resolver.secretSource, { file: '/x.yaml' });
  });

  test('unknown keys and values are errors naming them', () => {
    const cases: [unknown, RegExp][] = [
      [{ mutat: {} }, /^invalid admission configuration: mutat: unknown key/],
      [{ mutate: { outputFormat: 'short' } }, /mutate\.outputFormat: unknown value "short"/],
      [{ mutate: { resolve: 'platform' } }, /mutate\.resolve/],
      [{ mutate: { resolve: { platform: 'linux' } } }, /mutate\.resolve\.platform: expected os\/arch/],
      [{ mutate: { skipControllerOwned: ['ReplicaSet by Deployment'] } }, /skipControllerOwned\[0\]/],
      [{ mutate: { extraPodSpecPaths: { Rollout: ['spec.template.spec'] } } }, /extraPodSpecPaths\["Rollout"\]/],
      [
        { mutate: { extraPodSpecPaths: { 'argoproj.io/Rollout': ['spec..spec'] } } },
        /extraPodSpecPaths\["argoproj.io\/Rollout"\]\[0\]/,
      ],
      [{ resolver: { cacheTtlSeconds: -1 } }, /resolver\.cacheTtlSeconds/],
      [{ resolver: { staleIfErrorSeconds: -5 } }, /resolver\.staleIfErrorSeconds: expected a whole number of seconds/],
      [{ resolver: { staleIfErrorSeconds: 1.5 } }, /resolver\.staleIfErrorSeconds/],
      [{ resolver: { staleIfErrorSeconds: '300' } }, /resolver\.staleIfErrorSeconds/],
      [{ resolver: { hostsDir: '' } }, /resolver\.hostsDir: expected a non-empty string/],
      [
        { resolver: { registriesConf: ['/etc/containers/registries.conf'] } },
        /resolver\.registriesConf: expected a non-empty string/,
      ],
      [{ resolver: { budgetFraction: 1.5 } }, /resolver\.budgetFraction/],
      [{ resolver: { registryHosts: { 'ghcr.io': 'ftp://x' } } }, /registryHosts\["ghcr.io"\]/],
      [{ resolver: { registryHosts: { 'GHCR.io/x': 'https://x' } } }, /registryHosts/],
      [{ resolver: { secretSource: 'kube' } }, /resolver\.secretSource/],
      [{ validate: { allowedRepositories: ['nginx'] } }, /validate\.allowedRepositories\[0\]/],
      [{ validate: { disallowedTags: 'latest' } }, /validate\.disallowedTags: expected a list/],
      [[], /expected a map/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => parseAdmissionConfig(input),
        (err: unknown) => err instanceof AdmissionConfigError && message.test(err.message),
        JSON.stringify(input),
      );
    }
  });

  test('sections parse alone (the CLI takes a validate section as a policy file)', () => {
    assert.equal(parseMutateConfig({ outputFormat: 'digest-only' }).outputFormat, 'digest-only');
    assert.equal(parseResolverConfig({ cacheTtlSeconds: 0 }).cacheTtlSeconds, 0);
  });

  test('stale-while-error and registry host configuration', () => {
    const resolver = parseResolverConfig({
      staleIfErrorSeconds: 600,
      hostsDir: '/etc/containerd/certs.d:/etc/docker/certs.d',
      registriesConf: '/etc/containers/registries.conf',
    });
    assert.equal(resolver.staleIfErrorSeconds, 600);
    assert.equal(resolver.hostsDir, '/etc/containerd/certs.d:/etc/docker/certs.d');
    assert.equal(resolver.registriesConf, '/etc/containers/registries.conf');
    assert.equal('hostsDir' in parseResolverConfig({}), false);
  });
});
