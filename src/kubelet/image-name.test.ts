import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyDefaultImageTag, parseImageName, repositoryOf } from './image-name.ts';

const hex = 'a'.repeat(64);

describe('applyDefaultImageTag (docs/semantics.md kubelet §2)', () => {
  const table: [string, string][] = [
    ['busybox', 'busybox:latest'],
    ['busybox:1.36', 'busybox:1.36'],
    ['busybox:latest', 'busybox:latest'],
    ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['registry:5000/app', 'registry:5000/app:latest'],
    ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v1'],
    [`busybox@sha256:${hex}`, `busybox@sha256:${hex}`],
    [`busybox:1.36@sha256:${hex}`, `busybox:1.36@sha256:${hex}`],
  ];
  for (const [input, expected] of table) {
    it(`${input} → ${expected} (appended literally, not normalized)`, () =>
      assert.deepEqual(applyDefaultImageTag(input), { ok: true, image: expected }));
  }

  it('fails with the kubelet text for a name that does not parse', () => {
    assert.deepEqual(applyDefaultImageTag('Nginx'), {
      ok: false,
      error:
        'couldn\'t parse image name "Nginx": invalid reference format: repository name (library/Nginx) must be lowercase',
    });
    assert.deepEqual(applyDefaultImageTag('nginx:'), {
      ok: false,
      error: 'couldn\'t parse image name "nginx:": invalid reference format',
    });
    assert.deepEqual(applyDefaultImageTag(''), {
      ok: false,
      error: 'couldn\'t parse image name "": invalid reference format',
    });
  });
});

describe('parseImageName (ParseImageName)', () => {
  it('gives latest only when there is neither tag nor digest', () => {
    const bare = parseImageName('nginx');
    assert.ok(bare.ok);
    assert.equal(bare.value.tag, 'latest');
    assert.equal(bare.value.repository, 'docker.io/library/nginx');
    const digestOnly = parseImageName(`nginx@sha256:${hex}`);
    assert.ok(digestOnly.ok);
    assert.equal(digestOnly.value.tag, '');
    assert.equal(digestOnly.value.digest, `sha256:${hex}`);
  });

  it('keys credentials by the normalized repository without tag or digest', () => {
    assert.equal(repositoryOf('nginx:1.25'), 'docker.io/library/nginx');
    assert.equal(repositoryOf(`reg:5000/a/b@sha256:${hex}`), 'reg:5000/a/b');
    assert.equal(repositoryOf('Nginx'), undefined);
  });
});
