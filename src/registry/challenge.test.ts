import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ChallengeTooLargeError,
  MAX_CHALLENGE_BYTES,
  formatScope,
  mergeScopes,
  parseChallenges,
  parseScope,
  parseScopes,
  pickChallenge,
  type Challenge,
} from './challenge.ts';

const bearer = (params: Record<string, string>): Challenge => ({ scheme: 'bearer', params });

describe('parseChallenges', () => {
  const cases: Array<[string, string | string[], Challenge[]]> = [
    [
      'Docker Hub style',
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      [
        bearer({
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        }),
      ],
    ],
    ['Basic', 'Basic realm="test-registry"', [{ scheme: 'basic', params: { realm: 'test-registry' } }]],
    ['case-insensitive scheme and names', 'BEARER Realm="r", SERVICE="s"', [bearer({ realm: 'r', service: 's' })]],
    [
      'two challenges in one header',
      'Basic realm="b", Bearer realm="https://a/token", service="svc"',
      [{ scheme: 'basic', params: { realm: 'b' } }, bearer({ realm: 'https://a/token', service: 'svc' })],
    ],
    [
      'two headers',
      ['Basic realm="b"', 'Bearer realm="r"'],
      [{ scheme: 'basic', params: { realm: 'b' } }, bearer({ realm: 'r' })],
    ],
    [
      'comma inside quotes',
      'Bearer realm="r",scope="repository:a:pull,push"',
      [bearer({ realm: 'r', scope: 'repository:a:pull,push' })],
    ],
    ['backslash escapes', 'Bearer realm="a\\"b\\\\c", service="x"', [bearer({ realm: 'a"b\\c', service: 'x' })]],
    ['whitespace around =', 'Bearer realm = "r" ,  service = s', [bearer({ realm: 'r', service: 's' })]],
    [
      'bare URL value',
      'Bearer realm=https://auth.example/token,service=reg',
      [bearer({ realm: 'https://auth.example/token', service: 'reg' })],
    ],
    ['first duplicate wins', 'Bearer realm="first", realm="second"', [bearer({ realm: 'first' })]],
    ['empty list items', ', ,Bearer realm="r",, service="s"', [bearer({ realm: 'r', service: 's' })]],
    ['scheme only', 'Negotiate', [{ scheme: 'negotiate', params: {} }]],
    [
      'token68',
      'Negotiate abc==, Basic realm="x"',
      [
        { scheme: 'negotiate', params: {}, token68: 'abc==' },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    [
      'error param',
      'Bearer realm="r",error="insufficient_scope",scope="repository:a:pull"',
      [bearer({ realm: 'r', error: 'insufficient_scope', scope: 'repository:a:pull' })],
    ],
    [
      'unterminated quote keeps earlier challenges',
      'Basic realm="ok", Bearer realm="oops',
      [{ scheme: 'basic', params: { realm: 'ok' } }],
    ],
    ['garbage', '"quoted"', []],
    ['empty', '', []],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => assert.deepEqual(parseChallenges(input), expected));
  }

  it('returns nothing for an absent header', () => assert.deepEqual(parseChallenges(undefined), []));

  it(`refuses more than ${MAX_CHALLENGE_BYTES} bytes across headers`, () => {
    const half = `Bearer realm="${'a'.repeat(MAX_CHALLENGE_BYTES / 2)}"`;
    assert.throws(() => parseChallenges([half, half]), ChallengeTooLargeError);
    assert.equal(parseChallenges(`Bearer realm="${'a'.repeat(MAX_CHALLENGE_BYTES - 20)}"`).length, 1);
  });
});

describe('pickChallenge', () => {
  it('prefers Bearer over Basic whatever the order', () => {
    assert.equal(pickChallenge(parseChallenges('Basic realm="b", Bearer realm="r"'))?.scheme, 'bearer');
  });
  it('falls back to Basic and ignores unknown schemes', () => {
    assert.equal(pickChallenge(parseChallenges('Negotiate, Basic realm="b"'))?.scheme, 'basic');
    assert.equal(pickChallenge(parseChallenges('Negotiate abc')), undefined);
  });
});

describe('scopes', () => {
  const cases: Array<[string, ReturnType<typeof parseScope>]> = [
    ['repository:library/nginx:pull', { type: 'repository', name: 'library/nginx', actions: ['pull'] }],
    ['repository:library/nginx:push,pull', { type: 'repository', name: 'library/nginx', actions: ['pull', 'push'] }],
    ['repository:localhost:5000/a/b:pull', { type: 'repository', name: 'localhost:5000/a/b', actions: ['pull'] }],
    ['repository(plugin):vieux/sshfs:pull', { type: 'repository(plugin)', name: 'vieux/sshfs', actions: ['pull'] }],
    ['registry:catalog:*', { type: 'registry', name: 'catalog', actions: ['*'] }],
    ['repository:a:pull,pull', { type: 'repository', name: 'a', actions: ['pull'] }],
    ['repository:a:', undefined],
    ['repository::pull', undefined],
    [':a:pull', undefined],
    ['repository', undefined],
    ['repository:a', undefined],
    ['repository:a:pull,,push', undefined],
  ];
  for (const [input, expected] of cases) {
    it(`parseScope(${JSON.stringify(input)})`, () => assert.deepEqual(parseScope(input), expected));
  }

  it('parses space-separated lists and drops malformed entries', () => {
    assert.deepEqual(parseScopes('repository:a:pull  bogus repository:b:push').map(formatScope), [
      'repository:a:pull',
      'repository:b:push',
    ]);
    assert.deepEqual(parseScopes(undefined), []);
  });

  it('merges actions of the same resource and sorts', () => {
    const merged = mergeScopes(
      parseScopes('repository:b:pull repository:a:pull'),
      parseScopes('repository:a:push registry:catalog:*'),
    );
    assert.deepEqual(merged.map(formatScope), ['registry:catalog:*', 'repository:a:pull,push', 'repository:b:pull']);
  });

  it('keeps classes apart', () => {
    const merged = mergeScopes(parseScopes('repository:a:pull repository(plugin):a:pull'));
    assert.equal(merged.length, 2);
  });
});
