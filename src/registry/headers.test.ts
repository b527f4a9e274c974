import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentLength, headerValue, parseRateLimit, parseWarnings } from './headers.ts';

describe('headers', () => {
  it('refuses repeated headers that disagree', () => {
    assert.equal(headerValue({ 'content-length': ['5', '5'] }, 'content-length'), '5');
    assert.equal(headerValue({ 'content-length': ['5', '6'] }, 'content-length'), undefined);
  });
  it('reads Content-Length strictly', () => {
    assert.equal(contentLength({ 'content-length': '123' }), 123);
    for (const bad of ['-1', '1e3', ' ', '12abc', '99999999999999999'])
      assert.equal(contentLength({ 'content-length': bad }), undefined, bad);
  });
  it('collects distinct 299 warnings only', () => {
    const warnings = parseWarnings({
      warning: [
        '299 - "this repository is deprecated"',
        '299 - "this repository is deprecated"',
        '199 - "misc"',
        '299 registry "say \\"hi\\"", 299 - "second"',
      ],
    });
    assert.deepEqual(warnings, ['this repository is deprecated', 'say "hi"', 'second']);
  });
  it('reads at most 4096 bytes of warnings', () => {
    const many = Array.from({ length: 100 }, (_, i) => `299 - "${String(i).padStart(80, 'x')}"`);
    assert.ok(parseWarnings({ warning: many }).length < 60);
  });
  it('parses Docker Hub rate-limit headers', () => {
    assert.deepEqual(
      parseRateLimit({
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '76;w=21600',
        'docker-ratelimit-source': '192.0.2.1',
      }),
      {
        limit: 100,
        remaining: 76,
        windowSeconds: 21600,
        source: '192.0.2.1',
      },
    );
    assert.equal(parseRateLimit({}), undefined);
  });
});
