import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateMessages, formatGoDuration, goQuote, humanDuration } from './go-format.ts';

describe('formatGoDuration (Go Duration.String after truncation to ms)', () => {
  const table: [number, string][] = [
    [0, '0s'],
    [0.9, '0s'],
    [1, '1ms'],
    [390, '390ms'],
    [390.99, '390ms'],
    [999, '999ms'],
    [1000, '1s'],
    [2266, '2.266s'],
    [2266.9, '2.266s'],
    [2500, '2.5s'],
    [10_000, '10s'],
    [60_000, '1m0s'],
    [62_500, '1m2.5s'],
    [3_600_000, '1h0m0s'],
    [3_723_004, '1h2m3.004s'],
    [-1500, '-1.5s'],
  ];
  for (const [ms, text] of table) it(`${ms} ms → ${text}`, () => assert.equal(formatGoDuration(ms), text));
});

describe('goQuote (%q)', () => {
  it('quotes plainly printable text', () => assert.equal(goQuote('busybox:1.36'), '"busybox:1.36"'));
  it('escapes quotes, backslashes and controls as Go does', () => {
    assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(goQuote('x\ny\tz\x00\x07\x7f'), '"x\\ny\\tz\\x00\\a\\x7f"');
  });
  it('keeps printable Unicode and escapes non-printable runes', () => {
    assert.equal(goQuote('café'), '"café"');
    assert.equal(goQuote('a\u00a0b\u200bc'), '"a\\u00a0b\\u200bc"');
  });
});

describe('aggregateMessages (utilerrors aggregate)', () => {
  it('shows a single error as itself', () => assert.equal(aggregateMessages(['boom']), 'boom'));
  it('brackets several and de-duplicates', () => {
    assert.equal(aggregateMessages(['e1', 'e2']), '[e1, e2]');
    assert.equal(aggregateMessages(['e1', 'e2', 'e1']), '[e1, e2]');
    assert.equal(aggregateMessages(['same', 'same']), 'same');
  });
});

describe('humanDuration (kubectl Age)', () => {
  const table: [number, string][] = [
    [0, '0s'],
    [59_000, '59s'],
    [119_000, '119s'],
    [120_000, '2m'],
    [125_000, '2m5s'],
    [600_000, '10m'],
    [3 * 3_600_000, '3h'],
    [3 * 3_600_000 + 60_000, '3h1m'],
    [10 * 3_600_000, '10h'],
    [50 * 3_600_000, '2d2h'],
  ];
  for (const [ms, text] of table) it(`${ms} ms → ${text}`, () => assert.equal(humanDuration(ms), text));
});
