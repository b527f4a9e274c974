// Property tests: random strings against a model built from upstream's own regular expressions
// (regexp.go with the code's `[-]+` separator), run through JavaScript's backtracking RegExp,
// whose leftmost-first groups agree with RE2's. Inputs stay short, so the model cannot blow up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { tryParseDigest, type Algorithm } from '../digest/index.ts';
import {
  InvalidReferenceError,
  familiarMatch,
  isIdentifier,
  matchAnchoredName,
  matchDomain,
  matchReference,
  parse,
  parseNamed,
  sort,
  tryParse,
  tryParseAnyReference,
  tryParseDockerRef,
  tryParseNormalizedNamed,
  withDigest,
  withName,
  withTag,
  type NamedReference,
  type ParseOptions,
  type ParseResult,
  type Reference,
} from './index.ts';

// --- upstream regexp.go, verbatim but for JavaScript escaping ---
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const domainAndPort = `(?:${domainName}|${ipv6address})(?::[0-9]+)?`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;
const referenceRegexp = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const anchoredNameRegexp = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const domainRegexp = new RegExp(`^${domainAndPort}$`);
const identifierRegexp = /^[a-f0-9]{64}$/;

type ModelResult =
  { code: string } | { domain: string; path: string; tag: string | undefined; digest: string | undefined };

/** Go's strings.ToLower, rune by rune with the simple mapping (İ → i). */
function goLower(s: string): string {
  let out = '';
  for (const ch of s) out += ch === '\u0130' ? 'i' : ch.toLowerCase().length === ch.length ? ch.toLowerCase() : ch;
  return out;
}

/** reference.go Parse, over the regular expressions above and the digest module. */
function modelParse(s: string, options: ParseOptions): ModelResult {
  const m = referenceRegexp.exec(s);
  if (m === null) {
    if (s === '') return { code: 'ErrNameEmpty' };
    if (referenceRegexp.test(goLower(s))) return { code: 'ErrNameContainsUppercase' };
    return { code: 'ErrReferenceInvalidFormat' };
  }
  const name = m[1] ?? '';
  const split = anchoredNameRegexp.exec(name);
  const [domain, path] = split === null ? ['', name] : [split[1] ?? '', split[2] ?? ''];
  if (path.length > 255) return { code: 'ErrNameTooLong' };
  const digest = m[3];
  if (digest !== undefined) {
    const checked = tryParseDigest(digest, options);
    if (!checked.ok) return { code: checked.error.code };
  }
  return { domain, path, tag: m[2], digest };
}

/** normalize.go ParseNormalizedNamed, transcribed. */
function modelNormalized(s: string, options: ParseOptions): ModelResult {
  if (identifierRegexp.test(s)) return { code: 'errNameIsIdentifier' };
  let domain: string;
  let remainder: string;
  const slash = s.indexOf('/');
  if (slash < 0) {
    [domain, remainder] = ['docker.io', `library/${s}`];
  } else {
    const [maybeDomain, maybeRemainder] = [s.slice(0, slash), s.slice(slash + 1)];
    const isHost =
      maybeDomain === 'localhost' ||
      maybeDomain === 'index.docker.io' ||
      /[.:]/.test(maybeDomain) ||
      goLower(maybeDomain) !== maybeDomain;
    if (isHost) {
      domain = maybeDomain === 'index.docker.io' ? 'docker.io' : maybeDomain;
      remainder =
        domain === 'docker.io' && !maybeRemainder.includes('/') ? `library/${maybeRemainder}` : maybeRemainder;
    } else {
      [domain, remainder] = ['docker.io', s];
    }
  }
  const colon = remainder.indexOf(':');
  const remote = colon < 0 ? remainder : remainder.slice(0, colon);
  if (goLower(remote) !== remote) return { code: 'errNameNotLowercase' };
  return modelParse(`${domain}/${remainder}`, options);
}

function actual(result: ParseResult<NamedReference>): ModelResult {
  if (!result.ok) return { code: result.code };
  const { domain, path, tag, digest } = result.value;
  return { domain, path, tag, digest };
}

function fieldsOf(ref: Reference): unknown[] {
  return [ref.kind, ref.name, ref.domain, ref.path, ref.tag, ref.digest, ref.toString()];
}

// --- inputs ---
const HEX = '0123456789abcdef';
const tokens = [
  'a',
  'b',
  'z',
  '0',
  '9',
  'A',
  'Z',
  '-',
  '--',
  '.',
  '_',
  '__',
  '/',
  ':',
  '@',
  '[',
  ']',
  '::1',
  '%',
  'sha256:',
  'sha512:',
  'SHA256:',
  'md5:',
  HEX.repeat(4),
  HEX.repeat(2),
  'ABCDEF0123456789'.repeat(4),
  HEX.repeat(8),
  'localhost',
  'docker.io',
  'index.docker.io',
  'library/',
  'example.com:5000',
  '\u0130',
  '\u212A',
  'é',
  'É',
  ' ',
  '$',
];
const grammarish = fc.array(fc.constantFrom(...tokens), { maxLength: 14 }).map((parts) => parts.join(''));
const ascii = fc.string({ unit: 'binary-ascii', maxLength: 40 });
const unicode = fc.string({ unit: 'binary', maxLength: 30 });
const anyInput = fc.oneof(grammarish, grammarish, ascii, unicode);
const algorithmsOption = fc.constantFrom<ParseOptions>({}, { algorithms: ['sha256'] as Algorithm[] });

const RUNS = { numRuns: 3000 };

/** Runs `fn`, letting only InvalidReferenceError out as a value. */
function settle(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidReferenceError) return err;
    throw err;
  }
}

describe('grammar validators agree with upstream regular expressions', () => {
  it('matchDomain', () => {
    fc.assert(
      fc.property(anyInput, (s) => matchDomain(s) === domainRegexp.test(s)),
      RUNS,
    );
  });

  it('matchAnchoredName, groups included', () => {
    fc.assert(
      fc.property(anyInput, (s) => {
        const m = anchoredNameRegexp.exec(s);
        assert.deepEqual(matchAnchoredName(s), m === null ? undefined : [m[1] ?? '', m[2] ?? '']);
      }),
      RUNS,
    );
  });

  it('matchReference, groups included', () => {
    fc.assert(
      fc.property(anyInput, (s) => {
        const m = referenceRegexp.exec(s);
        assert.deepEqual(matchReference(s), m === null ? undefined : [m[1] ?? '', m[2] ?? '', m[3] ?? '']);
      }),
      RUNS,
    );
  });

  it('isIdentifier', () => {
    const hex64 = fc.string({ unit: fc.constantFrom(...HEX, 'A', 'g'), minLength: 63, maxLength: 65 });
    fc.assert(
      fc.property(fc.oneof(anyInput, hex64), (s) => isIdentifier(s) === identifierRegexp.test(s)),
      RUNS,
    );
  });
});

describe('parse operations agree with the upstream model', () => {
  it('parse', () => {
    fc.assert(
      fc.property(anyInput, algorithmsOption, (s, options) => {
        assert.deepEqual(actual(tryParse(s, options)), modelParse(s, options));
      }),
      RUNS,
    );
  });

  it('parseNormalizedNamed', () => {
    fc.assert(
      fc.property(anyInput, algorithmsOption, (s, options) => {
        assert.deepEqual(actual(tryParseNormalizedNamed(s, options)), modelNormalized(s, options));
      }),
      RUNS,
    );
  });

  it('names go-digest failures as the digest module does', () => {
    const algorithm = fc.constantFrom(
      'sha256',
      'sha384',
      'sha512',
      'md5',
      'SHA256',
      'Sha512',
      'sha-256',
      'a+b.c',
      'x_y',
    );
    const hex = fc.string({ unit: fc.constantFrom(...HEX, 'A', 'F'), minLength: 32, maxLength: 130 });
    fc.assert(
      fc.property(algorithm, hex, algorithmsOption, (alg, encoded, options) => {
        const digest = `${alg}:${encoded}`;
        const want = tryParseDigest(digest, options);
        const got = tryParse(`repo@${digest}`, options);
        // `sha-256` fails the reference grammar (a component must start with a letter) first.
        const wantCode = !referenceRegexp.test(`repo@${digest}`)
          ? 'ErrReferenceInvalidFormat'
          : want.ok
            ? undefined
            : want.error.code;
        assert.equal(got.ok ? undefined : got.code, wantCode);
      }),
      RUNS,
    );
  });
});

describe('robustness', () => {
  it('no operation throws anything but InvalidReferenceError', () => {
    const base = parse('example.com/app:1');
    fc.assert(
      fc.property(anyInput, algorithmsOption, (s, options) => {
        settle(() => parse(s, options));
        settle(() => parseNamed(s, options));
        settle(() => withName(s));
        settle(() => withTag(base, s));
        settle(() => withDigest(base, s));
        settle(() => familiarMatch(s, base));
        settle(() => sort([s, 'b', s], options));
        for (const result of [
          tryParse(s, options),
          tryParseNormalizedNamed(s, options),
          tryParseDockerRef(s, options),
          tryParseAnyReference(s, options),
        ]) {
          if (result.ok) continue;
          assert.ok(result.error instanceof InvalidReferenceError);
          assert.equal(result.error.code, result.code);
          assert.ok(result.error.message.length > 0);
          if (result.offset !== undefined)
            assert.ok(result.offset >= 0 && result.offset <= s.length, `offset ${result.offset}`);
        }
      }),
      RUNS,
    );
  });

  it('a parsed reference round-trips through its string', () => {
    fc.assert(
      fc.property(anyInput, (s) => {
        for (const result of [tryParse(s), tryParseNormalizedNamed(s), tryParseDockerRef(s)]) {
          if (!result.ok) continue;
          assert.deepEqual(fieldsOf(parse(result.value.toString())), fieldsOf(result.value));
        }
        const any = tryParseAnyReference(s);
        if (any.ok) {
          const again = tryParseAnyReference(any.value.toString());
          assert.ok(again.ok);
          assert.deepEqual(fieldsOf(again.value), fieldsOf(any.value));
        }
      }),
      RUNS,
    );
  });

  it('pattern matching never throws anything but ErrBadPattern', () => {
    const patternish = fc
      .array(fc.constantFrom('*', '?', '[', ']', '^', '-', '\\', 'a', '/', 'é', ':'), { maxLength: 10 })
      .map((p) => p.join(''));
    const ref = parse('docker.io/library/a:b');
    fc.assert(
      fc.property(fc.oneof(patternish, ascii), (pattern) => {
        const result = settle(() => familiarMatch(pattern, ref));
        if (result instanceof InvalidReferenceError) assert.equal(result.code, 'path.ErrBadPattern');
      }),
      RUNS,
    );
  });
});
