import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUTH_FORMAT_PROBLEM,
  decodeDockercfg,
  decodeDockerConfigJson,
  encodeKubeletEntry,
  type KubeletDockerConfig,
} from './kubelet-config.ts';

/** A credential's fields as plain data (deepEqual does not see private fields). */
const plain = (config: KubeletDockerConfig) =>
  config.map(([key, c]) => [key, { username: c.username, password: c.password, email: c.email }] as const);

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const decodeAuth = (auth: string) => {
  const [first] = plain(decodeDockercfg({ 'reg.example.com': { auth } }));
  assert.ok(first);
  return first[1];
};

describe('kubelet entry parsing: auth field (docs/semantics.md kubelet §6)', () => {
  const ok: [string, string, string, string][] = [
    ['dXNlcjpwYXNz', 'user', 'pass', 'unpadded value, no "=": RawStdEncoding'],
    ['dXNlcjpwYXNzd29yZA==', 'user', 'password', 'padded value'],
    ['dXNlcjpwYXNzd29yZA', 'user', 'password', 'unpadded value whose length needs padding'],
    ['dXNlcjpw\r\nYXNz', 'user', 'pass', 'CR and LF are skipped anywhere'],
    [
      'dXNlcjpwYXNzd29yZA==\n',
      'user',
      'password',
      'trailing newline after padding: trimmed for the choice, skipped when decoding',
    ],
    ['dXNlcjpwYXNzd29yZB==', 'user', 'password', 'unused low bits of the last character are tolerated'],
    [b64('user:pass\n'), 'user', 'pass\n', 'decoded text is not trimmed'],
    [b64('user:pa:ss'), 'user', 'pa:ss', 'split at the first colon'],
    [b64(':pass'), '', 'pass', 'empty username is allowed'],
    [b64('user:'), 'user', '', 'empty password is allowed'],
  ];
  for (const [auth, username, password, why] of ok) {
    it(`${JSON.stringify(auth)} → ${JSON.stringify(username)}/${JSON.stringify(password)} (${why})`, () => {
      assert.deepEqual(decodeAuth(auth), { username, password, email: '' });
    });
  }

  const bad: [string, RegExp, string][] = [
    ['dXNlcjpwYXNzd29yZA=', /illegal base64/, 'wrong amount of padding'],
    [' dXNlcjpwYXNz', /illegal base64 data at input byte 0/, 'a space is a foreign character'],
    ['dXNlcjpwYXNz ', /illegal base64/, 'trailing space: unpadded decoding sees the space'],
    ['dXNlcjpwYXNzd', /illegal base64/, 'length 1 mod 4'],
    ['dXNl=cjpw', /illegal base64/, '"=" inside an unpadded value'],
    ['dXNlcjpw*XNz', /illegal base64 data at input byte 8/, 'foreign character'],
    ['dXNlcjpw-XNz', /illegal base64/, 'URL alphabet is not accepted'],
    [b64('userpass'), new RegExp(AUTH_FORMAT_PROBLEM.replace(/[()]/g, '\\$&')), 'no colon'],
  ];
  for (const [auth, message, why] of bad) {
    it(`${JSON.stringify(auth)} fails (${why})`, () => {
      assert.throws(() => decodeAuth(auth), message);
    });
  }

  it('keeps the exact upstream message for a missing colon', () => {
    assert.equal(AUTH_FORMAT_PROBLEM, 'unable to parse auth field, must be formatted as base64(username:password)');
  });
});

describe('kubelet entry parsing: fields (Go JSON rules)', () => {
  it('lets a non-empty auth replace username and password, and keeps email', () => {
    const [first] = plain(
      decodeDockercfg({ r: { username: 'x', password: 'y', email: 'me@example.com', auth: b64('user:pass') } }),
    );
    assert.deepEqual(first?.[1], { username: 'user', password: 'pass', email: 'me@example.com' });
  });

  it('uses username and password when auth is empty', () => {
    const [first] = plain(decodeDockercfg({ r: { username: 'x', password: 'y', auth: '' } }));
    assert.deepEqual(first?.[1], { username: 'x', password: 'y', email: '' });
  });

  it('matches field names case-insensitively; the last spelling wins', () => {
    const [first] = plain(decodeDockercfg({ r: { Username: 'a', USERNAME: 'b', PassWord: 'p' } }));
    assert.deepEqual(first?.[1], { username: 'b', password: 'p', email: '' });
  });

  it('ignores unknown fields and null values', () => {
    const [first] = plain(
      decodeDockercfg({ r: { username: 'u', password: null, identitytoken: 'ignored', extra: { deep: 1 } } }),
    );
    assert.deepEqual(first?.[1], { username: 'u', password: '', email: '' });
  });

  it('treats a null entry as an empty credential', () => {
    assert.deepEqual(plain(decodeDockercfg({ r: null })), [['r', { username: '', password: '', email: '' }]]);
  });

  const wrongTypes: [unknown, RegExp][] = [
    [{ r: { username: 5 } }, /\["r"\]\.username: expected a string, found number/],
    [{ r: { auth: true } }, /\["r"\]\.auth: expected a string, found bool/],
    [{ r: 'user:pass' }, /\["r"\]: expected an object, found string/],
    [[], /expected an object of registry entries, found array/],
  ];
  for (const [document, message] of wrongTypes) {
    it(`fails on a wrong value type: ${JSON.stringify(document)}`, () => {
      assert.throws(() => decodeDockercfg(document), message);
    });
  }

  it('fails the whole document on one invalid entry', () => {
    assert.throws(
      () => decodeDockerConfigJson({ auths: { good: { username: 'u' }, bad: { auth: '!!!!' } } }),
      /auths\["bad"\]\.auth/,
    );
  });

  it('reads {"auths": …} with a case-insensitive field name and tolerates other fields', () => {
    const config = decodeDockerConfigJson({
      Auths: { 'quay.io': { username: 'u', password: 'p' } },
      credsStore: 'desktop',
      HttpHeaders: { 'User-Agent': 'x' },
    });
    assert.deepEqual(plain(config), [['quay.io', { username: 'u', password: 'p', email: '' }]]);
  });

  it('treats a missing or null auths as empty, and a wrongly typed one as an error', () => {
    assert.deepEqual(decodeDockerConfigJson({}), []);
    assert.deepEqual(decodeDockerConfigJson({ auths: null }), []);
    assert.deepEqual(decodeDockerConfigJson(null), []);
    assert.throws(() => decodeDockerConfigJson({ auths: [] }), /auths: expected an object, found array/);
    assert.throws(() => decodeDockerConfigJson({ auths: {}, HttpHeaders: { a: 1 } }), /HttpHeaders/);
  });

  it('keeps entries in document order', () => {
    const config = decodeDockercfg({ 'b.io': { username: 'b' }, 'a.io': { username: 'a' } });
    assert.deepEqual(
      config.map(([key]) => key),
      ['b.io', 'a.io'],
    );
  });
});

describe('kubelet entry serialisation', () => {
  it('writes username, password, email, auth in order with padded auth', () => {
    assert.equal(
      encodeKubeletEntry({ username: 'user', password: 'pass', email: 'a@b.c' }),
      '{"username":"user","password":"pass","email":"a@b.c","auth":"dXNlcjpwYXNz"}',
    );
    assert.equal(
      encodeKubeletEntry({ username: 'u', password: 'p', email: '' }),
      '{"username":"u","password":"p","auth":"dTpw"}',
    );
    assert.equal(encodeKubeletEntry({ username: '', password: '', email: '' }), '{"auth":"Og=="}');
  });

  it('round-trips through decoding', () => {
    const entry = { username: 'ü<s>', password: 'p:a&ss\n', email: 'e' };
    const [decoded] = plain(decodeDockercfg({ r: JSON.parse(encodeKubeletEntry(entry)) as unknown }));
    assert.deepEqual(decoded?.[1], entry);
  });
});
