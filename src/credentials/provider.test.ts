import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  BasicCredential,
  CredentialProviderError,
  CredentialProviders,
  ProviderConfigError,
  parseCredentialProviderConfig,
  parseGoDuration,
} from './index.ts';
import { CredentialProviderPlugin } from './provider.ts';
import { parseProviderResponse } from './provider-response.ts';
import { type CredentialProviderSpec } from './provider-config.ts';
import { type KubeletDockerConfig } from './kubelet-config.ts';

/** A credential's fields as plain data (deepEqual does not see private fields). */
const plain = (config: KubeletDockerConfig) =>
  config.map(([key, c]) => [key, { username: c.username, password: c.password, email: c.email }] as const);

import { CACHE_PURGE_INTERVAL_MS, ProviderCache } from './provider-cache.ts';

const SECRET = 'plugin-s3cret-password';
const V1 = 'credentialprovider.kubelet.k8s.io/v1';

describe('parseGoDuration (metav1.Duration)', () => {
  const ok: [string, bigint][] = [
    ['0', 0n],
    ['0s', 0n],
    ['12h', 12n * 3_600_000_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['300ms', 300_000_000n],
    ['1µs', 1_000n],
    ['1us', 1_000n],
    ['.5s', 500_000_000n],
    ['1.s', 1_000_000_000n],
    ['-1s', -1_000_000_000n],
    ['+2m', 120_000_000_000n],
    ['9223372036854775807ns', 9223372036854775807n],
  ];
  for (const [text, ns] of ok) it(`${text} = ${ns} ns`, () => assert.equal(parseGoDuration(text), ns));
  for (const text of ['', '1', '.s', 's', '1d', '1 s', '-', '1h-1m', '9223372036854775808ns', '3000000h']) {
    it(`${JSON.stringify(text)} is invalid`, () => assert.equal(parseGoDuration(text), undefined));
  }
});

const validProvider = {
  name: 'ecr-credential-provider',
  matchImages: ['*.dkr.ecr.*.amazonaws.com', 'registry.example.com:5000/team'],
  defaultCacheDuration: '12h',
  apiVersion: V1,
  args: ['get-credentials'],
  env: [{ name: 'AWS_PROFILE', value: 'temp' }],
};
const configWith = (...providers: unknown[]) => ({
  apiVersion: 'kubelet.config.k8s.io/v1',
  kind: 'CredentialProviderConfig',
  providers,
});

describe('CredentialProviderConfig validation (docs/semantics.md kubelet §9)', () => {
  it('accepts a valid config', () => {
    const config = parseCredentialProviderConfig(configWith(validProvider));
    assert.deepEqual(config.providers[0], {
      name: 'ecr-credential-provider',
      matchImages: ['*.dkr.ecr.*.amazonaws.com', 'registry.example.com:5000/team'],
      defaultCacheDurationMs: 12 * 3600 * 1000,
      apiVersion: V1,
      args: ['get-credentials'],
      env: [{ name: 'AWS_PROFILE', value: 'temp' }],
      tokenAttributes: undefined,
    });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['no providers', configWith(), /at least 1 item in plugins is required/],
    ['wrong kind', { ...configWith(validProvider), kind: 'Other' }, /kind: must be "CredentialProviderConfig"/],
    ['wrong apiVersion', { ...configWith(validProvider), apiVersion: 'v1' }, /apiVersion: must be one of/],
    ['name with /', configWith({ ...validProvider, name: 'bin/x' }), /provider name cannot contain '\/'/],
    ['name with space', configWith({ ...validProvider, name: 'a b' }), /provider name cannot contain spaces/],
    ['name "."', configWith({ ...validProvider, name: '.' }), /provider name cannot be '\.'/],
    ['name ".."', configWith({ ...validProvider, name: '..' }), /provider name cannot be '\.\.'/],
    ['empty name', configWith({ ...validProvider, name: '' }), /name: Required value/],
    ['duplicate names', configWith(validProvider, validProvider), /Duplicate value: "ecr-credential-provider"/],
    ['missing apiVersion', configWith({ ...validProvider, apiVersion: undefined }), /apiVersion: Required value/],
    [
      'unknown apiVersion',
      configWith({ ...validProvider, apiVersion: 'credentialprovider.kubelet.k8s.io/v2' }),
      /Unsupported value/,
    ],
    ['no matchImages', configWith({ ...validProvider, matchImages: [] }), /at least 1 item in matchImages is required/],
    [
      'unparseable matchImage',
      configWith({ ...validProvider, matchImages: ['reg.example.com/%zz'] }),
      /match image is invalid/,
    ],
    [
      'missing defaultCacheDuration',
      configWith({ ...validProvider, defaultCacheDuration: undefined }),
      /defaultCacheDuration: Required value/,
    ],
    [
      'negative defaultCacheDuration',
      configWith({ ...validProvider, defaultCacheDuration: '-1m' }),
      /must be greater than or equal to 0/,
    ],
    ['bad defaultCacheDuration', configWith({ ...validProvider, defaultCacheDuration: '1d' }), /invalid duration "1d"/],
    [
      'tokenAttributes without audience',
      configWith({ ...validProvider, tokenAttributes: {} }),
      /serviceAccountTokenAudience: Required value/,
    ],
  ];
  for (const [why, document, problem] of invalid) {
    it(`rejects ${why}`, () => {
      assert.throws(
        () => parseCredentialProviderConfig(document, '/etc/kubernetes/credential-providers.yaml'),
        (err: unknown) => {
          assert.ok(err instanceof ProviderConfigError);
          assert.equal(err.code, 'credentials.ErrInvalidProviderConfig');
          assert.match(err.message, /\/etc\/kubernetes\/credential-providers\.yaml/);
          assert.match(err.message, problem);
          return true;
        },
      );
    });
  }

  it('lists every problem at once and never echoes env values', () => {
    const document = configWith({ name: '', matchImages: [], env: [{ name: 'TOKEN', value: 5 }], apiVersion: 'x' });
    assert.throws(
      () => parseCredentialProviderConfig(document),
      (err: unknown) => {
        assert.ok(err instanceof ProviderConfigError);
        assert.ok(err.problems.length >= 4, err.problems.join('\n'));
        return true;
      },
    );
    const withSecretEnv = configWith({ ...validProvider, name: '', env: [{ name: 'TOKEN', value: SECRET }] });
    assert.throws(
      () => parseCredentialProviderConfig(withSecretEnv),
      (err: unknown) => err instanceof Error && !err.message.includes(SECRET),
    );
  });
});

describe('CredentialProviderResponse parsing', () => {
  const response = (extra: object) =>
    JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderResponse', cacheKeyType: 'Image', ...extra });

  it('reads cacheKeyType, cacheDuration and the auth map in order', () => {
    const parsed = parseProviderResponse(
      response({
        cacheDuration: '5m',
        auth: { 'b.example.com': { username: 'b', password: SECRET }, 'a.example.com': null },
      }),
      V1,
    );
    assert.equal(parsed.cacheKeyType, 'Image');
    assert.equal(parsed.cacheDurationMs, 300_000);
    assert.deepEqual(plain(parsed.auth), [
      ['b.example.com', { username: 'b', password: SECRET, email: '' }],
      ['a.example.com', { username: '', password: '', email: '' }],
    ]);
  });

  const bad: [string, string, RegExp][] = [
    [
      'apiVersion mismatch',
      JSON.stringify({
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1',
        kind: 'CredentialProviderResponse',
        cacheKeyType: 'Image',
      }),
      /did not match expected apiVersion/,
    ],
    ['wrong kind', JSON.stringify({ apiVersion: V1, kind: 'Other', cacheKeyType: 'Image' }), /unexpected Kind/],
    [
      'unknown cacheKeyType',
      response({ cacheKeyType: 'ServiceAccount' }),
      /did not return a valid cacheKeyType: "ServiceAccount"/,
    ],
    ['empty cacheKeyType', response({ cacheKeyType: '' }), /did not return a valid cacheKeyType/],
    ['missing cacheKeyType', response({ cacheKeyType: undefined }), /did not return a valid cacheKeyType/],
    ['bad cacheDuration', response({ cacheDuration: 'soon' }), /cacheDuration: not a valid duration/],
    ['wrong auth type', response({ auth: { r: { password: 5 } } }), /auth\["r"\]\.password: expected a string/],
    ['invalid JSON', `{"auth": {"r": {"password": "${SECRET}"`, /response is not valid JSON/],
  ];
  for (const [why, stdout, problem] of bad) {
    it(`drops a response with ${why}`, () => {
      assert.throws(
        () => parseProviderResponse(stdout, V1),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, problem);
          assert.ok(!err.message.includes(SECRET));
          return true;
        },
      );
    });
  }

  it('never shows a value in the apiVersion position that does not look like one', () => {
    assert.throws(
      () =>
        parseProviderResponse(JSON.stringify({ apiVersion: `x ${SECRET} y`, kind: 'CredentialProviderResponse' }), V1),
      (err: unknown) => {
        return err instanceof Error && !err.message.includes(SECRET);
      },
    );
  });
});

describe('ProviderCache', () => {
  it('looks up image, then registry, then global, and expires strictly after the deadline', () => {
    let now = 1_000;
    const cache = new ProviderCache(() => now);
    const entry: KubeletDockerConfig = [['r', new BasicCredential('u', 'p')]];
    cache.set('global', entry, 2_000);
    assert.equal(cache.get('any.example.com/x'), entry);
    now = 2_000;
    assert.equal(cache.get('any.example.com/x'), entry, 'valid at the exact expiry instant');
    now = 2_001;
    assert.equal(cache.get('any.example.com/x'), undefined);
    assert.equal(cache.size, 0, 'expired entries are removed on lookup');
  });

  it('purges every expired entry at most every 15 minutes', () => {
    let now = 0;
    const cache = new ProviderCache(() => now);
    cache.set('a.example.com/x', [], 10);
    cache.set('b.example.com/x', [], 10);
    now = 100;
    cache.get('c.example.com/x');
    assert.equal(cache.size, 2, 'no sweep before the interval');
    now = CACHE_PURGE_INTERVAL_MS + 1;
    cache.get('c.example.com/x');
    assert.equal(cache.size, 0);
  });
});

describe('credential provider plugins (real plugin program)', () => {
  let binDir: string;
  let state: string;
  let responseFile: string;
  let now: number;
  let errors: CredentialProviderError[];

  const PLUGIN = `#!/bin/sh
request=$(cat)
printf '%s\\n' "$request" >> "$PLUGIN_STATE/requests"
printf '%s|%s\\n' "$*" "$MY_SETTING" >> "$PLUGIN_STATE/runs"
case "$PLUGIN_MODE" in
  fail) printf '${SECRET}'; exit 4 ;;
  slow) exec sleep 30 ;;
esac
cat "$PLUGIN_RESPONSE"
`;

  before(async () => {
    binDir = await mkdtemp(join(tmpdir(), 'kimg-plugins-'));
    await writeFile(join(binDir, 'test-plugin'), PLUGIN);
    await chmod(join(binDir, 'test-plugin'), 0o755);
    await writeFile(join(binDir, 'test-plugin-2'), PLUGIN);
    await chmod(join(binDir, 'test-plugin-2'), 0o755);
    await writeFile(join(binDir, 'not-executable'), PLUGIN);
  });

  after(async () => {
    await rm(binDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'kimg-plugin-state-'));
    responseFile = join(state, 'response.json');
    now = 1_700_000_000_000;
    errors = [];
  });

  const respond = (extra: object) =>
    writeFile(
      responseFile,
      JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderResponse', cacheKeyType: 'Image', ...extra }),
    );
  const spec = (extra: Partial<CredentialProviderSpec> = {}): CredentialProviderSpec => ({
    name: 'test-plugin',
    matchImages: ['*.example.com', 'docker.io'],
    defaultCacheDurationMs: 0,
    apiVersion: V1,
    args: ['--flag', 'value'],
    env: [
      { name: 'PLUGIN_RESPONSE', value: responseFile },
      { name: 'MY_SETTING', value: 'from-config' },
    ],
    tokenAttributes: undefined,
    ...extra,
  });
  const plugin = (extra: Partial<CredentialProviderSpec> = {}, env: Record<string, string> = {}, timeoutMs?: number) =>
    new CredentialProviderPlugin(spec(extra), {
      binDir,
      clock: () => now,
      env: { PATH: process.env['PATH'], PLUGIN_STATE: state, MY_SETTING: 'inherited', ...env },
      onError: (err) => errors.push(err),
      timeoutMs,
    });
  const runs = async () => (await readFile(join(state, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const users = (config: readonly (readonly [string, { username: string }])[]) =>
    config.map(([key, entry]) => `${key}=${entry.username}`);

  it('sends a CredentialProviderRequest on stdin with args and env (config env overrides inherited)', async () => {
    await respond({ auth: { 'reg.example.com': { username: 'u', password: SECRET } } });
    const config = await plugin().provide('reg.example.com/team/app');
    assert.deepEqual(users(config), ['reg.example.com=u']);
    const [request] = (await readFile(join(state, 'requests'), 'utf8')).trim().split('\n');
    assert.deepEqual(JSON.parse(request ?? ''), {
      apiVersion: V1,
      kind: 'CredentialProviderRequest',
      image: 'reg.example.com/team/app',
    });
    assert.deepEqual(await runs(), ['--flag value|from-config']);
    assert.deepEqual(errors, []);
  });

  it('runs only when a matchImages glob matches, with no Docker Hub fallback', async () => {
    await respond({ auth: { 'index.docker.io': { username: 'hub', password: 'p' } } });
    assert.deepEqual(await plugin().provide('quay.io/app'), []);
    assert.deepEqual(await plugin({ matchImages: ['index.docker.io'] }).provide('docker.io/library/nginx'), []);
    assert.deepEqual(await runs(), []);
    assert.deepEqual(users(await plugin().provide('docker.io/library/nginx')), ['index.docker.io=hub']);
  });

  it('feeds a keyring whose lookup applies the keyring rules and labels the source', async () => {
    await respond({
      auth: {
        '*.example.com': { username: 'glob', password: 'p' },
        'https://index.docker.io/v1/': { username: 'hub', password: 'p' },
      },
    });
    const providers = new CredentialProviders(
      { providers: [spec()] },
      { binDir, clock: () => now, env: { PATH: process.env['PATH'], PLUGIN_STATE: state } },
    );
    const matches = await providers.lookup('docker.io/library/nginx');
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.sourceLabel, m.viaDockerHubFallback]),
      [['hub', 'credential provider test-plugin', true]],
    );
    const regMatches = await providers.lookup({ domain: 'reg.example.com', path: 'app' });
    assert.deepEqual(
      regMatches.map((m) => m.credential.username),
      ['glob'],
    );
  });

  it('caches by image for cacheDuration, using the injected clock', async () => {
    await respond({ cacheDuration: '10m', auth: { 'reg.example.com': { username: 'first', password: 'p' } } });
    const p = plugin();
    assert.deepEqual(users(await p.provide('reg.example.com/app')), ['reg.example.com=first']);
    await respond({ cacheDuration: '10m', auth: { 'reg.example.com': { username: 'second', password: 'p' } } });
    now += 10 * 60_000;
    assert.deepEqual(
      users(await p.provide('reg.example.com/app')),
      ['reg.example.com=first'],
      'still cached at the deadline',
    );
    assert.equal((await runs()).length, 1);
    assert.deepEqual(
      users(await p.provide('reg.example.com/other')),
      ['reg.example.com=second'],
      'Image key: another image runs again',
    );
    now += 1;
    assert.deepEqual(users(await p.provide('reg.example.com/app')), ['reg.example.com=second'], 'expired');
    assert.equal((await runs()).length, 3);
  });

  it('caches by registry and globally as cacheKeyType says', async () => {
    await respond({
      cacheKeyType: 'Registry',
      cacheDuration: '1h',
      auth: { 'reg.example.com': { username: 'r', password: 'p' } },
    });
    const byRegistry = plugin();
    await byRegistry.provide('reg.example.com/a');
    await byRegistry.provide('reg.example.com/b/c');
    await byRegistry.provide('other.example.com/a');
    assert.equal((await runs()).length, 2);

    await respond({
      cacheKeyType: 'Global',
      cacheDuration: '1h',
      auth: { '*.example.com': { username: 'g', password: 'p' } },
    });
    const global = plugin();
    await global.provide('one.example.com/a');
    assert.deepEqual(users(await global.provide('two.example.com/b')), ['*.example.com=g']);
    assert.equal((await runs()).length, 3);
  });

  it('does not cache cacheDuration 0s, nor an absent duration when the default is 0', async () => {
    await respond({ cacheDuration: '0s', auth: {} });
    const zero = plugin({ defaultCacheDurationMs: 60_000 });
    await zero.provide('reg.example.com/a');
    await zero.provide('reg.example.com/a');
    assert.equal((await runs()).length, 2);

    await respond({ auth: {} });
    const noDefault = plugin({ defaultCacheDurationMs: 0 });
    await noDefault.provide('reg.example.com/a');
    await noDefault.provide('reg.example.com/a');
    assert.equal((await runs()).length, 4);
  });

  it('uses defaultCacheDuration when the response has none', async () => {
    await respond({ auth: {} });
    const p = plugin({ defaultCacheDurationMs: 60_000 });
    await p.provide('reg.example.com/a');
    now += 60_000;
    await p.provide('reg.example.com/a');
    assert.equal((await runs()).length, 1);
    now += 1;
    await p.provide('reg.example.com/a');
    assert.equal((await runs()).length, 2);
  });

  it('runs once for identical concurrent requests', async () => {
    await respond({ auth: { 'reg.example.com': { username: 'u', password: 'p' } } });
    const p = plugin();
    const answers = await Promise.all(Array.from({ length: 6 }, () => p.provide('reg.example.com/app')));
    assert.ok(answers.every((answer) => users(answer).join() === 'reg.example.com=u'));
    assert.equal((await runs()).length, 1);
  });

  it('drops a response with an unknown cacheKeyType and caches nothing', async () => {
    await respond({
      cacheKeyType: 'ServiceAccount',
      cacheDuration: '1h',
      auth: { 'reg.example.com': { username: 'u', password: SECRET } },
    });
    const p = plugin();
    assert.deepEqual(await p.provide('reg.example.com/app'), []);
    assert.deepEqual(await p.provide('reg.example.com/app'), []);
    assert.equal((await runs()).length, 2);
    assert.equal(errors[0]?.reason, 'invalid-response');
  });

  const failures: [string, () => CredentialProviderPlugin, string][] = [
    ['a non-zero exit (stdout holding a secret)', () => plugin({}, { PLUGIN_MODE: 'fail' }), 'failed'],
    ['a timeout', () => plugin({}, { PLUGIN_MODE: 'slow' }, 300), 'timeout'],
    ['a missing executable', () => plugin({ name: 'absent-plugin' }), 'not-installed'],
    ['a file that is not executable', () => plugin({ name: 'not-executable' }), 'not-installed'],
    [
      'an apiVersion mismatch',
      () => plugin({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1' }),
      'invalid-response',
    ],
  ];
  for (const [why, make, reason] of failures) {
    it(`yields no credentials and reports ${why}`, async () => {
      await respond({ auth: { 'reg.example.com': { username: 'u', password: SECRET } } });
      assert.deepEqual(await make().provide('reg.example.com/app'), []);
      assert.equal(errors.length, 1);
      const [err] = errors;
      assert.ok(err instanceof CredentialProviderError);
      assert.equal(err.code, 'credentials.ErrCredentialProvider');
      assert.equal(err.reason, reason);
      assert.equal(err.image, 'reg.example.com/app');
      assert.match(err.message, /reg\.example\.com\/app/);
      for (const rendering of [err.message, inspect(err), JSON.stringify(err)])
        assert.ok(!rendering.includes(SECRET), rendering);
    });
  }

  it('does not run a service-account-mode provider without a service account token source', async () => {
    await respond({ auth: {} });
    const p = plugin({
      tokenAttributes: {
        serviceAccountTokenAudience: 'aud',
        requireServiceAccount: true,
        requiredServiceAccountAnnotationKeys: [],
        optionalServiceAccountAnnotationKeys: [],
      },
    });
    assert.deepEqual(await p.provide('reg.example.com/app', { namespace: 'team', serviceAccountName: 'builder' }), []);
    assert.deepEqual(await runs(), []);
    assert.equal(errors[0]?.reason, 'unsupported');
  });

  it('merges every matching plugin into one keyring, in configuration order', async () => {
    await respond({ auth: { 'reg.example.com': { username: 'from-first', password: 'p' } } });
    const secondResponse = join(state, 'second.json');
    await writeFile(
      secondResponse,
      JSON.stringify({
        apiVersion: V1,
        kind: 'CredentialProviderResponse',
        cacheKeyType: 'Image',
        auth: { 'reg.example.com': { username: 'from-second', password: 'p' } },
      }),
    );
    const second = spec({
      name: 'test-plugin-2',
      matchImages: ['reg.example.com'],
      env: [{ name: 'PLUGIN_RESPONSE', value: secondResponse }],
    });
    const unmatched = spec({ name: 'test-plugin-3', matchImages: ['quay.io'] });
    const providers = new CredentialProviders(
      { providers: [spec(), second, unmatched] },
      { binDir, clock: () => now, env: { PATH: process.env['PATH'], PLUGIN_STATE: state } },
    );
    const matches = await providers.lookup('reg.example.com/app');
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.sourceLabel]),
      [
        ['from-first', 'credential provider test-plugin'],
        ['from-second', 'credential provider test-plugin-2'],
      ],
    );
    assert.equal((await runs()).length, 2);
  });
});
