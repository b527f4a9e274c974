import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from './errors.ts';
import {
  apiUrl,
  checkReference,
  isValidRegistryName,
  isValidRepositoryPath,
  normalizeRepository,
  prepareEndpoint,
} from './endpoints.ts';

const HEX = 'a'.repeat(64);

describe('endpoints', () => {
  it('appends /v2 to the base path unless overridden', () => {
    assert.equal(
      apiUrl(prepareEndpoint('r', { baseUrl: 'https://h:5000' }), 'a/b/blobs/x').href,
      'https://h:5000/v2/a/b/blobs/x',
    );
    assert.equal(apiUrl(prepareEndpoint('r', { baseUrl: 'https://h/prefix/' }), '').href, 'https://h/prefix/v2/');
    assert.equal(
      apiUrl(prepareEndpoint('r', { baseUrl: 'https://h/custom/api', overridePath: true }), 'x').href,
      'https://h/custom/api/x',
    );
    assert.equal(
      apiUrl(prepareEndpoint('r', { baseUrl: 'https://h', query: { ns: 'docker.io' } }), 'x').href,
      'https://h/v2/x?ns=docker.io',
    );
  });
  it('keeps a default port the name spells out as the host (the credential lookup key)', () => {
    const ep = prepareEndpoint('ghcr.io:443', { baseUrl: 'https://ghcr.io:443' });
    assert.equal(ep.host, 'ghcr.io:443');
    assert.equal(apiUrl(ep, '').href, 'https://ghcr.io/v2/');
    assert.equal(prepareEndpoint('[::1]:443', { baseUrl: 'https://[::1]:443' }).host, '[::1]:443');
    assert.equal(prepareEndpoint('h', { baseUrl: 'http://h:80', insecure: true }).host, 'h:80');
    assert.equal(prepareEndpoint('ghcr.io', { baseUrl: 'https://ghcr.io' }).host, 'ghcr.io');
    assert.equal(prepareEndpoint('h', { baseUrl: 'https://h:80' }).host, 'h:80');
  });
  it('refuses plain http unless the endpoint is marked insecure (S6)', () => {
    assert.throws(
      () => prepareEndpoint('r', { baseUrl: 'http://h:5000' }),
      (e: unknown) => e instanceof RegistryError && e.code === 'ErrInsecureEndpoint',
    );
    assert.equal(prepareEndpoint('r', { baseUrl: 'http://h:5000', insecure: true }).base.protocol, 'http:');
  });
  it('refuses base URLs with credentials, queries or odd schemes', () => {
    for (const baseUrl of ['https://u:p@h', 'https://h/?a=b', 'ftp://h', 'nonsense'])
      assert.throws(() => prepareEndpoint('r', { baseUrl }), RegistryError, baseUrl);
  });
});

describe('names that become URL paths (S8)', () => {
  it('validates repository paths', () => {
    for (const ok of ['library/nginx', 'a', 'a/b/c', 'a__b', 'a--b', 'a.b_c']) assert.ok(isValidRepositoryPath(ok), ok);
    for (const bad of ['', 'A', 'a/', '/a', 'a//b', '../a', 'a/..', 'a?b', 'a#b', 'a%2Fb', 'a b', '-a', 'a-', 'a___b'])
      assert.ok(!isValidRepositoryPath(bad), bad);
  });
  it('validates registry names', () => {
    for (const ok of ['docker.io', '127.0.0.1:5000', 'localhost', '[::1]:5000', 'ghcr.io:443', '[::1]:443'])
      assert.ok(isValidRegistryName(ok), ok);
    for (const bad of ['', 'a/b', 'a?b', 'a@b', 'user:pass@h', 'h:99999', 'a b', 'h:0443', 'h:443:443'])
      assert.ok(!isValidRegistryName(bad), bad);
  });
  it('accepts only valid tags and digests as references', () => {
    const repo = { registry: 'r', path: 'a' };
    assert.deepEqual(checkReference(repo, 'v1.2_3-x'), { kind: 'tag', value: 'v1.2_3-x' });
    assert.deepEqual(checkReference(repo, `sha256:${HEX}`), { kind: 'digest', value: `sha256:${HEX}` });
    for (const bad of [
      'sha256:../../x',
      `sha256:${HEX.toUpperCase()}`,
      'sha256:abc',
      `sha256:${HEX}%2F`,
      `sha256:${HEX}?`,
      `sha256:${HEX}#`,
      '.tag',
      '',
      'a/b',
      'x'.repeat(129),
    ]) {
      assert.throws(() => checkReference(repo, bad), RegistryError, bad);
    }
  });
  it('never lets a fuzzed digest become anything but /blobs/<valid digest>', () => {
    const alphabet = 'abcdef0123456789:/.%?#ABCDEFsha256512-_=+ \\';
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const repo = { registry: 'r', path: 'a' };
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const len = i % 3 === 0 ? 71 : Math.floor(rand() * 80);
      let s = i % 2 === 0 ? 'sha256:' : '';
      while (s.length < len) s += alphabet[Math.floor(rand() * alphabet.length)];
      try {
        const ref = checkReference(repo, s);
        accepted++;
        assert.match(ref.value, /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}|[\w][\w.-]{0,127})$/);
      } catch (err) {
        assert.ok(err instanceof RegistryError);
      }
    }
    assert.ok(accepted > 0);
  });
  it('splits "registry/path" strings and validates both', () => {
    assert.deepEqual(normalizeRepository('127.0.0.1:5000/library/nginx'), {
      registry: '127.0.0.1:5000',
      path: 'library/nginx',
    });
    assert.throws(() => normalizeRepository('nginx'), RegistryError);
    assert.throws(() => normalizeRepository('docker.io/Library/nginx'), RegistryError);
  });
});
