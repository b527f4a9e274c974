import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestError, digestOf } from '../digest/index.ts';
import { defaultStorePath } from './index.ts';
import { blobRelativePath } from './paths.ts';

describe('defaultStorePath', () => {
  it('prefers $KIMG_STORE, then $XDG_DATA_HOME/kimg, then ~/.local/share/kimg', () => {
    assert.equal(defaultStorePath({ KIMG_STORE: '/srv/images', XDG_DATA_HOME: '/xdg' }, '/home/u'), '/srv/images');
    assert.equal(defaultStorePath({ XDG_DATA_HOME: '/xdg' }, '/home/u'), '/xdg/kimg');
    assert.equal(defaultStorePath({}, '/home/u'), '/home/u/.local/share/kimg');
    assert.equal(defaultStorePath({ KIMG_STORE: '', XDG_DATA_HOME: '' }, '/home/u'), '/home/u/.local/share/kimg');
    // The XDG spec says relative paths are invalid and to be ignored.
    assert.equal(defaultStorePath({ XDG_DATA_HOME: 'relative' }, '/home/u'), '/home/u/.local/share/kimg');
    assert.equal(defaultStorePath({ KIMG_STORE: 'rel/store' }, '/home/u'), `${process.cwd()}/rel/store`);
  });
});

describe('blob paths', () => {
  it('come only from validated digests', () => {
    const digest = digestOf('x');
    assert.equal(blobRelativePath(digest).file, `blobs/sha256/${digest.slice(7)}`);
    assert.equal(blobRelativePath(digestOf('x', 'sha512')).dir, 'blobs/sha512');
    for (const bad of [
      'sha256:../../../etc/passwd',
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'a'.repeat(65)}`,
      `md5:${'a'.repeat(32)}`,
      `sha256/${'a'.repeat(64)}`,
    ]) {
      assert.throws(() => blobRelativePath(bad), DigestError, bad);
    }
  });
});
