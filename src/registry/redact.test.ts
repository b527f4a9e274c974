import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError, codeForResponse, parseErrorBody } from './errors.ts';
import { queryParts, redactUrl, redactUrlsInText, sanitizeCause, scrubSecrets } from './redact.ts';

const PRESIGNED = 'https://bucket.s3.amazonaws.com/blobs/sha256/ab?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA123';

describe('redaction (S12)', () => {
  it('drops query, fragment and user info from URLs', () => {
    assert.equal(redactUrl(PRESIGNED), 'https://bucket.s3.amazonaws.com/blobs/sha256/ab?<redacted>');
    assert.equal(redactUrl('https://user:pass@host:5000/v2/?a=b#frag'), 'https://host:5000/v2/?<redacted>');
    assert.equal(redactUrl('http://host/v2/'), 'http://host/v2/');
    assert.equal(redactUrl('not a url'), '<invalid URL>');
  });

  it('redacts URLs inside free text', () => {
    const text = redactUrlsInText(`redirected to ${PRESIGNED} and "http://x/y?token=abc"`);
    assert.ok(!text.includes('deadbeef') && !text.includes('AKIA123') && !text.includes('token=abc'), text);
  });

  it('scrubs secrets in plain, URL-encoded and base64 forms', () => {
    const secret = 's3cret/pass+word';
    const text = `a ${secret} b ${encodeURIComponent(secret)} c ${Buffer.from(secret).toString('base64')}`;
    const out = scrubSecrets(text, [secret]);
    assert.ok(
      !out.includes(secret) &&
        !out.includes(encodeURIComponent(secret)) &&
        !out.includes(Buffer.from(secret).toString('base64')),
      out,
    );
  });

  it('keeps only name, code and a redacted message of a cause', () => {
    const original = Object.assign(new Error(`connect failed for ${PRESIGNED}`), {
      code: 'ECONNRESET',
      headers: { authorization: 'Bearer secret-token' },
    });
    const cause = sanitizeCause(original);
    const dump = JSON.stringify({ ...cause, message: cause.message });
    assert.ok(!dump.includes('secret-token') && !dump.includes('deadbeef'), dump);
    assert.equal((cause as Error & { code?: string }).code, 'ECONNRESET');
  });

  it('RegistryError messages never carry URL queries, and keep the ? of one redacted before', () => {
    const err = new RegistryError('ErrBlobUnknown', `blob missing at ${PRESIGNED}`, { host: 'h' });
    assert.ok(!err.message.includes('deadbeef'));
    assert.equal(err.host, 'h');
    assert.equal(err.code, 'ErrBlobUnknown');
    const twice = new RegistryError('ErrDenied', `after a redirect to ${redactUrl(PRESIGNED)}`);
    assert.equal(twice.message, 'after a redirect to https://bucket.s3.amazonaws.com/blobs/sha256/ab?<redacted>');
  });

  it('hides a presigned query echoed without its URL (a storage error body quoting the request)', () => {
    const echoed =
      'denied /blobs/sha256/ab?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA123, signature deadbeef, key X-Amz-Credential=AKIA123';
    const out = scrubSecrets(echoed, queryParts(new URL(PRESIGNED)));
    assert.ok(!out.includes('deadbeef') && !out.includes('AKIA123'), out);
    assert.deepEqual(queryParts(new URL('https://h/p')), []);
    assert.ok(
      !queryParts(new URL('https://h/p?X-Amz-Expires=3600&x=true')).includes('3600'),
      'short values alone would blank ordinary words',
    );
  });
});

describe('registry error bodies', () => {
  it('parses {"errors":[…]} and cuts long text', () => {
    const body = Buffer.from(
      JSON.stringify({
        errors: [
          { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v1' } },
          { code: 'X', message: 'y'.repeat(1000) },
        ],
      }),
    );
    const details = parseErrorBody(body);
    assert.equal(details.length, 2);
    assert.deepEqual(details[0], { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: '{"Tag":"v1"}' });
    assert.ok((details[1]?.message.length ?? 0) < 400);
  });
  it('yields nothing for other bodies', () => {
    for (const b of ['', 'oops', '{"errors":"x"}', '[1]', 'null']) assert.deepEqual(parseErrorBody(Buffer.from(b)), []);
  });
  it('scrubs secrets echoed in a body', () => {
    const details = parseErrorBody(
      Buffer.from('{"errors":[{"code":"DENIED","message":"bad password hunter22"}]}'),
      (t) => scrubSecrets(t, ['hunter22']),
    );
    assert.equal(details[0]?.message, 'bad password <redacted>');
  });
  it('maps statuses and registry codes', () => {
    const d = (code: string) => [{ code, message: '' }];
    assert.equal(codeForResponse(404, d('MANIFEST_UNKNOWN'), 'ErrBlobUnknown'), 'ErrManifestUnknown');
    assert.equal(codeForResponse(404, d('NAME_UNKNOWN'), 'ErrManifestUnknown'), 'ErrNameUnknown');
    assert.equal(codeForResponse(404, [], 'ErrBlobUnknown'), 'ErrBlobUnknown');
    assert.equal(codeForResponse(401, [], 'ErrBlobUnknown'), 'ErrUnauthorized');
    assert.equal(codeForResponse(403, d('DENIED'), 'ErrBlobUnknown'), 'ErrDenied');
    assert.equal(codeForResponse(429, d('TOOMANYREQUESTS'), 'ErrBlobUnknown'), 'ErrTooManyRequests');
    assert.equal(codeForResponse(503, d('MANIFEST_UNKNOWN'), 'ErrBlobUnknown'), 'ErrRegistryUnavailable');
    assert.equal(codeForResponse(418, [], 'ErrBlobUnknown'), 'ErrUnexpectedStatus');
  });
});
