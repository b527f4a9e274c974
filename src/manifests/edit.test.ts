import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { applyEdits, renderScalar } from './edit.ts';

const V = `nginx:1.25@sha256:${'a'.repeat(64)}`;

describe('renderScalar', () => {
  const cases: [Parameters<typeof renderScalar>[0], string, string][] = [
    ['plain', 'nginx:1.25', V],
    ['single', "'nginx:1.25'", `'${V}'`],
    ['double', '"nginx:1.25"', `"${V}"`],
    ['literal', '|-\n      nginx:1.25\n', `|-\n      ${V}\n`],
    ['literal', '|2- # image\r\n    nginx:1.25\r\n', `|2- # image\r\n    ${V}\r\n`],
    ['folded', '>-\n\n  nginx:1.25', `>-\n\n  ${V}`],
  ];
  for (const [style, original, expected] of cases) {
    it(`${style}: ${JSON.stringify(original)}`, () => {
      assert.equal(renderScalar(style, original, V), expected);
    });
  }

  it('escapes what each quoting style needs, and the value reads back', () => {
    const value = `a'b"c\\d`;
    assert.equal(parse(`k: ${renderScalar('single', "'x'", value)}`).k, value);
    assert.equal(parse(`k: ${renderScalar('double', '"x"', value)}`).k, value);
  });
});

describe('applyEdits', () => {
  it('changes only the edited ranges, in any order, once per scalar', () => {
    const text = 'a: x # one\nb: "y"\n';
    const edits = [
      { location: { start: 14, end: 17, style: 'double' as const }, value: 'Y' },
      { location: { start: 3, end: 4, style: 'plain' as const }, value: 'X' },
      { location: { start: 3, end: 4, style: 'plain' as const }, value: 'X' },
    ];
    assert.equal(applyEdits(text, edits), 'a: X # one\nb: "Y"\n');
  });

  it('refuses two different values for one scalar and overlapping edits', () => {
    assert.throws(
      () =>
        applyEdits('a: x', [
          { location: { start: 3, end: 4, style: 'plain' }, value: 'X' },
          { location: { start: 3, end: 4, style: 'plain' }, value: 'Z' },
        ]),
      /conflicting/,
    );
    assert.throws(
      () =>
        applyEdits('a: xy', [
          { location: { start: 3, end: 5, style: 'plain' }, value: 'X' },
          { location: { start: 4, end: 5, style: 'plain' }, value: 'Z' },
        ]),
      /overlapping/,
    );
  });
});
