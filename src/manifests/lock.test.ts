import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageLockError } from './errors.ts';
import { LockedResolutions, formatImageLock, makeImageLock, parseImageLock } from './lock.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('image lock', () => {
  it('is written sorted by ref (code units), de-duplicated, as the spec schema', () => {
    const lock = makeImageLock('index', [
      { ref: 'redis:7', digest: D2 },
      { ref: 'quay.io/team/tool:3', digest: D1 },
      { ref: 'Zeta/x:1', digest: D1 },
      { ref: 'redis:7', digest: D2 },
    ]);
    assert.equal(
      formatImageLock(lock),
      `apiVersion: kimg.dev/v1alpha1
kind: ImageLock
resolve: index
images:
  - ref: Zeta/x:1
    digest: ${D1}
  - ref: quay.io/team/tool:3
    digest: ${D1}
  - ref: redis:7
    digest: ${D2}
`,
    );
  });

  it('carries the image relocate wrote for each reference, and reads it back', () => {
    const lock = makeImageLock('index', [
      { ref: 'nginx:1.25', digest: D1, destination: `registry.internal/mirror/library/nginx:1.25@${D1}` },
      { ref: 'redis:7', digest: D2 },
    ]);
    const text = formatImageLock(lock);
    assert.match(
      text,
      /- ref: nginx:1\.25\n {4}digest: sha256:1+\n {4}destination: registry\.internal\/mirror\/library\/nginx:1\.25@sha256:1+\n/,
    );
    assert.deepEqual(parseImageLock(text, 'relocate.lock'), lock);
    assert.throws(
      () => parseImageLock(text.replace('registry.internal/mirror', 'Not A Name'), 'relocate.lock'),
      /images\[0\]\.destination must be an image reference/,
    );
  });

  it('round-trips, quoting references YAML would read as numbers', () => {
    const lock = makeImageLock('linux/arm64', [
      { ref: '1234', digest: D1 },
      { ref: 'nginx:1.25', digest: D2 },
    ]);
    const text = formatImageLock(lock);
    assert.deepEqual(parseImageLock(text, 'app.lock'), lock);
    assert.equal(formatImageLock(parseImageLock(text, 'app.lock')), text);
  });

  it('refuses one reference locked to two digests', () => {
    assert.throws(
      () =>
        makeImageLock('index', [
          { ref: 'a:1', digest: D1 },
          { ref: 'a:1', digest: D2 },
        ]),
      /two digests/,
    );
  });

  const invalid: [string, string, RegExp][] = [
    ['not a map', '- a\n', /expected a map/],
    ['wrong kind', `apiVersion: kimg.dev/v1alpha1\nkind: Lock\nresolve: index\n`, /kind must be ImageLock/],
    [
      'unknown key',
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nextra: 1\n`,
      /unknown key "extra"/,
    ],
    ['no resolve', `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nimages: []\n`, /"resolve"/],
    [
      'bad digest',
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages: [{ref: a, digest: "sha256:abc"}]\n`,
      /images\[0\]\.digest/,
    ],
    [
      'bad ref',
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages: [{ref: "A:b:c", digest: "${D1}"}]\n`,
      /images\[0\]\.ref/,
    ],
    ['YAML syntax', 'a: [\n', /not a kimg image lock/],
  ];
  for (const [name, text, message] of invalid) {
    it(`refuses a lock: ${name}`, () => {
      assert.throws(
        () => parseImageLock(text, 'app.lock'),
        (err: unknown) => {
          assert.ok(err instanceof ImageLockError);
          assert.equal(err.code, 'ErrLockInvalid');
          assert.match(err.message, /^app\.lock: /);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it('finds a reference as written or by its normalized form, never anything else', () => {
    const locked = new LockedResolutions(makeImageLock('index', [{ ref: 'redis:7', digest: D2 }]), 'app.lock');
    assert.equal(locked.digestFor('redis:7'), D2);
    assert.equal(locked.digestFor('docker.io/library/redis:7'), D2);
    assert.equal(locked.find('redis:8'), undefined);
    assert.throws(
      () => locked.digestFor('redis:8'),
      (err: unknown) =>
        err instanceof ImageLockError &&
        err.code === 'ErrNotInLock' &&
        /redis:8: not in lock app\.lock/.test(err.message),
    );
  });

  it('refuses a replay that resolves differently from the run that wrote the lock', () => {
    const locked = new LockedResolutions(makeImageLock('linux/arm64', []), 'app.lock');
    locked.assertResolve('linux/arm64');
    assert.throws(
      () => locked.assertResolve('index'),
      (err: unknown) =>
        err instanceof ImageLockError &&
        err.code === 'ErrLockResolveMismatch' &&
        /--platform linux\/arm64/.test(err.message),
    );
  });
});
