import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDockerRef } from '../reference/index.ts';
import { RelocateError } from './errors.ts';
import {
  assertNoCollisions,
  formatRelocateTarget,
  isUnderTarget,
  parseRelocateTarget,
  relocatedRepository,
  type NameMapping,
} from './relocate-names.ts';

const map = (image: string, to: string, mapping: NameMapping = 'path') =>
  relocatedRepository(parseDockerRef(image), parseRelocateTarget(to), mapping);

describe('relocate names', () => {
  it('parses REGISTRY[/PREFIX], normalizing the Docker Hub host', () => {
    assert.deepEqual(parseRelocateTarget('registry.example.com/mirror'), {
      registry: 'registry.example.com',
      prefix: 'mirror',
    });
    assert.deepEqual(parseRelocateTarget('localhost:5000'), { registry: 'localhost:5000', prefix: '' });
    assert.deepEqual(parseRelocateTarget('localhost'), { registry: 'localhost', prefix: '' });
    assert.deepEqual(parseRelocateTarget('10.0.0.7:5000/a/b'), { registry: '10.0.0.7:5000', prefix: 'a/b' });
    assert.deepEqual(parseRelocateTarget('index.docker.io/myorg'), { registry: 'docker.io', prefix: 'myorg' });
    assert.equal(formatRelocateTarget(parseRelocateTarget('reg.io/a/b')), 'reg.io/a/b');
  });

  it('refuses a target that is not a registry and path, naming it', () => {
    for (const [to, why] of [
      ['mirror', /"mirror" is not a registry host/],
      ['mirror/apps', /"mirror" is not a registry host/],
      ['', /no registry host/],
      ['reg.io/', /ends with "\/"/],
      ['https://reg.io/x', /URL scheme/],
      ['reg.io/Mirror', /not a repository path/],
      ['reg.io/mirror:v1', /not a repository path|tag or digest/],
      ['reg.io/a//b', /not a repository path/],
      ['reg io/x', /is not a registry host/],
    ] as const) {
      assert.throws(
        () => parseRelocateTarget(to),
        (err: unknown) =>
          err instanceof RelocateError &&
          err.code === 'ErrRelocateTarget' &&
          err.message.includes(JSON.stringify(to)) &&
          why.test(err.message),
        to,
      );
    }
  });

  it('maps as kbld and skopeo sync do: the source host dropped, the path kept', () => {
    assert.equal(map('nginx:1.25', 'reg.io/mirror'), 'reg.io/mirror/library/nginx');
    assert.equal(map('docker.io/library/nginx', 'reg.io/mirror'), 'reg.io/mirror/library/nginx');
    assert.equal(map('ghcr.io/org/app@sha256:' + 'a'.repeat(64), 'reg.io/mirror'), 'reg.io/mirror/org/app');
    assert.equal(map('quay.io/a/b/c:1', 'localhost:5000'), 'localhost:5000/a/b/c');
  });

  it('--keep-host keeps the source host as a path component, a port written with _', () => {
    assert.equal(map('ghcr.io/org/app', 'reg.io/mirror', 'keep-host'), 'reg.io/mirror/ghcr.io/org/app');
    assert.equal(map('nginx', 'reg.io/mirror', 'keep-host'), 'reg.io/mirror/docker.io/library/nginx');
    assert.equal(map('localhost:5000/app', 'reg.io', 'keep-host'), 'reg.io/localhost_5000/app');
    assert.equal(map('Registry.Local:5000/app', 'reg.io', 'keep-host'), 'reg.io/registry.local_5000/app');
    assert.throws(
      () => map('[::1]:5000/app', 'reg.io', 'keep-host'),
      (err: unknown) =>
        err instanceof RelocateError && err.code === 'ErrRelocateName' && /\[::1\]:5000\/app/.test(err.message),
    );
  });

  it('--flatten keeps the last path component only', () => {
    assert.equal(map('ghcr.io/org/team/app:1', 'reg.io/mirror', 'flatten'), 'reg.io/mirror/app');
    assert.equal(map('nginx', 'reg.io', 'flatten'), 'reg.io/nginx');
  });

  it('refuses a destination longer than a repository name may be', () => {
    const long = `reg.io/${'p'.repeat(200)}`;
    assert.throws(
      () => map(`ghcr.io/${'a'.repeat(60)}/app`, long),
      (err: unknown) => err instanceof RelocateError && err.code === 'ErrRelocateName',
    );
  });

  it('knows what is already under the target', () => {
    const target = parseRelocateTarget('reg.io/mirror');
    assert.equal(isUnderTarget(parseDockerRef('reg.io/mirror/library/nginx:1'), target), true);
    assert.equal(isUnderTarget(parseDockerRef('reg.io/mirror'), target), true);
    assert.equal(isUnderTarget(parseDockerRef('reg.io/mirrors/app'), target), false);
    assert.equal(isUnderTarget(parseDockerRef('reg.io/other/app'), target), false);
    assert.equal(isUnderTarget(parseDockerRef('other.io/mirror/app'), target), false);
    assert.equal(isUnderTarget(parseDockerRef('reg.io/any/app'), parseRelocateTarget('reg.io')), true);
    assert.equal(isUnderTarget(parseDockerRef('myorg/app'), parseRelocateTarget('docker.io/myorg')), true);
  });

  it('finds two sources landing in one repository, naming both', () => {
    assertNoCollisions([
      { source: 'docker.io/library/nginx', destination: 'reg.io/library/nginx' },
      { source: 'docker.io/library/nginx', destination: 'reg.io/library/nginx' },
    ]);
    assert.throws(
      () =>
        assertNoCollisions([
          { source: 'ghcr.io/team/app', destination: 'reg.io/app' },
          { source: 'quay.io/other/app', destination: 'reg.io/app' },
        ]),
      (err: unknown) =>
        err instanceof RelocateError &&
        err.code === 'ErrRelocateCollision' &&
        err.message.includes('ghcr.io/team/app and quay.io/other/app would both be copied to reg.io/app') &&
        err.images.length === 2,
    );
  });
});
