import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestFileError } from './errors.ts';
import { formatFieldPath, parseFieldPath } from './paths.ts';

describe('field paths', () => {
  it('parses keys, indexes, wildcards and quoted keys', () => {
    assert.deepEqual(parseFieldPath('spec.jobs[0].image'), [
      { key: 'spec' },
      { key: 'jobs' },
      { index: 0 },
      { key: 'image' },
    ]);
    assert.deepEqual(parseFieldPath('images[*]'), [{ key: 'images' }, { each: true }]);
    assert.deepEqual(parseFieldPath('metadata.annotations["kimg.dev/image"]'), [
      { key: 'metadata' },
      { key: 'annotations' },
      { key: 'kimg.dev/image' },
    ]);
  });

  for (const bad of ['', '.a', 'a.', 'a..b', 'a[', 'a[01]', 'a[x]', 'a[0]b']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseFieldPath(bad, 'extra path'),
        (err: unknown) =>
          err instanceof ManifestFileError &&
          err.code === 'ErrManifestPath' &&
          err.message.includes('invalid extra path'),
      );
    });
  }

  it('formats paths as the webhook reports them, quoting keys that would not read back', () => {
    assert.equal(
      formatFieldPath([{ key: 'spec' }, { key: 'containers' }, { index: 2 }, { key: 'image' }]),
      'spec.containers[2].image',
    );
    assert.equal(formatFieldPath([{ key: 'metadata' }, { key: 'kimg.dev/image' }]), 'metadata["kimg.dev/image"]');
    assert.deepEqual(parseFieldPath(formatFieldPath([{ key: 'a' }, { key: 'b.c' }, { index: 1 }])), [
      { key: 'a' },
      { key: 'b.c' },
      { index: 1 },
    ]);
  });
});
