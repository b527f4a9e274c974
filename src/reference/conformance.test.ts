// Every upstream test case of distribution/reference (../shared/conformance/reference), run
// against this module per that folder's README. The cases are read at test time, never copied.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Algorithm } from '../digest/index.ts';
import {
  InvalidReferenceError,
  familiarMatch,
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
  sort,
  withDigest,
  withName,
  withTag,
  type NamedReference,
  type ParseOptions,
  type Reference,
} from './index.ts';

interface Case {
  id: string;
  op: string;
  input: string | string[];
  args?: { base?: 'withName' | 'parseNormalizedNamed'; tag?: string; digest?: string; pattern?: string };
  expect?: Record<string, unknown>;
  error?: string;
  errorStrict?: boolean;
  hashRegistrationDependent?: boolean;
}

type Outcome = { ok: true; fields: Record<string, unknown> } | { ok: false; code: string };

const repoRoot = new URL('../../', import.meta.url);
const casesPath = fileURLToPath(new URL('../shared/conformance/reference/cases.json', repoRoot));

function fieldsOf(ref: Reference): Record<string, unknown> {
  return {
    string: ref.toString(),
    kind: ref.kind,
    name: ref.name,
    domain: ref.domain,
    path: ref.path,
    tag: ref.tag,
    digest: ref.digest,
    familiarName: ref.kind === 'digest' ? undefined : familiarName(ref),
    familiarString: familiarString(ref),
  };
}

function base(c: Case, options: ParseOptions): NamedReference {
  const input = c.input as string;
  return c.args?.base === 'parseNormalizedNamed' ? parseNormalizedNamed(input, options) : withName(input);
}

function run(c: Case, options: ParseOptions): Record<string, unknown> {
  const input = c.input as string;
  const args = c.args ?? {};
  switch (c.op) {
    case 'parse':
      return fieldsOf(parse(input, options));
    case 'parseNamed':
      return fieldsOf(parseNamed(input, options));
    case 'parseNormalizedNamed':
      return fieldsOf(parseNormalizedNamed(input, options));
    case 'parseAnyReference':
      return fieldsOf(parseAnyReference(input, options));
    case 'parseDockerRef':
      return fieldsOf(parseDockerRef(input, options));
    case 'withName':
      return fieldsOf(withName(input));
    case 'withTag': {
      let named = base(c, options);
      if (args.digest !== undefined) named = withDigest(named, args.digest);
      return fieldsOf(withTag(named, args.tag ?? ''));
    }
    case 'withDigest': {
      let named = base(c, options);
      if (args.tag !== undefined) named = withTag(named, args.tag);
      return fieldsOf(withDigest(named, args.digest ?? ''));
    }
    case 'fieldRoundTrip': {
      const ref = parse(input, options);
      // Upstream round-trips through JSON text marshalling; toJSON is our equivalent.
      assert.equal(JSON.parse(JSON.stringify(ref)), input);
      return fieldsOf(ref);
    }
    case 'familiarMatch':
      return { match: familiarMatch(args.pattern ?? '', parseAnyReference(input, options)) };
    case 'sort':
      return { output: sort(c.input as string[], options) };
    case 'regexpDomain':
      return { match: matchDomain(input) };
    case 'regexpAnchoredName': {
      const groups = matchAnchoredName(input);
      return { match: groups !== undefined, groups };
    }
    case 'regexpReference': {
      const groups = matchReference(input);
      return { match: groups !== undefined, groups };
    }
    case 'regexpIdentifier':
      return { match: isIdentifier(input) };
    default:
      throw new Error(`unknown op ${c.op} in ${c.id}`);
  }
}

function outcome(c: Case): Outcome {
  const options: ParseOptions = c.hashRegistrationDependent ? { algorithms: ['sha256'] as Algorithm[] } : {};
  try {
    return { ok: true, fields: run(c, options) };
  } catch (err) {
    // Anything but our typed error is a defect, not an expected failure.
    if (!(err instanceof InvalidReferenceError)) throw err;
    return { ok: false, code: err.code };
  }
}

function check(c: Case): void {
  const result = outcome(c);
  if (c.error !== undefined) {
    assert.equal(result.ok, false, `expected ${c.error}, got ${JSON.stringify(result)}`);
    // errorStrict: false means upstream asserts only "some error"; Go's own choice is recorded
    // anyway, and a faithful port makes the same one, so we hold ourselves to it in both cases.
    assert.equal(result.ok ? undefined : result.code, c.error);
    return;
  }
  if (!result.ok) assert.fail(`expected success, got ${result.code}`);
  const fields = result.fields;
  for (const [key, want] of Object.entries(c.expect ?? {})) {
    const got: unknown = fields[key];
    if (key === 'groups') {
      assert.ok(Array.isArray(got), 'no groups');
      assert.deepEqual(got.slice(0, (want as unknown[]).length), want, 'groups');
    } else {
      assert.deepEqual(got, want === null ? undefined : want, key);
    }
  }
}

if (!existsSync(casesPath)) {
  test('distribution/reference conformance', (t) => {
    t.skip(`conformance cases not found at ${casesPath}; the ../shared checkout is absent`);
  });
} else {
  const { cases } = JSON.parse(readFileSync(casesPath, 'utf8')) as { cases: Case[] };
  test('distribution/reference conformance', async (t) => {
    assert.equal(cases.length, 357, 'the case file should hold every upstream case');
    for (const c of cases) await t.test(c.id, () => check(c));
  });
}
