import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import {
  DigestError,
  DigestVerifier,
  VerifyError,
  createVerifyStream,
  digestOf,
  isValidDigest,
  parseDigest,
  tryParseDigest,
} from './index.ts';

const hex64 = 'a'.repeat(64);

describe('parseDigest (go-digest v1.0.0 rules)', () => {
  const cases: [string, string | undefined][] = [
    [`sha256:${hex64}`, undefined],
    [`sha384:${'b'.repeat(96)}`, undefined],
    [`sha512:${'0'.repeat(128)}`, undefined],
    [`sha256:${'a'.repeat(63)}`, 'digest.ErrDigestInvalidLength'],
    [`sha256:${'A'.repeat(64)}`, 'digest.ErrDigestInvalidFormat'],
    [`sha256:${'g'.repeat(64)}`, 'digest.ErrDigestInvalidFormat'],
    [`SHA256:${hex64}`, 'digest.ErrDigestInvalidFormat'],
    [`md5:${'a'.repeat(32)}`, 'digest.ErrDigestUnsupported'],
    [`foo.bar+baz:${'a'.repeat(32)}`, 'digest.ErrDigestUnsupported'],
    ['sha256:', 'digest.ErrDigestInvalidFormat'],
    [':abc', 'digest.ErrDigestInvalidFormat'],
    ['sha256', 'digest.ErrDigestInvalidFormat'],
    ['', 'digest.ErrDigestInvalidFormat'],
    ['sha256:../../etc/passwd', 'digest.ErrDigestInvalidLength'],
    [`sha256:${'a'.repeat(61)}%2F`, 'digest.ErrDigestInvalidFormat'],
    [`sha256:${'a'.repeat(63)}?`, 'digest.ErrDigestInvalidFormat'],
    [`sha256:${'a'.repeat(63)}#`, 'digest.ErrDigestInvalidFormat'],
  ];
  for (const [input, code] of cases) {
    it(`${input.slice(0, 30)} → ${code ?? 'valid'}`, () => {
      const result = tryParseDigest(input);
      if (code === undefined) {
        assert.equal(result.ok, true);
        assert.equal(isValidDigest(input), true);
      } else {
        assert.equal(result.ok, false);
        assert.ok(!result.ok && result.error instanceof DigestError);
        assert.equal(!result.ok && result.error.code, code);
        assert.throws(
          () => parseDigest(input),
          (err: unknown) => err instanceof DigestError && err.code === code,
        );
      }
    });
  }

  it('honours the enabled algorithm set', () => {
    const sha512 = `sha512:${'0'.repeat(128)}`;
    assert.equal(isValidDigest(sha512, { algorithms: ['sha256'] }), false);
    assert.equal(tryParseDigest(sha512, { algorithms: ['sha256'] }).ok, false);
  });

  it('names the input in the message and keeps upstream text as reason', () => {
    const result = tryParseDigest('sha256:xyz');
    assert.ok(!result.ok);
    assert.equal(result.error.reason, 'invalid checksum digest length');
    assert.match(result.error.message, /sha256:xyz/);
  });
});

describe('DigestVerifier', () => {
  const data = Buffer.from('hello, kimg');
  const digest = digestOf(data);

  it('accepts the exact content', () => {
    const v = new DigestVerifier(digest, data.length);
    v.update(data.subarray(0, 4));
    v.update(data.subarray(4));
    v.finish();
    assert.equal(v.bytes, data.length);
  });

  it('fails the moment content exceeds the declared size', () => {
    const v = new DigestVerifier(digest, data.length - 1);
    assert.throws(
      () => v.update(data),
      (err: unknown) => err instanceof VerifyError && err.code === 'ErrSizeMismatch',
    );
  });

  it('fails a short body and a flipped byte', () => {
    const short = new DigestVerifier(digest, data.length);
    short.update(data.subarray(1));
    assert.throws(() => short.finish(), { code: 'ErrSizeMismatch' });
    const flipped = Buffer.from(data);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const wrong = new DigestVerifier(digest, data.length);
    wrong.update(flipped);
    assert.throws(
      () => wrong.finish(),
      (err: unknown) =>
        err instanceof VerifyError && err.code === 'ErrDigestMismatch' && err.actualDigest === digestOf(flipped),
    );
  });

  it('rejects an invalid expected digest before any content', () => {
    assert.throws(() => new DigestVerifier('sha256:../x', 1), DigestError);
  });

  it('verifies a stream end to end', async () => {
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([data]),
      createVerifyStream(digest, data.length),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) chunks.push(chunk as Buffer);
      },
    );
    assert.deepEqual(Buffer.concat(chunks), data);
    await assert.rejects(
      pipeline(Readable.from([data, data]), createVerifyStream(digest, data.length), async function* (source) {
        for await (const _ of source) yield;
      }),
      { code: 'ErrSizeMismatch' },
    );
  });
});
