// Credential provider plugins in service-account token mode (KEP-4412), with a real plugin
// program (a shell script) that records every request it gets and answers with a credential
// named after the token it was given.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { CredentialProviderError } from './errors.ts';
import { parseCredentialProviderConfig, type CredentialProviderSpec } from './provider-config.ts';
import { CredentialProviderPlugin, CredentialProviders } from './provider.ts';
import type { ServiceAccountAccess, ServiceAccountTokenRequest } from './service-account.ts';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';

/** Echoes the request to $STATE/requests; the password is the token (or "none"). */
const PLUGIN = `#!/bin/sh
request=$(cat)
printf '%s\\n' "$request" >> "$STATE/requests"
token=$(printf '%s' "$request" | sed -n 's/.*"serviceAccountToken":"\\([^"]*\\)".*/\\1/p')
printf '{"apiVersion":"${V1}","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"reg.example.com":{"username":"sa","password":"%s"}}}' "\${token:-none}"
`;

describe('credential provider plugins in service-account token mode (real plugin program)', () => {
  let binDir: string;
  let state: string;
  let errors: CredentialProviderError[];
  let tokenRequests: ServiceAccountTokenRequest[];

  const accounts: Record<string, { uid: string; annotations: Record<string, string> }> = {
    'team/builder': {
      uid: 'uid-builder',
      annotations: { 'example.com/role': 'pull', 'example.com/tier': 'gold', other: 'x' },
    },
    'team/plain': { uid: 'uid-plain', annotations: {} },
    'other/builder': { uid: 'uid-other', annotations: { 'example.com/role': 'push' } },
  };
  const access: ServiceAccountAccess = {
    getServiceAccount: async (namespace, name) => accounts[`${namespace}/${name}`],
    getServiceAccountToken: async (request) => {
      tokenRequests.push(request);
      return `token-${request.namespace}-${request.serviceAccountName}`;
    },
  };
  const spec = (tokenAttributes: Partial<NonNullable<CredentialProviderSpec['tokenAttributes']>> = {}) =>
    ({
      name: 'sa-plugin',
      matchImages: ['reg.example.com'],
      defaultCacheDurationMs: 60_000,
      apiVersion: V1,
      args: [],
      env: [],
      tokenAttributes: {
        serviceAccountTokenAudience: 'registry.example.com',
        requireServiceAccount: true,
        requiredServiceAccountAnnotationKeys: ['example.com/role'],
        optionalServiceAccountAnnotationKeys: ['example.com/tier', 'example.com/absent'],
        ...tokenAttributes,
      },
    }) satisfies CredentialProviderSpec;
  const plugin = (s = spec(), withAccess = true) =>
    new CredentialProviderPlugin(s, {
      binDir,
      env: { PATH: process.env['PATH'], STATE: state },
      onError: (err) => errors.push(err),
      ...(withAccess && { serviceAccounts: access }),
    });
  const requests = async () =>
    (await readFile(join(state, 'requests'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const pod = (namespace: string, serviceAccountName?: string) => ({
    namespace,
    name: 'web-0',
    uid: 'pod-uid-1',
    ...(serviceAccountName !== undefined && { serviceAccountName }),
  });

  before(async () => {
    binDir = await mkdtemp(join(tmpdir(), 'kimg-sa-plugins-'));
    await writeFile(join(binDir, 'sa-plugin'), PLUGIN);
    await chmod(join(binDir, 'sa-plugin'), 0o755);
  });
  after(() => rm(binDir, { recursive: true, force: true }));
  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'kimg-sa-state-'));
    errors = [];
    tokenRequests = [];
  });

  it("sends the pod's service account token and the selected annotations; credentials carry the account", async () => {
    const answer = await plugin().answer('reg.example.com/team/app', pod('team', 'builder'));
    assert.deepEqual(await requests(), [
      {
        apiVersion: V1,
        kind: 'CredentialProviderRequest',
        image: 'reg.example.com/team/app',
        serviceAccountToken: 'token-team-builder',
        serviceAccountAnnotations: { 'example.com/role': 'pull', 'example.com/tier': 'gold' },
      },
    ]);
    assert.deepEqual(tokenRequests, [
      {
        namespace: 'team',
        serviceAccountName: 'builder',
        audience: 'registry.example.com',
        podName: 'web-0',
        podUid: 'pod-uid-1',
      },
    ]);
    assert.equal(answer.auth[0]?.[1].password, 'token-team-builder');
    assert.deepEqual(answer.source, {
      kind: 'serviceAccount',
      namespace: 'team',
      name: 'builder',
      uid: 'uid-builder',
      provider: 'sa-plugin',
    });
    assert.deepEqual(errors, []);
  });

  it('caches per service account: the same account is answered from the cache, another runs the plugin', async () => {
    const p = plugin();
    await p.answer('reg.example.com/team/app', pod('team', 'builder'));
    await p.answer('reg.example.com/team/other', pod('team', 'builder'));
    assert.equal((await requests()).length, 1, 'Registry cache key, same account');
    const other = await p.answer('reg.example.com/team/app', pod('other', 'builder'));
    assert.equal((await requests()).length, 2, 'another account is another cache entry');
    assert.equal(other.auth[0]?.[1].password, 'token-other-builder');
  });

  it('runs nothing when the pod has no service account and one is required, or a required annotation is missing', async () => {
    assert.deepEqual((await plugin().answer('reg.example.com/app', pod('team'))).auth, []);
    assert.deepEqual((await plugin().answer('reg.example.com/app', pod('team', 'plain'))).auth, []);
    assert.deepEqual(await requests(), []);
    assert.deepEqual(errors, [], 'opting out is not an error');
  });

  it('without requireServiceAccount a pod with no service account runs the plugin without a token', async () => {
    const p = plugin(spec({ requireServiceAccount: false, requiredServiceAccountAnnotationKeys: [] }));
    const answer = await p.answer('reg.example.com/app', pod('team'));
    assert.deepEqual(await requests(), [
      { apiVersion: V1, kind: 'CredentialProviderRequest', image: 'reg.example.com/app' },
    ]);
    assert.deepEqual(answer.source, { kind: 'plugin', provider: 'sa-plugin' });
  });

  it('an unknown account or no token source: not run, reported', async () => {
    assert.deepEqual((await plugin().answer('reg.example.com/app', pod('team', 'ghost'))).auth, []);
    assert.deepEqual((await plugin(spec(), false).answer('reg.example.com/app', pod('team', 'builder'))).auth, []);
    assert.deepEqual(await requests(), []);
    assert.deepEqual(
      errors.map((e) => e.reason),
      ['unsupported', 'unsupported'],
    );
    assert.match(errors[0]?.message ?? '', /service account team\/ghost not found/);
  });

  it('CredentialProviders.lookup gives keyring matches sourced from the service account', async () => {
    const providers = new CredentialProviders(
      { providers: [spec()] },
      { binDir, env: { PATH: process.env['PATH'], STATE: state }, serviceAccounts: access },
    );
    const [match] = await providers.lookup('reg.example.com/team/app', pod('team', 'builder'));
    assert.equal(match?.source.kind, 'serviceAccount');
    assert.equal(match?.sourceLabel, 'credential provider sa-plugin for service account team/builder');
  });

  it('validates tokenAttributes as the kubelet does', () => {
    const config = (tokenAttributes: object, apiVersion = V1) => ({
      apiVersion: 'kubelet.config.k8s.io/v1',
      kind: 'CredentialProviderConfig',
      providers: [
        { name: 'p', matchImages: ['reg.example.com'], defaultCacheDuration: '1m', apiVersion, tokenAttributes },
      ],
    });
    const problems = (document: unknown): string => {
      try {
        parseCredentialProviderConfig(document);
      } catch (err) {
        return String(err);
      }
      return '';
    };
    assert.match(problems(config({ serviceAccountTokenAudience: 'a' })), /requireServiceAccount is required/);
    assert.match(
      problems(
        config(
          { serviceAccountTokenAudience: 'a', requireServiceAccount: true },
          'credentialprovider.kubelet.k8s.io/v1beta1',
        ),
      ),
      /only supported for credentialprovider\.kubelet\.k8s\.io\/v1/,
    );
    assert.match(
      problems(
        config({
          serviceAccountTokenAudience: 'a',
          requireServiceAccount: false,
          requiredServiceAccountAnnotationKeys: ['k'],
        }),
      ),
      /requireServiceAccount cannot be false/,
    );
    assert.match(
      problems(
        config({
          serviceAccountTokenAudience: 'a',
          requireServiceAccount: true,
          requiredServiceAccountAnnotationKeys: ['k'],
          optionalServiceAccountAnnotationKeys: ['k'],
        }),
      ),
      /both required and optional/,
    );
    assert.equal(problems(config({ serviceAccountTokenAudience: 'a', requireServiceAccount: true })), '');
  });
});
