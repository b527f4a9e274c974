import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KimgError } from '../errors/index.ts';
import {
  InvalidReferenceError,
  domain,
  familiarName,
  familiarString,
  isIdentifier,
  matchAnchoredName,
  matchDomain,
  matchReference,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  path,
  sort,
  tagNameOnly,
  trimNamed,
  tryParse,
  tryParseAnyReference,
  tryParseDockerRef,
  tryParseNormalizedNamed,
  withDigest,
  withName,
  withTag,
  type ReferenceErrorCode,
} from './index.ts';

const HEX64 = 'a'.repeat(64);
const DIGEST = `sha256:${HEX64}`;

/** The error `fn` throws, asserting it is our typed error. */
function thrown(fn: () => unknown): InvalidReferenceError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidReferenceError, `expected InvalidReferenceError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an error');
}

describe('docs/semantics.md references §7 worked examples', () => {
  const examples: [input: string, normalized: string, familiar: string][] = [
    ['ubuntu', 'docker.io/library/ubuntu', 'ubuntu'],
    ['docker.io/ubuntu:22.04', 'docker.io/library/ubuntu:22.04', 'ubuntu:22.04'],
    ['index.docker.io/user/app', 'docker.io/user/app', 'user/app'],
    ['library/foo/bar', 'docker.io/library/foo/bar', 'library/foo/bar'],
    ['localhost/app', 'localhost/app', 'localhost/app'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['[::1]:5000/app', '[::1]:5000/app', '[::1]:5000/app'],
    ['Foo/bar', 'Foo/bar', 'Foo/bar'],
    ['example.com', 'docker.io/library/example.com', 'example.com'],
  ];
  for (const [input, normalized, familiar] of examples) {
    it(`${input} → ${normalized}`, () => {
      const ref = parseNormalizedNamed(input);
      assert.equal(ref.toString(), normalized);
      assert.equal(familiarString(ref), familiar);
    });
  }

  it('foo/Bar is errNameNotLowercase', () => {
    const err = thrown(() => parseNormalizedNamed('foo/Bar'));
    assert.equal(err.code, 'errNameNotLowercase');
    assert.equal(err.reason, 'invalid reference format: repository name (foo/Bar) must be lowercase');
    assert.equal(err.offset, 4);
  });

  it('parse("foo/bar") takes foo as the domain', () => {
    const ref = parse('foo/bar');
    assert.deepEqual([ref.domain, ref.path, domain(ref), path(ref)], ['foo', 'bar', 'foo', 'bar']);
  });

  it('parseDockerRef("gcr.io/p/app") adds latest', () => {
    assert.equal(parseDockerRef('gcr.io/p/app').toString(), 'gcr.io/p/app:latest');
  });
});

describe('docs/semantics.md references §11 quirks kept', () => {
  it('bare localhost, example.com and example.com:5000 are official images', () => {
    assert.equal(parseNormalizedNamed('localhost').toString(), 'docker.io/library/localhost');
    const ref = parseNormalizedNamed('example.com:5000');
    assert.deepEqual([ref.path, ref.tag], ['library/example.com', '5000']);
  });

  it('foo@SHA256:… is errNameNotLowercase', () => {
    assert.equal(thrown(() => parseNormalizedNamed(`foo@SHA256:${HEX64}`)).code, 'errNameNotLowercase');
  });

  it('an uppercase first component is a domain when normalizing; parse takes any domain shape', () => {
    assert.equal(parseNormalizedNamed('LOCALDOMAIN/x').domain, 'LOCALDOMAIN');
    assert.equal(parseNormalizedNamed('Docker.io/x').domain, 'Docker.io');
    assert.equal(parse('test:5000/repo').domain, 'test:5000');
    assert.equal(parse('foo/foo_bar.com:8080').tag, '8080');
  });

  it('withDigest checks the grammar only', () => {
    const ref = withDigest(withName('foo'), `sha256:${'1'.repeat(37)}`);
    assert.equal(ref.toString(), `foo@sha256:${'1'.repeat(37)}`);
    assert.equal(withDigest(withName('foo'), `md5:${'A'.repeat(32)}`).digest, `md5:${'A'.repeat(32)}`);
  });

  it('sort puts unparseable entries last, in byte order', () => {
    assert.deepEqual(sort(['Z!', 'b', 'A!', 'a:1', `a@${DIGEST}`, HEX64, `a:1@${DIGEST}`]), [
      `docker.io/library/a:1@${DIGEST}`,
      'docker.io/library/a:1',
      `docker.io/library/a@${DIGEST}`,
      'docker.io/library/b',
      DIGEST,
      'A!',
      'Z!',
    ]);
  });

  it('sort orders the rejects by UTF-8 bytes, not UTF-16 units', () => {
    // UTF-16 order puts U+1F600 (surrogate D83D) before U+FF01; in UTF-8, as Go compares, EF < F0.
    assert.deepEqual(sort(['\u{1F600}', '\uFF01']), ['\uFF01', '\u{1F600}']);
    assert.deepEqual(sort([]), []);
  });
});

describe('parse', () => {
  it('splits name, domain, path, tag and digest', () => {
    const ref = parse(`registry.k8s.io:443/sig/pause:3.9@${DIGEST}`);
    assert.equal(ref.kind, 'name+tag+digest');
    assert.equal(ref.name, 'registry.k8s.io:443/sig/pause');
    assert.equal(ref.domain, 'registry.k8s.io:443');
    assert.equal(ref.path, 'sig/pause');
    assert.equal(ref.tag, '3.9');
    assert.equal(ref.digest, DIGEST);
    assert.equal(String(ref), `registry.k8s.io:443/sig/pause:3.9@${DIGEST}`);
    assert.equal(JSON.stringify({ image: ref }), `{"image":"registry.k8s.io:443/sig/pause:3.9@${DIGEST}"}`);
  });

  it('names each kind', () => {
    assert.equal(parse('a').kind, 'name');
    assert.equal(parse('a:b').kind, 'name+tag');
    assert.equal(parse(`a@${DIGEST}`).kind, 'name+digest');
    assert.equal(parse(`a:b@${DIGEST}`).kind, 'name+tag+digest');
    assert.equal(parseAnyReference(DIGEST).kind, 'digest');
  });

  it('never normalizes', () => {
    const ref = parse('ubuntu');
    assert.deepEqual([ref.domain, ref.path, ref.toString()], ['', 'ubuntu', 'ubuntu']);
  });

  it('accepts separators as the grammar has them', () => {
    for (const ok of ['a.b', 'a_b', 'a__b', 'a-b', 'a---b', 'a-b.c_d__e/f', 'xn--n3h.com/x'])
      assert.ok(tryParse(ok).ok, ok);
    for (const bad of ['a..b', 'a___b', 'a._b', 'a-', '-a', '_a', 'a/', '/a', 'a//b', 'a-.b']) {
      assert.equal(tryParse(bad).ok, false, bad);
    }
  });

  it('accepts IPv6 hosts only bracketed, without zone or dotted tail', () => {
    assert.equal(parse('[::1]/x').domain, '[::1]');
    assert.equal(parse('[::1]:5000/x').domain, '[::1]:5000');
    for (const bad of ['[fe80::1%eth0]/x', '[2001:db8::192.0.2.33]/x', '[]/x', '[::1]', '[::1/x', 'fc00::1:5000/x']) {
      assert.equal(tryParse(bad).ok, false, bad);
    }
  });

  it('limits tags to 128 characters starting with [A-Za-z0-9_]', () => {
    assert.equal(parse(`a:${'T'.repeat(128)}`).tag, 'T'.repeat(128));
    assert.equal(parse('a:_x').tag, '_x');
    const long = tryParse(`a:${'t'.repeat(129)}`);
    assert.ok(!long.ok);
    assert.deepEqual([long.code, long.offset], ['ErrReferenceInvalidFormat', 130]);
    for (const bad of ['a:.x', 'a:-x', 'a:x/y', 'a:x~', 'a:']) assert.equal(tryParse(bad).ok, false, bad);
  });

  it('counts only the path towards 255 characters, after the domain', () => {
    const domainName = `${'d'.repeat(300)}.com`;
    assert.equal(parse(`${domainName}/${'p'.repeat(255)}`).path.length, 255);
    const err = thrown(() => parse(`${domainName}/${'p'.repeat(256)}`));
    assert.equal(err.code, 'ErrNameTooLong');
    assert.equal(err.offset, domainName.length + 1 + 255);
  });

  it('checks the length before the digest', () => {
    assert.equal(thrown(() => parse(`${'a'.repeat(256)}@sha256:${'f'.repeat(40)}`)).code, 'ErrNameTooLong');
  });

  it('validates digests by go-digest rules, with the enabled algorithms', () => {
    const cases: [string, ReferenceErrorCode, number][] = [
      [`a@sha256:${'f'.repeat(63)}`, 'digest.ErrDigestInvalidLength', 2],
      [`a@sha256:${'F'.repeat(64)}`, 'digest.ErrDigestInvalidFormat', 9],
      [`a@SHA256:${'f'.repeat(64)}`, 'digest.ErrDigestInvalidFormat', 2],
      [`a@md5:${'f'.repeat(32)}`, 'digest.ErrDigestUnsupported', 2],
      [`a@sha256:${'f'.repeat(31)}`, 'ErrReferenceInvalidFormat', 40],
    ];
    for (const [input, code, offset] of cases) {
      const result = tryParse(input);
      assert.ok(!result.ok, input);
      assert.deepEqual([result.code, result.offset], [code, offset], input);
    }
    const sha512 = `a@sha512:${'f'.repeat(128)}`;
    assert.equal(parse(sha512).digest?.length, 135);
    const restricted = tryParse(sha512, { algorithms: ['sha256'] });
    assert.equal(restricted.ok ? undefined : restricted.code, 'digest.ErrDigestUnsupported');
  });

  it('reports uppercase anywhere in the string as ErrNameContainsUppercase when lowering fixes it', () => {
    assert.equal(thrown(() => parse('Uppercase:tag')).code, 'ErrNameContainsUppercase');
    assert.equal(parse('lower:UPPER').tag, 'UPPER');
    const err = thrown(() => parse('test:5000/Upper/lower:tag'));
    assert.deepEqual([err.code, err.offset], ['ErrNameContainsUppercase', 10]);
    assert.equal(thrown(() => parse('Upper$')).code, 'ErrReferenceInvalidFormat');
  });

  it('lowers as Go does: İ becomes "i", the Kelvin sign "k"', () => {
    assert.equal(thrown(() => parse('\u0130mage')).code, 'ErrNameContainsUppercase');
    assert.equal(thrown(() => parse('\u212Aube')).code, 'ErrNameContainsUppercase');
    assert.equal(thrown(() => parse('\u00C9t\u00E9')).code, 'ErrReferenceInvalidFormat');
  });

  it('tells ErrNameEmpty apart from a bad format', () => {
    const err = thrown(() => parse(''));
    assert.equal(err.code, 'ErrNameEmpty');
    assert.equal(err.reason, 'repository name must have at least one component');
    assert.equal(err.offset, undefined);
  });
});

describe('error messages and offsets', () => {
  const cases: [input: string, code: ReferenceErrorCode, offset: number | undefined, message: string][] = [
    [
      'nginx:',
      'ErrReferenceInvalidFormat',
      6,
      'invalid reference format: "nginx:" ends with ":" but no tag follows (offset 6)',
    ],
    [
      'aa/asdf$$^/aa',
      'ErrReferenceInvalidFormat',
      7,
      'invalid reference format: "aa/asdf$$^/aa" has "$", which a repository name cannot contain (offset 7)',
    ],
    [
      'foo//bar',
      'ErrReferenceInvalidFormat',
      4,
      'invalid reference format: "foo//bar" has an empty path component ("//") (offset 4)',
    ],
    ['foo-', 'ErrReferenceInvalidFormat', 4, 'invalid reference format: "foo-" ends with the separator "-" (offset 4)'],
    [
      'a/',
      'ErrReferenceInvalidFormat',
      2,
      'invalid reference format: "a/" ends with "/" but no path component follows (offset 2)',
    ],
    [
      'a:.x',
      'ErrReferenceInvalidFormat',
      2,
      'invalid reference format: "a:.x" has a tag starting with "."; a tag starts with a letter, a digit or "_" (offset 2)',
    ],
    [
      `a:@${DIGEST}`,
      'ErrReferenceInvalidFormat',
      2,
      `invalid reference format: "a:@${DIGEST}" has ":" but no tag follows (offset 2)`,
    ],
    [
      'Foo/Bar',
      'ErrNameContainsUppercase',
      4,
      'repository name must be lowercase: "Foo/Bar" has uppercase "B" in the repository name (offset 4)',
    ],
    [
      `a@sha256:${'f'.repeat(63)}`,
      'digest.ErrDigestInvalidLength',
      2,
      `invalid checksum digest length: "a@sha256:${'f'.repeat(63)}" has a sha256 digest of 63 hex digits; sha256 has 64 (offset 2)`,
    ],
  ];
  for (const [input, code, offset, message] of cases) {
    it(JSON.stringify(input), () => {
      const err = thrown(() => parse(input));
      assert.equal(err.code, code);
      assert.equal(err.input, input);
      assert.equal(err.offset, offset);
      assert.equal(err.message, message);
      assert.ok(err instanceof KimgError);
      assert.equal(err.name, 'InvalidReferenceError');
    });
  }

  it('truncates huge inputs in the message but keeps them whole in `input`', () => {
    const input = `${'a'.repeat(70000)}!`;
    const err = thrown(() => parse(input));
    assert.equal(err.input, input);
    assert.equal(err.offset, 70000);
    assert.ok(err.message.length < 400, err.message);
    assert.match(err.message, /… \(70001 characters\)" has "!"/);
  });

  it('points into the caller’s input after normalization', () => {
    const noSlash = tryParseNormalizedNamed('nginx:');
    assert.ok(!noSlash.ok);
    assert.equal(noSlash.offset, 6);
    assert.equal(noSlash.input, 'nginx:');
    const hub = tryParseNormalizedNamed('docker.io/ubuntu:');
    assert.ok(!hub.ok);
    assert.equal(hub.offset, 17);
    assert.match(
      hub.error.message,
      /^invalid reference format: "docker\.io\/ubuntu:" ends with ":" but no tag follows \(offset 17\)$/,
    );
    const legacy = tryParseNormalizedNamed('index.docker.io/a//b');
    assert.ok(!legacy.ok);
    assert.equal(legacy.offset, 18);
    const long = tryParseNormalizedNamed('x'.repeat(250));
    assert.ok(!long.ok);
    assert.deepEqual([long.code, long.offset], ['ErrNameTooLong', 247]);
  });

  it('keeps reason to upstream’s exact text', () => {
    assert.equal(thrown(() => parse('a:')).reason, 'invalid reference format');
    assert.equal(thrown(() => parse(`a@md5:${'f'.repeat(32)}`)).reason, 'unsupported digest algorithm');
    assert.equal(
      thrown(() => parseNormalizedNamed(HEX64)).reason,
      `invalid repository name (${HEX64}), cannot specify 64-byte hexadecimal strings`,
    );
    assert.equal(thrown(() => parseNamed('foo')).reason, 'repository name must be canonical');
    assert.match(thrown(() => parseNamed('foo')).message, /its canonical form is "docker\.io\/library\/foo"/);
    assert.equal(thrown(() => withTag(withName('a'), 'x~')).reason, 'invalid tag format');
    assert.equal(thrown(() => withDigest(withName('a'), 'sha256:abc')).reason, 'invalid digest format');
  });
});

describe('non-throwing forms', () => {
  it('return the value on success', () => {
    const result = tryParseDockerRef('busybox');
    assert.ok(result.ok);
    assert.equal(result.value.toString(), 'docker.io/library/busybox:latest');
    const any = tryParseAnyReference(HEX64);
    assert.ok(any.ok);
    assert.equal(any.value.toString(), DIGEST);
  });

  it('return the facts on failure and build the error only when asked, once', () => {
    const result = tryParse('a b');
    assert.ok(!result.ok);
    assert.deepEqual([result.code, result.input, result.offset], ['ErrReferenceInvalidFormat', 'a b', 1]);
    assert.ok(!(result instanceof Error));
    const error = result.error;
    assert.ok(error instanceof InvalidReferenceError);
    assert.equal(result.error, error);
    assert.equal(error.code, result.code);
  });

  it('agree with the throwing forms', () => {
    for (const input of ['', 'a', 'A', 'a:', HEX64, DIGEST, 'docker.io/x', 'x/Y']) {
      const pairs: [() => unknown, { ok: boolean; code?: string }][] = [
        [() => parse(input), tryParse(input)],
        [() => parseNormalizedNamed(input), tryParseNormalizedNamed(input)],
        [() => parseDockerRef(input), tryParseDockerRef(input)],
        [() => parseAnyReference(input), tryParseAnyReference(input)],
      ];
      for (const [fn, result] of pairs) {
        if (result.ok) assert.doesNotThrow(fn);
        else assert.equal(thrown(fn).code, result.code);
      }
    }
  });
});

describe('parseNormalizedNamed', () => {
  const cases: [input: string, domain: string, path: string][] = [
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io', 'pause'],
    ['quay.io/prometheus/node-exporter', 'quay.io', 'prometheus/node-exporter'],
    ['user/app', 'docker.io', 'user/app'],
    ['docker.io/library/x', 'docker.io', 'library/x'],
    ['docker.io/a/b', 'docker.io', 'a/b'],
    ['index.docker.io/x', 'docker.io', 'library/x'],
    ['registry-1.docker.io/x', 'registry-1.docker.io', 'x'],
    ['localhost/x', 'localhost', 'x'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['a.b_c/x', '', 'a.b_c/x'],
    ['quay.io/library/x', 'quay.io', 'library/x'],
  ];
  for (const [input, wantDomain, wantPath] of cases) {
    it(input, () => {
      const ref = parseNormalizedNamed(input);
      assert.deepEqual([ref.domain, ref.path], [wantDomain, wantPath]);
    });
  }

  it('refuses a 64-hex image ID and counts library/ in the length', () => {
    assert.equal(thrown(() => parseNormalizedNamed(HEX64)).code, 'errNameIsIdentifier');
    assert.equal(parseNormalizedNamed('a'.repeat(247)).path.length, 255);
    assert.equal(thrown(() => parseNormalizedNamed('a'.repeat(248))).code, 'ErrNameTooLong');
  });

  it('checks case on the remote name only, up to the first ":"', () => {
    assert.equal(parseNormalizedNamed('foo:TAG').tag, 'TAG');
    // Go asks whether ToLower changes the remote: É does, é (already lowercase) does not.
    assert.equal(thrown(() => parseNormalizedNamed('foo/\u00C9')).code, 'errNameNotLowercase');
    assert.equal(thrown(() => parseNormalizedNamed('foo/\u00E9')).code, 'ErrReferenceInvalidFormat');
    assert.equal(thrown(() => parseNormalizedNamed('foo:\u00C9')).code, 'ErrReferenceInvalidFormat');
  });

  it('passes the algorithm option through', () => {
    const input = `foo@sha384:${'a'.repeat(96)}`;
    assert.equal(parseNormalizedNamed(input).digest, `sha384:${'a'.repeat(96)}`);
    assert.equal(
      thrown(() => parseNormalizedNamed(input, { algorithms: ['sha256'] })).code,
      'digest.ErrDigestUnsupported',
    );
  });
});

describe('parseNamed', () => {
  it('accepts only canonical input', () => {
    assert.equal(parseNamed('docker.io/library/foo:1').tag, '1');
    for (const input of ['foo', 'library/foo', 'docker.io/foo', 'index.docker.io/library/foo']) {
      assert.equal(thrown(() => parseNamed(input)).code, 'ErrNameNotCanonical', input);
    }
    assert.equal(thrown(() => parseNamed('foo:')).code, 'ErrReferenceInvalidFormat');
  });
});

describe('parseDockerRef', () => {
  it('drops the tag when a digest is given and adds latest when neither is', () => {
    assert.equal(parseDockerRef(`busybox:1@${DIGEST}`).toString(), `docker.io/library/busybox@${DIGEST}`);
    assert.equal(parseDockerRef(`busybox@${DIGEST}`).kind, 'name+digest');
    assert.equal(parseDockerRef('busybox:1').toString(), 'docker.io/library/busybox:1');
    assert.equal(parseDockerRef('busybox').toString(), 'docker.io/library/busybox:latest');
  });
});

describe('parseAnyReference', () => {
  it('takes an image ID or an enabled digest as a digest reference', () => {
    const id = parseAnyReference(HEX64);
    assert.equal(id.kind, 'digest');
    assert.equal(id.digest, DIGEST);
    assert.equal(id.name, undefined);
    const sha512 = `sha512:${'b'.repeat(128)}`;
    assert.equal(parseAnyReference(sha512).kind, 'digest');
    const asName = parseAnyReference(sha512, { algorithms: ['sha256'] });
    assert.equal(asName.toString(), `docker.io/library/sha512:${'b'.repeat(128)}`);
    assert.equal(familiarString(parseAnyReference(DIGEST)), DIGEST);
  });
});

describe('familiarName and familiarString', () => {
  const cases: [input: string, name: string, string: string][] = [
    ['docker.io/library/foo:1', 'foo', 'foo:1'],
    ['docker.io/library/foo/bar', 'library/foo/bar', 'library/foo/bar'],
    ['docker.io/user/app', 'user/app', 'user/app'],
    ['quay.io/library/x', 'quay.io/library/x', 'quay.io/library/x'],
    [`docker.io/library/foo:1@${DIGEST}`, 'foo', `foo:1@${DIGEST}`],
  ];
  for (const [input, name, string] of cases) {
    it(input, () => {
      const ref = parse(input);
      assert.equal(familiarName(ref), name);
      assert.equal(familiarString(ref), string);
    });
  }

  it('applies to plain parse results too: library/foo has domain "library"', () => {
    assert.equal(familiarName(parse('library/foo')), 'library/foo');
  });
});

describe('withName, withTag, withDigest, trimNamed, tagNameOnly', () => {
  it('withName splits like parse and refuses tags, digests and ""', () => {
    assert.deepEqual([withName('a.com:5/b').domain, withName('a.com:5/b').path], ['a.com:5', 'b']);
    for (const bad of ['', 'a:b', `a@${DIGEST}`, 'A', 'a/']) {
      assert.equal(thrown(() => withName(bad)).code, 'ErrReferenceInvalidFormat', bad);
    }
    assert.equal(thrown(() => withName('a'.repeat(256))).code, 'ErrNameTooLong');
  });

  it('withTag replaces the tag and keeps the digest', () => {
    const ref = parse(`a.io/b:old@${DIGEST}`);
    const tagged = withTag(ref, 'new');
    assert.equal(tagged.toString(), `a.io/b:new@${DIGEST}`);
    assert.equal(tagged.kind, 'name+tag+digest');
    assert.equal(ref.tag, 'old', 'the original is unchanged');
    const err = thrown(() => withTag(ref, 'x'.repeat(129)));
    assert.deepEqual([err.code, err.input, err.offset], ['ErrTagInvalidFormat', 'x'.repeat(129), 128]);
    assert.equal(thrown(() => withTag(ref, '')).code, 'ErrTagInvalidFormat');
  });

  it('withDigest keeps the tag', () => {
    const ref = withDigest(parse('a:1'), DIGEST);
    assert.equal(ref.toString(), `a:1@${DIGEST}`);
    const err = thrown(() => withDigest(ref, 'sha256:xyz'));
    assert.deepEqual([err.code, err.offset], ['ErrDigestInvalidFormat', 7]);
  });

  it('trimNamed drops tag and digest; tagNameOnly tags only bare names', () => {
    assert.equal(trimNamed(parse(`a:1@${DIGEST}`)).toString(), 'a');
    assert.equal(trimNamed(parse('a')).kind, 'name');
    assert.equal(tagNameOnly(parse('a')).toString(), 'a:latest');
    assert.equal(tagNameOnly(parse('a:1')).toString(), 'a:1');
    assert.equal(tagNameOnly(parse(`a@${DIGEST}`)).toString(), `a@${DIGEST}`);
  });
});

describe('grammar validators', () => {
  it('matchDomain takes host names, IPv4, bracketed IPv6 and any port digits', () => {
    for (const ok of ['a', 'A-b.C0', '10.0.0.1:5000', '[::1]', '[fd00::1]:99999999', 'localhost:1'])
      assert.ok(matchDomain(ok), ok);
    for (const bad of ['', 'a-', '-a', 'a..b', 'a_b', 'a:', 'a:b', '[]', '[::1', '[g::1]', 'a/b'])
      assert.ok(!matchDomain(bad), bad);
  });

  it('matchAnchoredName prefers a domain when the first component can be one', () => {
    assert.deepEqual(matchAnchoredName('foo/bar'), ['foo', 'bar']);
    assert.deepEqual(matchAnchoredName('foo_bar/baz'), ['', 'foo_bar/baz']);
    assert.deepEqual(matchAnchoredName('a:5/b'), ['a:5', 'b']);
    assert.deepEqual(matchAnchoredName('ab'), ['', 'ab']);
    assert.equal(matchAnchoredName('A/B'), undefined);
  });

  it('matchReference splits name, tag and digest, "" for absent groups', () => {
    assert.deepEqual(matchReference('a:5/b:c'), ['a:5/b', 'c', '']);
    assert.deepEqual(matchReference(`a@${DIGEST}`), ['a', '', DIGEST]);
    assert.deepEqual(matchReference(`a@SHA256:${'F'.repeat(32)}`), ['a', '', `SHA256:${'F'.repeat(32)}`]);
    assert.equal(matchReference('a:'), undefined);
  });

  it('isIdentifier is exactly 64 lowercase hex digits', () => {
    assert.ok(isIdentifier(HEX64));
    assert.ok(!isIdentifier(HEX64.toUpperCase()));
    assert.ok(!isIdentifier(HEX64.slice(1)));
    assert.ok(!isIdentifier(`${HEX64}0`));
  });
});

describe('reference values', () => {
  it('are read-only to TypeScript and never changed by the builders', () => {
    const ref = parse(`a:1@${DIGEST}`);
    const mutate = (): void => {
      // @ts-expect-error: the fields are readonly (tsc fails this file if they are not)
      ref.tag = '2';
    };
    assert.equal(typeof mutate, 'function');
    withTag(ref, '2');
    withDigest(ref, DIGEST);
    trimNamed(ref);
    tagNameOnly(ref);
    assert.deepEqual(
      [ref.kind, ref.tag, ref.digest, ref.toString()],
      ['name+tag+digest', '1', DIGEST, `a:1@${DIGEST}`],
    );
  });

  it('compare equal exactly when their strings are equal', () => {
    assert.deepEqual(parse('a.io/b:1'), withTag(withName('a.io/b'), '1'));
    assert.notDeepEqual(parse('a.io/b:1'), parse('a.io/b:2'));
    assert.notDeepEqual(parse('a.io/b'), parse('a.io/c'));
  });
});
