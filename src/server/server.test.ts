import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BasicAuthenticator, apr1 } from './auth.ts';
import { DistributionError } from './errors.ts';
import { acceptedTypes, parseRange } from './http-utils.ts';
import { catalogName, repositoryOf } from './names.ts';
import { matchRoute } from './routes.ts';
import { isLoopback } from './server.ts';

describe('repository names', () => {
  test('ns, a host of its own, or the default upstream', () => {
    assert.equal(repositoryOf('library/nginx', 'docker.io', 'docker.io').full, 'docker.io/library/nginx');
    assert.equal(repositoryOf('nginx', undefined, 'docker.io').full, 'docker.io/library/nginx');
    assert.equal(repositoryOf('team/app', '127.0.0.1:5000', 'docker.io').full, '127.0.0.1:5000/team/app');
    assert.equal(repositoryOf('quay.io/team/app', undefined, 'docker.io').full, 'quay.io/team/app');
    assert.equal(repositoryOf('team/app', undefined, 'registry.local:5000').full, 'registry.local:5000/team/app');
    assert.equal(repositoryOf('localhost/app', undefined, 'docker.io').full, 'localhost/app');
  });

  test('invalid names and hosts are NAME_INVALID', () => {
    for (const [name, ns] of [
      ['Upper/case', undefined],
      ['a/../b', undefined],
      ['a//b', undefined],
      ['a/b', '../x'],
      ['a/b', 'host/path'],
      ['a'.repeat(300), undefined],
      ['a/b:tag', undefined],
    ] as const) {
      assert.throws(
        () => repositoryOf(name, ns, 'docker.io'),
        (err: unknown) => err instanceof DistributionError && err.code === 'NAME_INVALID',
        `${name} ${ns}`,
      );
    }
  });

  test('catalog names drop the default upstream only', () => {
    assert.equal(catalogName('docker.io/library/nginx', 'docker.io'), 'library/nginx');
    assert.equal(catalogName('quay.io/a/b', 'docker.io'), 'quay.io/a/b');
  });
});

describe('routes', () => {
  test('the name is everything before the last route word', () => {
    assert.deepEqual(matchRoute('/v2/a/blobs/b/manifests/1'), { kind: 'manifest', name: 'a/blobs/b', reference: '1' });
    assert.deepEqual(matchRoute('/v2/a/b/blobs/uploads/'), { kind: 'uploads', name: 'a/b' });
    assert.deepEqual(matchRoute('/v2/a/b/blobs/uploads/x1'), { kind: 'upload', name: 'a/b', id: 'x1' });
    assert.deepEqual(matchRoute('/v2/a/tags/list'), { kind: 'tags', name: 'a' });
    assert.deepEqual(matchRoute('/v2/_catalog'), { kind: 'catalog' });
    assert.equal(matchRoute('/v2/a/unknown'), undefined);
    assert.equal(matchRoute(`/v2/${'a/'.repeat(2000)}manifests/x`), undefined);
  });
});

describe('HTTP pieces', () => {
  test('Range: one range, suffixes, unsatisfiable, ignored forms', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=90-500', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange('items=0-1', 100), undefined);
    assert.equal(parseRange('bytes=5-1', 100), undefined);
  });

  test('Accept: types without parameters; wildcards accept anything', () => {
    assert.deepEqual(acceptedTypes('application/a; q=0.5, application/b'), new Set(['application/a', 'application/b']));
    assert.equal(acceptedTypes('application/a, */*'), undefined);
    assert.equal(acceptedTypes(undefined), undefined);
  });

  test('loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) assert.ok(isLoopback(host), host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) assert.ok(!isLoopback(host), host);
  });
});

describe('htpasswd', () => {
  const htpasswd = (args: string[]): string | undefined => {
    const result = spawnSync('htpasswd', args, { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : undefined;
  };

  test('apr1 matches Apache htpasswd -m; {SHA} and bcrypt entries verify', async () => {
    const md5 = htpasswd(['-nbm', 'alice', 'secret pass']);
    const sha = htpasswd(['-nbs', 'bob', 'hunter2']);
    const bcrypt = htpasswd(['-nbB', 'carol', 'p@ss']);
    const bcrypt2 = htpasswd(['-nbB', 'dave', 'd4ve']);
    if (md5 === undefined || sha === undefined || bcrypt === undefined || bcrypt2 === undefined) return;
    const entry = md5.slice(md5.indexOf(':') + 1);
    assert.equal(apr1('secret pass', entry.split('$')[2] ?? ''), entry);
    const dir = await mkdtemp(join(tmpdir(), 'kimg-htpasswd-'));
    try {
      const file = join(dir, 'htpasswd');
      await writeFile(file, `${md5}\n${sha}\n# comment\n${bcrypt}\n${bcrypt2}\n`);
      const auth = await BasicAuthenticator.load(file);
      const basic = (user: string, password: string) =>
        `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      assert.equal(await auth.check(basic('alice', 'secret pass')), 'alice');
      assert.equal(await auth.check(basic('alice', 'wrong')), undefined);
      assert.equal(await auth.check(basic('bob', 'hunter2')), 'bob');
      // Parallel requests with one header wait for one htpasswd run; each gets its own answer.
      assert.deepEqual(
        await Promise.all(['p@ss', 'p@ss', 'nope', 'p@ss', 'nope'].map((p) => auth.check(basic('carol', p)))),
        ['carol', 'carol', undefined, 'carol', undefined],
      );
      assert.equal(await auth.check(basic('carol', 'p@ss')), 'carol');
      assert.equal(await auth.check(basic('carol', 'p@ss2')), undefined);
      assert.equal(await auth.check(basic('nobody', 'x')), undefined);
      // A flood of distinct wrong passwords: a few htpasswd runs at once, the excess refused
      // without a run; every answer is a refusal, and the right password still works after it.
      const flood = await Promise.all(Array.from({ length: 400 }, (_, i) => auth.check(basic('carol', `guess ${i}`))));
      assert.ok(flood.every((user) => user === undefined));
      assert.equal(await auth.check(basic('dave', 'd4ve')), 'dave');
      assert.equal(await auth.check('Bearer abc'), undefined);
      assert.equal(await auth.check(undefined), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
