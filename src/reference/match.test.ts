import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidReferenceError, familiarMatch, parse, parseAnyReference, parseNormalizedNamed } from './index.ts';
import { pathMatch } from './match.ts';

const BAD = 'bad';

// Go's own table for path.Match (src/path/match_test.go), which the port must reproduce.
const goMatchTests: [pattern: string, name: string, want: boolean | typeof BAD][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', BAD],
  ['[-]', '-', BAD],
  ['[x-]', 'x', BAD],
  ['[x-]', '-', BAD],
  ['[x-]', 'z', BAD],
  ['[-x]', 'x', BAD],
  ['[-x]', '-', BAD],
  ['[-x]', 'a', BAD],
  ['\\', 'a', BAD],
  ['[a-b-c]', 'a', BAD],
  ['[', 'a', BAD],
  ['[^', 'a', BAD],
  ['[^bc', 'a', BAD],
  ['a[', 'a', BAD],
  ['a[', 'ab', BAD],
  ['a[', 'x', BAD],
  ['a/b[', 'x', BAD],
  ['*x', 'xxx', true],
];

describe('pathMatch (Go path.Match)', () => {
  for (const [pattern, name, want] of goMatchTests) {
    it(`${pattern} ~ ${name}`, () => {
      const got = pathMatch(pattern, name);
      if (want === BAD) assert.equal(typeof got, 'object');
      else assert.equal(got, want);
    });
  }

  it('treats ** as two stars', () => {
    assert.equal(pathMatch('foo/**/bar', 'foo/a/bar'), true);
    assert.equal(pathMatch('foo/**/bar', 'foo/a/b/bar'), false);
  });

  it('reports a syntax error after a part that already failed', () => {
    assert.deepEqual(pathMatch('x*[', 'abc'), { badPatternAt: 3 });
    assert.deepEqual(pathMatch('zz[a-', 'abc'), { badPatternAt: 5 });
    assert.equal(pathMatch('x*', 'abc'), false);
  });

  it('retries after * at every byte, even inside a character, as Go does', () => {
    // After "*", Go tries the chunk at the second byte of "é", where [^é] takes the stray byte.
    assert.equal(pathMatch('*[^é]é', 'éé'), true);
    assert.equal(pathMatch('?', 'é'), true);
    assert.equal(pathMatch('??', 'é'), false);
  });
});

describe('familiarMatch', () => {
  it('matches the familiar string, then the familiar name', () => {
    assert.equal(familiarMatch('ubuntu', parseNormalizedNamed('docker.io/library/ubuntu:22.04')), true);
    assert.equal(familiarMatch('ubuntu:*', parseNormalizedNamed('ubuntu:22.04')), true);
    assert.equal(familiarMatch('docker.io/*', parseNormalizedNamed('ubuntu')), false);
    assert.equal(familiarMatch('*/app', parse('quay.io/app:1')), true);
    assert.equal(familiarMatch('sha256:*', parseAnyReference(`sha256:${'a'.repeat(64)}`)), true);
  });

  it('throws path.ErrBadPattern with the offset in the pattern', () => {
    try {
      familiarMatch('é[-x]', parse('foo'));
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof InvalidReferenceError);
      assert.equal(err.code, 'path.ErrBadPattern');
      assert.equal(err.reason, 'syntax error in pattern');
      assert.equal(err.input, 'é[-x]');
      assert.equal(err.offset, 2);
    }
  });
});
