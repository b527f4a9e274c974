import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BasicCredential, Keyring } from './index.ts';
import { credentialHash } from './credential-hash.ts';
import { indexKey, isDockerHubFallbackTarget, lookupInOrder, urlsMatch, type CredentialOrigin } from './keyring.ts';
import { type KubeletDockerConfig } from './kubelet-config.ts';

const node: CredentialOrigin = { kind: 'node', path: '/var/lib/kubelet/config.json' };
const secret = (name: string): CredentialOrigin => ({ kind: 'secret', namespace: 'default', name, uid: `uid-${name}` });
const entry = (username: string, password = `${username}-pw`) => new BasicCredential(username, password);
const config = (...keys: [string, string][]): KubeletDockerConfig =>
  keys.map(([key, user]) => [key, entry(user)] as const);
const users = (keyring: Keyring, image: string | { domain: string; path: string }) =>
  keyring.lookup(image).map((match) => match.credential.username);

describe('keyring: config key → index key (docs/semantics.md kubelet §6)', () => {
  const cases: [string, string | undefined, string][] = [
    ['quay.io', 'quay.io', 'https:// prefixed, host only'],
    ['https://quay.io/v1/', 'quay.io', '/v1/ loses its first three characters, "/" is dropped'],
    ['http://quay.io', 'quay.io', 'http:// kept as scheme, then dropped'],
    ['https://index.docker.io/v1/', 'index.docker.io', 'the Docker Hub key'],
    ['reg.example.com/v2/team', 'reg.example.com/team', '/v2/team → /team'],
    ['reg.example.com/v1/', 'reg.example.com', '/v1/ → /'],
    ['reg.example.com/v1', 'reg.example.com/v1', '/v1 stays'],
    ['reg.example.com/v1x', 'reg.example.com/v1x', '/v1x stays'],
    ['reg.example.com/', 'reg.example.com', 'a bare "/" path is dropped'],
    ['Reg.Example.COM', 'Reg.Example.COM', 'no lowercasing'],
    ['reg.example.com:443', 'reg.example.com:443', 'no default-port removal'],
    ['bücher.example', 'bücher.example', 'no IDNA'],
    ['user:pw@reg.example.com/ns', 'reg.example.com/ns', 'userinfo dropped'],
    ['reg.example.com/ns?x=1', 'reg.example.com/ns', '? ends the path'],
    ['reg.example.com#frag', 'reg.example.com', '# ends the host'],
    ['reg.example.com/a%2Fb', 'reg.example.com/a/b', 'the path is percent-decoded'],
    ['reg.example.com/%zz', undefined, 'bad % escape: skipped'],
    ['reg.example.com:port', undefined, 'non-numeric port: skipped'],
    ['reg example.com', undefined, 'space in host: skipped'],
    ['[::1]:5000', '[::1]:5000', 'IPv6 literal with port'],
    ['[not-ipv6]', undefined, 'brackets around a non-IPv6 host: skipped (Go ≥ 1.25.2)'],
    ['*.example.com', '*.example.com', 'globs are kept verbatim'],
  ];
  for (const [key, expected, why] of cases) {
    it(`${JSON.stringify(key)} → ${expected ?? 'skipped'} (${why})`, () => {
      assert.equal(indexKey(key), expected);
    });
  }

  it('skips unparseable keys when adding and keeps the rest', () => {
    const keyring = new Keyring().add(node, config(['reg.example.com/%zz', 'bad'], ['reg.example.com', 'good']));
    assert.deepEqual(keyring.keys, ['reg.example.com']);
    assert.deepEqual(users(keyring, 'reg.example.com/app'), ['good']);
  });
});

describe('keyring: index order', () => {
  it('sorts keys in reverse byte order: quay.io/coreos before quay.io, reg.example.com before *.example.com', () => {
    const keyring = new Keyring().add(
      node,
      config(['quay.io', 'a'], ['*.example.com', 'b'], ['quay.io/coreos', 'c'], ['reg.example.com', 'd']),
    );
    assert.deepEqual(keyring.keys, ['reg.example.com', 'quay.io/coreos', 'quay.io', '*.example.com']);
  });

  it('de-duplicates keys and accumulates credentials in secret order, then entry order', () => {
    const keyring = new Keyring()
      .add(secret('first'), config(['quay.io', 'one'], ['https://quay.io/v1/', 'two']))
      .add(secret('second'), config(['quay.io', 'three']));
    assert.deepEqual(keyring.keys, ['quay.io']);
    const matches = keyring.lookup('quay.io/app');
    assert.deepEqual(
      matches.map((m) => m.credential.username),
      ['one', 'two', 'three'],
    );
    assert.deepEqual(
      matches.map((m) => m.sourceLabel),
      ['secret default/first', 'secret default/first', 'secret default/second'],
    );
  });

  it('returns every matching key in index order so the caller can try each', () => {
    const keyring = new Keyring().add(
      node,
      config(['quay.io', 'host'], ['*.io', 'glob'], ['quay.io/coreos', 'namespace'], ['gcr.io', 'other']),
    );
    assert.deepEqual(users(keyring, 'quay.io/coreos/etcd'), ['namespace', 'host', 'glob']);
    assert.deepEqual(users(keyring, 'quay.io/other/etcd'), ['host', 'glob']);
  });

  it('accepts the image as {domain, path}', () => {
    const keyring = new Keyring().add(node, config(['quay.io/coreos', 'c']));
    assert.deepEqual(users(keyring, { domain: 'quay.io', path: 'coreos/etcd' }), ['c']);
  });
});

describe('keyring: Match(key, target) (docs/semantics.md kubelet §6 table and rules)', () => {
  const cases: [string, string, boolean, string][] = [
    // The kubelet's matching table (docs/semantics.md kubelet §6).
    ['*.kubernetes.io', 'prefix.kubernetes.io/x', true, 'glob label'],
    ['*.docker.io', 'docker.io/x', false, 'label count differs'],
    ['*kubernetes.io', 'kubernetes.io/x', true, '* matches an empty run'],
    ['bar.example.com/pong', 'bar.example.com/pongz', true, 'plain string prefix, not a path boundary'],
    ['registry.io:5000', 'registry.io/app', false, 'port differs'],
    ['quay.io', 'quay.io/foo/bar', true, 'index key of https://quay.io/v1/'],
    // Ports.
    ['registry.io:5000', 'registry.io:5000/app', true, 'same port'],
    ['registry.io', 'registry.io:5000/app', false, 'absent port ≠ 5000'],
    ['registry.io:443', 'registry.io/app', false, ':443 is not the default port here'],
    ['*.example.com:5000', 'reg.example.com:5000/app', true, 'glob with port'],
    // Labels and globs.
    ['*.example.com', 'a.b.example.com/x', false, '* stays inside one label'],
    ['*.*.example.com', 'a.b.example.com/x', true, 'one glob per label'],
    ['reg[0-9].example.com', 'reg7.example.com/x', true, 'character class'],
    ['reg[0-9].example.com', 'regx.example.com/x', false, 'character class mismatch'],
    ['reg[.example.com', 'reg[.example.com/x', false, 'a malformed glob never matches, even itself'],
    ['reg?.example.com', 'regx.example.com/x', false, '? is not a wildcard: it starts a query'],
    ['reg?', 'reg', true, '… so "reg?" is the host "reg"'],
    ['Quay.io', 'quay.io/x', false, 'host labels compare case-sensitively'],
    // Paths.
    ['quay.io/coreos', 'quay.io/coreos/etcd', true, 'path prefix'],
    ['quay.io/coreos', 'quay.io/core', false, 'key path longer than target path'],
    ['quay.io/coreos/', 'quay.io/coreos', false, 'trailing slash is part of the prefix'],
    ['quay.io', 'quay.io', true, 'host only'],
    ['[::1]:5000', '[::1]:5000/app', true, 'IPv6 with port'],
  ];
  for (const [key, target, expected, why] of cases) {
    it(`${key} ~ ${target} → ${expected} (${why})`, () => {
      assert.equal(urlsMatch(key, target), expected);
    });
  }

  it('matches https://quay.io/v1/ against quay.io/foo/bar through the keyring', () => {
    const keyring = new Keyring().add(node, config(['https://quay.io/v1/', 'q']));
    assert.deepEqual(users(keyring, 'quay.io/foo/bar'), ['q']);
  });
});

describe('keyring: Docker Hub fallback', () => {
  const hub = () => new Keyring().add(secret('hub'), config(['https://index.docker.io/v1/', 'hubuser']));

  it('serves docker.io/library/nginx from https://index.docker.io/v1/ via the fallback', () => {
    const matches = hub().lookup('docker.io/library/nginx');
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.key, m.viaDockerHubFallback]),
      [['hubuser', 'index.docker.io', true]],
    );
  });

  it('matches index.docker.io/… directly (no fallback needed)', () => {
    const matches = hub().lookup('index.docker.io/library/nginx');
    assert.deepEqual(
      matches.map((m) => m.viaDockerHubFallback),
      [false],
    );
  });

  const targets: [string, boolean, string][] = [
    ['docker.io/library/nginx', true, 'first component docker.io'],
    ['index.docker.io/x', true, 'first component index.docker.io'],
    ['library/nginx', true, 'first component without . or :'],
    ['nginx', true, 'single component'],
    ['localhost/app', true, 'quirk: localhost has neither . nor :'],
    ['localhost:5000/app', false, 'first component has :'],
    ['registry-1.docker.io/library/nginx', false, 'first component has .'],
    ['quay.io/app', false, 'another registry'],
    ['', false, 'empty'],
    ['/x', false, 'empty first component'],
  ];
  for (const [target, expected, why] of targets) {
    it(`${JSON.stringify(target)} is ${expected ? '' : 'not '}a Hub fallback target (${why})`, () => {
      assert.equal(isDockerHubFallbackTarget(target), expected);
      assert.equal(hub().lookup(target).length > 0, expected);
    });
  }

  it('applies only when nothing matched', () => {
    const keyring = new Keyring().add(node, config(['docker.io', 'direct'], ['https://index.docker.io/v1/', 'index']));
    assert.deepEqual(users(keyring, 'docker.io/library/nginx'), ['direct']);
  });

  it('gives a docker.io key no fallback', () => {
    const keyring = new Keyring().add(node, config(['docker.io', 'direct']));
    assert.deepEqual(users(keyring, 'nginx'), []);
    assert.deepEqual(users(keyring, 'library/nginx'), []);
  });

  it('uses the credentials under index.docker.io however they were spelled', () => {
    const keyring = new Keyring().add(
      node,
      config(['index.docker.io', 'a'], ['https://index.docker.io', 'b'], ['index.docker.io/v2/', 'c']),
    );
    assert.deepEqual(users(keyring, 'library/nginx'), ['a', 'b', 'c']);
  });

  it('each keyring applies its own fallback when looked up in order', () => {
    const secrets = new Keyring().add(secret('s'), config(['quay.io', 'quay']));
    const nodeKeyring = new Keyring().add(node, config(['https://index.docker.io/v1/', 'nodehub']));
    assert.deepEqual(
      lookupInOrder('docker.io/library/nginx', [secrets, nodeKeyring]).map((m) => m.credential.username),
      ['nodehub'],
    );
  });
});

describe('keyring: credentials and hashes', () => {
  it('carries the source, its label and the KEP-2535 credential hash', () => {
    const keyring = new Keyring().add(secret('regcred'), [
      ['reg.example.com', new BasicCredential('user', 'password')],
    ]);
    const [match] = keyring.lookup('reg.example.com/app');
    assert.ok(match);
    assert.ok(match.credential instanceof BasicCredential);
    assert.equal(match.sourceLabel, 'secret default/regcred');
    assert.deepEqual(match.source, { kind: 'secret', namespace: 'default', name: 'regcred', uid: 'uid-regcred' });
    // sha256 of {"username":"user","password":"password"} (docs/semantics.md kubelet §10's example).
    assert.equal(match.hash, 'a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d');
  });

  it('hashes with Go escaping and email in field order', () => {
    assert.equal(
      credentialHash(new BasicCredential('a<b', 'p&q', 'e@x')),
      '908c22f25c9daca46a054125b16e520ccb36a7fecb8de06fc153bd618224720e',
    );
  });
});
