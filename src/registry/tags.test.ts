import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPlainHttpAnswer } from './retry.ts';
import { nextLink } from './paging.ts';

describe('nextLink (Link: <…>; rel="next", RFC 8288 as registries send it)', () => {
  const base = new URL('https://registry.example/v2/team/app/tags/list?n=2');
  const next = (...values: string[]) => nextLink(values, base)?.toString();

  it('resolves a relative target against the page it came with', () => {
    assert.equal(
      next('</v2/team/app/tags/list?n=2&last=b>; rel="next"'),
      'https://registry.example/v2/team/app/tags/list?n=2&last=b',
    );
    assert.equal(next('<?n=2&last=b>; rel=next'), 'https://registry.example/v2/team/app/tags/list?n=2&last=b');
  });

  it('picks the next link among several, in one header or many, whatever the parameter order', () => {
    assert.equal(
      next('</prev>; rel="prev", </v2/team/app/tags/list?last=c>; title="x"; rel="next"'),
      'https://registry.example/v2/team/app/tags/list?last=c',
    );
    assert.equal(next('</first>; rel="first"', '</n>; REL="prev next"'), 'https://registry.example/n');
  });

  it('finds none without rel=next, and none in a malformed value', () => {
    assert.equal(next('</v2/x>; rel="prev"'), undefined);
    assert.equal(next('no angle brackets; rel="next"'), undefined);
    assert.equal(next(), undefined);
    assert.equal(next('<http://[bad>; rel="next"'), undefined);
  });
});

describe('isPlainHttpAnswer', () => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code });

  it('is a TLS handshake answered with plain HTTP, as OpenSSL reports it', () => {
    assert.equal(isPlainHttpAnswer(err('ERR_SSL_WRONG_VERSION_NUMBER', 'ssl3_get_record:wrong version number')), true);
    assert.equal(isPlainHttpAnswer(err('EPROTO', 'SSL routines:ssl3_get_record:packet length too long')), true);
    assert.equal(isPlainHttpAnswer(err('ERR_SSL_HTTP_REQUEST', 'http request')), true);
  });

  it('is not any other TLS or connection failure', () => {
    assert.equal(
      isPlainHttpAnswer(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')),
      false,
    );
    assert.equal(isPlainHttpAnswer(err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5000')), false);
    assert.equal(isPlainHttpAnswer(err('EPROTO', 'tlsv1 alert protocol version')), false);
  });
});
