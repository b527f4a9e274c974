import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeGoBase64 } from './go-base64.ts';
import { goPathMatch } from './go-glob.ts';
import { foldFieldName, goJsonString } from './go-json.ts';
import { parseSchemelessUrl, splitHostPort } from './go-url.ts';

describe('Go url.Parse("https://" + s)', () => {
  const cases: [string, { host: string; path: string } | undefined][] = [
    ['reg.example.com/a/b', { host: 'reg.example.com', path: '/a/b' }],
    ['Reg.Example.com:443', { host: 'Reg.Example.com:443', path: '' }],
    ['u:p@reg.example.com/x', { host: 'reg.example.com', path: '/x' }],
    ['a@b@reg.example.com', { host: 'reg.example.com', path: '' }], // the last "@" ends userinfo
    ['a/b@reg.example.com', { host: 'a', path: '/b@reg.example.com' }],
    ['a^b@reg.example.com', undefined], // "^" is not allowed in userinfo
    ['reg.example.com/x?q#f', { host: 'reg.example.com', path: '/x' }],
    ['reg.example.com/%41', { host: 'reg.example.com', path: '/A' }],
    ['reg.example.com/%4', undefined],
    ['reg.example.com#%zz', undefined],
    ['reg.example.com:80a', undefined],
    ['reg.example.com:', { host: 'reg.example.com:', path: '' }],
    ['re%41g.example.com', undefined],
    ['r\u00e9g.example.com', { host: 'r\u00e9g.example.com', path: '' }],
    ['r%C3%A9g.example.com', { host: 'r\u00e9g.example.com', path: '' }],
    ['reg.example.com/a\tb', undefined],
    ['reg|x.example.com', undefined],
    ['[fe80::1%25eth0]:5000', { host: '[fe80::1%eth0]:5000', path: '' }],
    ['[1.2.3.4]', undefined],
    ['[::1', undefined],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${expected === undefined ? 'error' : JSON.stringify(expected)}`, () => {
      assert.deepEqual(parseSchemelessUrl(input), expected);
    });
  }
});

describe('Go net.SplitHostPort', () => {
  const cases: [string, { host: string; port: string } | undefined][] = [
    ['reg:5000', { host: 'reg', port: '5000' }],
    ['reg', undefined],
    ['[::1]:5000', { host: '::1', port: '5000' }],
    ['[::1]', undefined],
    ['::1', undefined],
    ['a[b:1', undefined],
    ['reg:', { host: 'reg', port: '' }],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${JSON.stringify(expected)}`, () => assert.deepEqual(splitHostPort(input), expected));
  }
});

describe('Go path.Match', () => {
  const cases: [string, string, boolean | undefined][] = [
    ['*', 'anything', true],
    ['*', '', true],
    ['a*c', 'abbbc', true],
    ['a*c', 'abbbd', false],
    ['a?c', 'abc', true],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['[^a-c]x', 'dx', true],
    ['[\\]]', ']', true],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['[', 'a', undefined],
    ['[a-', 'a', undefined],
    ['[]a]', ']', undefined],
    ['a\\', 'a', undefined],
    ['x*[', 'y', undefined],
    ['*x', 'y/x', false],
    ['ü*', 'über', true],
    ['[ä-ü]', 'ö', true],
  ];
  for (const [pattern, name, expected] of cases) {
    it(`${pattern} ~ ${name} → ${expected ?? 'bad pattern'}`, () => assert.equal(goPathMatch(pattern, name), expected));
  }
});

describe('Go base64', () => {
  it('decodes padded and unpadded standard base64', () => {
    const padded = decodeGoBase64('aGk=', true);
    assert.ok(padded.ok);
    assert.equal(padded.bytes.toString(), 'hi');
    const raw = decodeGoBase64('aGk', false);
    assert.ok(raw.ok);
    assert.equal(raw.bytes.toString(), 'hi');
  });

  const bad: [string, boolean][] = [
    ['aGk', true],
    ['aGk=', false],
    ['a===', true],
    ['aG==aG==', true],
    ['a', false],
    ['a b=', true],
  ];
  for (const [input, padded] of bad) {
    it(`rejects ${JSON.stringify(input)} (${padded ? 'padded' : 'raw'})`, () =>
      assert.equal(decodeGoBase64(input, padded).ok, false));
  }
});

describe('Go JSON details', () => {
  it('folds field names like encoding/json', () => {
    assert.equal(foldFieldName('userName'), foldFieldName('USERNAME'));
    assert.equal(foldFieldName('u\u017fername'), foldFieldName('username'), 'long s folds to s');
  });

  it('escapes strings like json.Marshal', () => {
    assert.equal(goJsonString('<a&b>\u2028'), '"\\u003ca\\u0026b\\u003e\\u2028"');
    assert.equal(goJsonString('\ud800'), '"\ufffd"');
  });
});
