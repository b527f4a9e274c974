import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScopes } from './challenge.ts';
import {
  TokenCache,
  TokenResponseError,
  credentialIdentity,
  parseRfc3339,
  parseTokenResponse,
  tokenCacheKey,
  type BearerToken,
} from './token.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

describe('parseTokenResponse', () => {
  it('reads token and expires_in', () => {
    const t = parseTokenResponse('{"token":"abc","expires_in":300}', T0);
    assert.deepEqual(t, { token: 'abc', issuedAt: T0, expiresAt: T0 + 300_000 });
  });
  it('uses access_token when token is absent, token when both are present', () => {
    assert.equal(parseTokenResponse('{"access_token":"oauth"}', T0).token, 'oauth');
    assert.equal(parseTokenResponse('{"token":"t","access_token":"a"}', T0).token, 't');
  });
  it('defaults expires_in to 60 s and floors it at 60 s', () => {
    assert.equal(parseTokenResponse('{"token":"t"}', T0).expiresAt, T0 + 60_000);
    assert.equal(parseTokenResponse('{"token":"t","expires_in":5}', T0).expiresAt, T0 + 60_000);
    assert.equal(parseTokenResponse('{"token":"t","expires_in":"300"}', T0).expiresAt, T0 + 60_000);
  });
  it('counts from issued_at when it is plausible', () => {
    const issued = new Date(T0 - 10_000).toISOString();
    const t = parseTokenResponse(`{"token":"t","expires_in":300,"issued_at":"${issued}"}`, T0);
    assert.equal(t.issuedAt, T0 - 10_000);
    assert.equal(t.expiresAt, T0 + 290_000);
  });
  it('ignores an issued_at in the future or one that would make the token already expired', () => {
    const future = new Date(T0 + 3_600_000).toISOString();
    assert.equal(parseTokenResponse(`{"token":"t","expires_in":300,"issued_at":"${future}"}`, T0).issuedAt, T0);
    const ancient = new Date(T0 - 3_600_000).toISOString();
    assert.equal(
      parseTokenResponse(`{"token":"t","expires_in":300,"issued_at":"${ancient}"}`, T0).expiresAt,
      T0 + 300_000,
    );
    assert.equal(parseTokenResponse('{"token":"t","issued_at":"yesterday"}', T0).issuedAt, T0);
  });
  it('rejects bodies without a usable token, never quoting them', () => {
    for (const body of [
      'not json',
      '[]',
      '{}',
      '{"token":""}',
      '{"token":42}',
      '{"token":"has space"}',
      '{"token":"a\\"b"}',
    ]) {
      assert.throws(
        () => parseTokenResponse(body, T0),
        (err: unknown) => err instanceof TokenResponseError && !err.message.includes(body),
      );
    }
  });
  it('accepts bytes', () => {
    assert.equal(parseTokenResponse(Buffer.from('{"token":"b"}'), T0).token, 'b');
  });
});

describe('parseRfc3339', () => {
  it('parses RFC 3339 and rejects other formats', () => {
    assert.equal(parseRfc3339('2026-01-01T00:00:00Z'), T0);
    assert.equal(parseRfc3339('2026-01-01T01:00:00.123+01:00'), T0 + 123);
    assert.equal(parseRfc3339('Thu, 01 Jan 2026 00:00:00 GMT'), undefined);
    assert.equal(parseRfc3339('2026-01-01'), undefined);
  });
});

describe('token cache keys', () => {
  const base = { realm: 'https://auth/token', service: 'reg', identity: 'anonymous' };
  it('ignores scope order and duplicates', () => {
    const a = tokenCacheKey({ ...base, scopes: parseScopes('repository:a:pull repository:b:pull') });
    const b = tokenCacheKey({ ...base, scopes: parseScopes('repository:b:pull repository:a:pull repository:a:pull') });
    assert.equal(a, b);
  });
  it('differs by realm, service, scopes and credential', () => {
    const scopes = parseScopes('repository:a:pull');
    const key = tokenCacheKey({ ...base, scopes });
    assert.notEqual(key, tokenCacheKey({ ...base, realm: 'https://other/token', scopes }));
    assert.notEqual(key, tokenCacheKey({ ...base, service: 'other', scopes }));
    assert.notEqual(key, tokenCacheKey({ ...base, scopes: parseScopes('repository:a:pull,push') }));
    assert.notEqual(
      key,
      tokenCacheKey({ ...base, identity: credentialIdentity({ kind: 'basic', username: 'u', password: 'p' }), scopes }),
    );
  });
  it('identifies credentials without containing them', () => {
    const id = credentialIdentity({ kind: 'basic', username: 'alice', password: 's3cret-password' });
    assert.ok(!id.includes('alice') && !id.includes('s3cret'));
    assert.notEqual(id, credentialIdentity({ kind: 'basic', username: 'alice', password: 'other-password' }));
    assert.notEqual(
      credentialIdentity({ kind: 'identityToken', token: 'x' }),
      credentialIdentity({ kind: 'registryToken', token: 'x' }),
    );
    assert.equal(credentialIdentity(undefined), 'anonymous');
  });
});

describe('TokenCache', () => {
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const token = (name: string, lifetimeMs = 60_000): BearerToken => ({
    token: name,
    issuedAt: clock.t,
    expiresAt: clock.t + lifetimeMs,
  });

  it('single-flights concurrent fetches for one key', async () => {
    clock.t = T0;
    const cache = new TokenCache(clock);
    let fetches = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const fetch = async () => {
      fetches++;
      await gate;
      return token('t1');
    };
    const all = Array.from({ length: 16 }, () => cache.get('k', fetch));
    release();
    const results = await Promise.all(all);
    assert.equal(fetches, 1);
    assert.ok(results.every((r) => r.token === 't1'));
  });

  it('serves from cache until 5 s before expiry, then refreshes', async () => {
    clock.t = T0;
    const cache = new TokenCache(clock);
    let n = 0;
    const fetch = async () => token(`t${++n}`);
    assert.equal((await cache.get('k', fetch)).token, 't1');
    clock.t = T0 + 54_999;
    assert.equal((await cache.get('k', fetch)).token, 't1');
    clock.t = T0 + 55_000;
    assert.equal((await cache.get('k', fetch)).token, 't2');
  });

  it('does not cache failures', async () => {
    clock.t = T0;
    const cache = new TokenCache(clock);
    await assert.rejects(
      cache.get('k', async () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal((await cache.get('k', async () => token('ok'))).token, 'ok');
  });

  it('invalidates only the rejected token', async () => {
    clock.t = T0;
    const cache = new TokenCache(clock);
    await cache.get('k', async () => token('old'));
    cache.invalidate('k', 'old');
    await cache.get('k', async () => token('new'));
    cache.invalidate('k', 'old'); // a late rejection of the old token must not drop the new one
    assert.equal(cache.peek('k')?.token, 'new');
  });
});
