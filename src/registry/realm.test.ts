import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRealm, classifyHost, registrableDomain, type AddressClass } from './realm.ts';

const host = (url: string) => new URL(url).hostname;

describe('classifyHost', () => {
  const cases: Array<[string, AddressClass]> = [
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.8.9.10/', 'loopback'],
    ['http://0x7f.1/', 'loopback'], // URL parsing normalises odd IPv4 forms first
    ['http://2130706433/', 'loopback'],
    ['http://localhost/', 'loopback'],
    ['http://foo.localhost/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://172.31.255.255/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://100.64.0.1/', 'private'],
    ['http://[fd00:ec2::254]/', 'private'],
    ['http://169.254.169.254/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[::ffff:169.254.169.254]/', 'link-local'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://172.32.0.1/', 'public'],
    ['http://8.8.8.8/', 'public'],
    ['http://[2001:db8::1]/', 'public'],
    ['https://auth.docker.io/', 'public'],
  ];
  for (const [url, expected] of cases)
    it(`${url} → ${expected}`, () => assert.equal(classifyHost(host(url)), expected));
});

describe('registrableDomain', () => {
  const cases: Array<[string, string | undefined]> = [
    ['registry-1.docker.io', 'docker.io'],
    ['auth.docker.io', 'docker.io'],
    ['registry.gitlab.com', 'gitlab.com'],
    ['a.b.example.co.uk', 'example.co.uk'],
    ['co.uk', undefined],
    ['mine.azurecr.io', undefined],
    ['123.dkr.ecr.us-east-1.amazonaws.com', undefined],
    ['us-docker.pkg.dev', undefined],
    ['127.0.0.1', undefined],
    ['intranet', undefined],
  ];
  for (const [name, expected] of cases)
    it(`${name} → ${String(expected)}`, () => assert.equal(registrableDomain(name), expected));
});

describe('checkRealm (S4)', () => {
  const reg = (u: string) => new URL(u);
  const realm = (u: string) => new URL(u);

  it('accepts Docker Hub and sends credentials to auth.docker.io', () => {
    assert.deepEqual(checkRealm(realm('https://auth.docker.io/token'), reg('https://registry-1.docker.io')), {
      ok: true,
      sendCredentials: true,
    });
  });
  it('accepts the same host on another port and sends credentials', () => {
    assert.deepEqual(checkRealm(realm('http://127.0.0.1:5001/token'), reg('http://127.0.0.1:5000')), {
      ok: true,
      sendCredentials: true,
    });
  });
  it('refuses a plain-http realm for an https registry', () => {
    const d = checkRealm(realm('http://registry.example.com/token'), reg('https://registry.example.com'));
    assert.equal(d.ok, false);
  });
  it('allows an http realm for a plain-http (insecure) registry', () => {
    assert.equal(checkRealm(realm('http://registry.example.com/token'), reg('http://registry.example.com')).ok, true);
  });
  for (const bad of [
    'http://127.0.0.1/t',
    'https://127.0.0.1/t',
    'https://169.254.169.254/latest',
    'https://10.0.0.1/t',
    'https://[::1]/t',
    'https://0.0.0.0/t',
    'https://localhost/t',
    'https://[fd00:ec2::254]/t',
  ]) {
    it(`refuses ${bad} for a registry named by DNS`, () => {
      const d = checkRealm(realm(bad), reg('https://registry.example.com'));
      assert.equal(d.ok, false);
    });
  }
  it('accepts a loopback realm when the registry is on loopback too', () => {
    assert.equal(checkRealm(realm('http://127.0.0.1:9/t'), reg('http://127.0.0.1:5000')).ok, true);
  });
  it('refuses a metadata-address realm even for a loopback registry', () => {
    assert.equal(checkRealm(realm('http://169.254.169.254/t'), reg('http://127.0.0.1:5000')).ok, false);
  });
  it('accepts an allow-listed private realm and trusts it with credentials', () => {
    assert.deepEqual(
      checkRealm(realm('https://10.0.0.5/token'), reg('https://registry.example.com'), { allowList: ['10.0.0.5'] }),
      { ok: true, sendCredentials: true },
    );
  });
  it('withholds credentials from a realm on another domain', () => {
    const d = checkRealm(realm('https://auth.evil.example/token'), reg('https://registry.example.com'));
    assert.equal(d.ok, true);
    assert.equal(d.ok && d.sendCredentials, false);
  });
  it('withholds credentials from a sibling under a shared multi-tenant domain', () => {
    const d = checkRealm(realm('https://evil.azurecr.io/oauth2/token'), reg('https://mine.azurecr.io'));
    assert.equal(d.ok && d.sendCredentials, false);
  });
  it('refuses non-http schemes and user info', () => {
    assert.equal(checkRealm(realm('file:///etc/passwd'), reg('https://r.example.com')).ok, false);
    assert.equal(checkRealm(realm('https://u:p@r.example.com/t'), reg('https://r.example.com')).ok, false);
  });
});
