// docs/semantics.md references §8: the inputs that take seconds to hours in backtracking ports, through every operation.
// Nothing here measures time (bench/ does); a vulnerable parser simply never returns. The
// timeout only keeps such a regression from hanging CI for its whole budget.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InvalidReferenceError,
  familiarMatch,
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
  tryParse,
  tryParseAnyReference,
  tryParseDockerRef,
  tryParseNormalizedNamed,
  withDigest,
  withName,
  withTag,
} from './index.ts';

const hostile: [label: string, input: string][] = [
  ['"a"×64 + ":"', `${'a'.repeat(64)}:`],
  ['"a"×64 + "!"', `${'a'.repeat(64)}!`],
  ['trailing-colon typo', 'registry.example.com/team/backend-api:'],
  ['"a-"×20000 + "!"', `${'a-'.repeat(20000)}!`],
  ['"a."×20000 + ":"', `${'a.'.repeat(20000)}:`],
  ['"a/"×20000 + "!"', `${'a/'.repeat(20000)}!`],
  ['64 KiB of "0"', '0'.repeat(65536)],
  ['"[" + ":"×20000', `[${':'.repeat(20000)}`],
  // Variants that reach the other paths: the uppercase retry, tags, digests, domains, normalization.
  ['"A-"×20000 + "!"', `${'A-'.repeat(20000)}!`],
  ['"a__"×20000 + "_"', `${'a__'.repeat(20000)}_`],
  ['long tag then "!"', `a:${'t'.repeat(65536)}!`],
  ['long digest', `a@sha256:${'f'.repeat(65536)}`],
  ['long algorithm', `a@${'a+'.repeat(20000)}:${'f'.repeat(64)}`],
  ['"a."×20000 + "/x"', `${'a.'.repeat(20000)}a/x`],
  ['"a-"×20000 + ":5000/x"', `${'a-'.repeat(20000)}a:5000/x`],
  ['"docker.io/" + "a/"×20000', `docker.io/${'a/'.repeat(20000)}`],
  ['"*"×2000 + "?" pattern-like', `${'*'.repeat(2000)}?`],
];

const base = parse('example.com/app:1');

const operations: [name: string, run: (input: string) => unknown][] = [
  ['parse', (s) => parse(s)],
  ['tryParse', (s) => tryParse(s)],
  ['parseNormalizedNamed', (s) => parseNormalizedNamed(s)],
  ['tryParseNormalizedNamed', (s) => tryParseNormalizedNamed(s)],
  ['parseDockerRef', (s) => parseDockerRef(s)],
  ['tryParseDockerRef', (s) => tryParseDockerRef(s)],
  ['parseAnyReference', (s) => parseAnyReference(s)],
  ['tryParseAnyReference', (s) => tryParseAnyReference(s)],
  ['parseNamed', (s) => parseNamed(s)],
  ['withName', (s) => withName(s)],
  ['withTag', (s) => withTag(base, s)],
  ['withDigest', (s) => withDigest(base, s)],
  ['familiarMatch (as pattern)', (s) => familiarMatch(s, base)],
  ['matchDomain', (s) => matchDomain(s)],
  ['matchAnchoredName', (s) => matchAnchoredName(s)],
  ['matchReference', (s) => matchReference(s)],
  ['isIdentifier', (s) => isIdentifier(s)],
  ['sort', (s) => sort([s, 'b', s])],
];

describe('hostile inputs complete through every operation', { timeout: 120_000 }, () => {
  for (const [label, input] of hostile) {
    it(label, () => {
      for (const [name, run] of operations) {
        try {
          const result = run(input);
          // Building the lazy error (and its message) must be linear too.
          if (
            typeof result === 'object' &&
            result !== null &&
            'ok' in result &&
            result.ok === false &&
            'error' in result
          ) {
            assert.ok(result.error instanceof InvalidReferenceError, name);
          }
        } catch (err) {
          assert.ok(err instanceof InvalidReferenceError, `${name}: ${String(err)}`);
          assert.ok(err.message.length < 1000, `${name}: message should be truncated`);
        }
      }
    });
  }
});
