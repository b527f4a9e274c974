import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { PullSecretError, keyringFromPullSecrets, type SecretObject } from './index.ts';
import { parsePullSecret } from './secrets.ts';
import { type KubeletDockerConfig } from './kubelet-config.ts';

/** A credential's fields as plain data (deepEqual does not see private fields). */
const plain = (config: KubeletDockerConfig) =>
  config.map(([key, c]) => [key, { username: c.username, password: c.password, email: c.email }] as const);

const PASSWORD = 'Sup3r-S3cret-Pa55';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const dockerConfigJson = (auths: object) => JSON.stringify({ auths });

function jsonSecret(name: string, auths: object, extra: Partial<SecretObject> = {}): SecretObject {
  return {
    metadata: { name, namespace: 'team-a', uid: `uid-${name}` },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(dockerConfigJson(auths)) },
    ...extra,
  };
}

/** Asserts `fn` throws a PullSecretError for team-a/<name> whose every rendering omits the secret. */
function assertSecretError(fn: () => unknown, name: string, problem: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PullSecretError);
    assert.equal(err.code, 'credentials.ErrInvalidPullSecret');
    assert.equal(err.namespace, 'team-a');
    assert.equal(err.secretName, name);
    assert.equal(err.name, 'PullSecretError');
    assert.match(err.message, new RegExp(`team-a/${name}`));
    assert.match(err.problem, problem);
    for (const rendering of [err.message, err.stack ?? '', inspect(err), JSON.stringify(err)]) {
      assert.ok(!rendering.includes(PASSWORD), `secret leaked: ${rendering}`);
      assert.ok(!rendering.includes(b64(`user:${PASSWORD}`)), 'encoded secret leaked');
    }
    return true;
  });
}

describe('pull secrets: usable types (docs/semantics.md kubelet §8.1)', () => {
  it('reads kubernetes.io/dockerconfigjson from base64 data', () => {
    const parsed = parsePullSecret(jsonSecret('regcred', { 'reg.example.com': { auth: b64(`user:${PASSWORD}`) } }));
    assert.ok(parsed);
    assert.deepEqual(parsed.source, { kind: 'secret', namespace: 'team-a', name: 'regcred', uid: 'uid-regcred' });
    assert.deepEqual(plain(parsed.config), [['reg.example.com', { username: 'user', password: PASSWORD, email: '' }]]);
  });

  it('reads stringData (as written in manifests), which wins over data', () => {
    const parsed = parsePullSecret({
      metadata: { name: 'plain', namespace: 'team-a' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64(dockerConfigJson({ 'old.example.com': { username: 'old' } })) },
      stringData: { '.dockerconfigjson': dockerConfigJson({ 'new.example.com': { username: 'new', password: 'p' } }) },
    });
    assert.deepEqual(
      parsed?.config.map(([key]) => key),
      ['new.example.com'],
    );
  });

  it('reads kubernetes.io/dockercfg (.dockercfg, the bare map)', () => {
    const parsed = parsePullSecret({
      metadata: { name: 'legacy', namespace: 'team-a' },
      type: 'kubernetes.io/dockercfg',
      data: {
        '.dockercfg': b64(JSON.stringify({ 'https://index.docker.io/v1/': { auth: b64('hub:pw'), email: 'a@b.c' } })),
      },
    });
    assert.deepEqual(plain(parsed?.config ?? []), [
      ['https://index.docker.io/v1/', { username: 'hub', password: 'pw', email: 'a@b.c' }],
    ]);
  });

  const ignored: [string, SecretObject][] = [
    ['an Opaque secret', { metadata: { name: 'o' }, type: 'Opaque', data: { '.dockerconfigjson': b64('{}') } }],
    ['a secret without type', { metadata: { name: 'o' }, data: { '.dockerconfigjson': b64('{}') } }],
    ['dockerconfigjson without the key', { metadata: { name: 'o' }, type: 'kubernetes.io/dockerconfigjson', data: {} }],
    [
      'dockerconfigjson with an empty value',
      { metadata: { name: 'o' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '' } },
    ],
    [
      'dockerconfigjson carrying only .dockercfg',
      { metadata: { name: 'o' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockercfg': b64('not json') } },
    ],
    [
      'dockercfg carrying only .dockerconfigjson',
      { metadata: { name: 'o' }, type: 'kubernetes.io/dockercfg', data: { '.dockerconfigjson': b64('not json') } },
    ],
  ];
  for (const [why, secret] of ignored) {
    it(`ignores ${why}`, () => {
      assert.equal(parsePullSecret(secret), undefined);
    });
  }

  it('names the default namespace when metadata has none', () => {
    const parsed = parsePullSecret({
      metadata: { name: 'n' },
      type: 'kubernetes.io/dockerconfigjson',
      stringData: { '.dockerconfigjson': '{}' },
    });
    assert.equal(parsed?.source.namespace, 'default');
    assert.equal(
      parsePullSecret(
        { metadata: { name: 'n' }, type: 'kubernetes.io/dockercfg', stringData: { '.dockercfg': '{}' } },
        { defaultNamespace: 'ns' },
      )?.source.namespace,
      'ns',
    );
  });
});

describe('pull secrets: malformed content → PullSecretError naming the secret, never its value', () => {
  it('invalid JSON', () => {
    const secret = {
      ...jsonSecret('broken', {}),
      data: { '.dockerconfigjson': b64(`{"auths": {"r": {"password": "${PASSWORD}"`) },
    };
    assertSecretError(() => parsePullSecret(secret), 'broken', /\.dockerconfigjson is not valid JSON/);
  });

  it('invalid base64 in data', () => {
    const secret = { ...jsonSecret('b64', {}), data: { '.dockerconfigjson': `${PASSWORD}!!` } };
    assertSecretError(() => parsePullSecret(secret), 'b64', /data\["\.dockerconfigjson"\]: illegal base64/);
  });

  it('an auth field without a colon', () => {
    const secret = jsonSecret('nocolon', { 'reg.example.com': { auth: b64(`user${PASSWORD}`) } });
    assertSecretError(
      () => parsePullSecret(secret),
      'nocolon',
      /auths\["reg\.example\.com"\]\.auth: unable to parse auth field/,
    );
  });

  it('an auth field that is not base64', () => {
    const secret = jsonSecret('badauth', { 'reg.example.com': { auth: `user:${PASSWORD}` } });
    assertSecretError(() => parsePullSecret(secret), 'badauth', /auth: illegal base64 data at input byte 4/);
  });

  it('a wrongly typed field', () => {
    const secret = jsonSecret('types', { 'reg.example.com': { username: 'u', password: [PASSWORD] } });
    assertSecretError(() => parsePullSecret(secret), 'types', /password: expected a string, found array/);
  });

  it('auths that is not an object', () => {
    const secret = {
      ...jsonSecret('auths', {}),
      stringData: { '.dockerconfigjson': JSON.stringify({ auths: [PASSWORD] }) },
    };
    assertSecretError(() => parsePullSecret(secret), 'auths', /auths: expected an object, found array/);
  });

  it('data values that are not strings', () => {
    const secret = {
      metadata: { name: 'data', namespace: 'team-a' },
      type: 'kubernetes.io/dockercfg',
      data: { '.dockercfg': 42 },
    };
    assertSecretError(() => parsePullSecret(secret), 'data', /expected a base64 string, found number/);
  });

  it('a value that is not an object at all', () => {
    assert.throws(() => parsePullSecret('apiVersion: v1'), PullSecretError);
  });
});

describe("pull secrets: one keyring for all of a pod's secrets", () => {
  it('adds usable secrets in order and skips the others', () => {
    const keyring = keyringFromPullSecrets([
      jsonSecret('first', { 'reg.example.com': { username: 'one', password: 'p1' } }),
      { metadata: { name: 'opaque' }, type: 'Opaque' },
      jsonSecret('second', {
        'https://reg.example.com/v1/': { username: 'two', password: 'p2' },
        'quay.io': { username: 'q', password: 'p' },
      }),
    ]);
    const matches = keyring.lookup('reg.example.com/app');
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.sourceLabel]),
      [
        ['one', 'secret team-a/first'],
        ['two', 'secret team-a/second'],
      ],
    );
  });

  it('fails the whole lookup on one malformed usable secret', () => {
    assert.throws(
      () => keyringFromPullSecrets([jsonSecret('good', {}), jsonSecret('bad', { r: { auth: 'x' } })]),
      (err: unknown) => err instanceof PullSecretError && err.secretName === 'bad',
    );
  });
});
