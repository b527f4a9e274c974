import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAlias, visit } from 'yaml';
import { YamlError } from './errors.ts';
import { aliasTarget, parseYaml, parseYamlValue, parseYamlValues } from './parse.ts';

function refused(fn: () => unknown): YamlError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof YamlError, String(err));
    return err;
  }
  assert.fail('expected a YamlError');
}

/** Each level merges the previous one ten times: 10× the work per level (issue 11, item 4). */
function mergeBomb(levels: number): string {
  let text = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\nx0: &a0 {k: v}\n';
  for (let i = 1; i <= levels; i++)
    text += `x${i}: &a${i} {<<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]}\n`;
  return `${text}spec:\n  <<: *a${levels}\n  containers: [{name: c, image: busybox}]\n`;
}

describe('bounded YAML parsing', () => {
  it('refuses a merge-key bomb, naming file, line and column of the alias that tips it', () => {
    const text = mergeBomb(9);
    assert.ok(text.length < 700);
    const err = refused(() => parseYaml(text, 'bomb.yaml'));
    assert.equal(err.code, 'ErrYamlTooComplex');
    assert.equal(err.file, 'bomb.yaml');
    assert.equal(err.doc, 0);
    assert.match(err.message, /^bomb\.yaml:\d+:\d+: excessive aliasing/);
    const line = text.split('\n')[err.line - 1] ?? '';
    assert.equal(line.slice(err.column - 1, err.column), '*');
    for (const parse of [parseYamlValues, parseYamlValue])
      assert.equal(refused(() => parse(text, 'bomb.yaml')).code, 'ErrYamlTooComplex');
  });

  it('refuses the classic list bomb ("billion laughs") and counts nested aliases', () => {
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i <= 8; i++)
      text += `a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]\n`;
    assert.equal(refused(() => parseYamlValues(text, 'laughs.yaml')).code, 'ErrYamlTooComplex');
  });

  it('accepts what go-yaml accepts: many aliases of small anchors, moderate reuse', () => {
    let text = 'data:\n  a: &a x\n  l:\n';
    for (let i = 0; i < 16_000; i++) text += '  - *a\n';
    const [value] = parseYamlValues(text, 'many.yaml') as [{ data: { l: string[] } }];
    assert.equal(value.data.l.length, 16_000);
    assert.equal(value.data.l[15_999], 'x');
    const reuse = `base: &b {image: nginx, ports: [80, 443]}\n${Array.from({ length: 50 }, (_, i) => `c${i}: {<<: *b, name: c${i}}\n`).join('')}`;
    const [object] = parseYamlValues(reuse, 'reuse.yaml') as [Record<string, Record<string, unknown>>];
    assert.deepEqual(object['c49'], { image: 'nginx', ports: [80, 443], name: 'c49' });
  });

  it('resolves each alias to the last anchor before it, in constant time per alias', () => {
    const stream = parseYaml('a: &x one\nb: *x\nc: &x two\nd: *x\n', 'f.yaml');
    const doc = stream.documents[0];
    assert.ok(doc !== undefined);
    const seen: unknown[] = [];
    visit(doc, {
      Alias: (_key, node) => {
        if (isAlias(node)) seen.push((aliasTarget(doc, node) as { value?: unknown } | undefined)?.value);
      },
    });
    assert.deepEqual(seen, ['one', 'two']);
  });

  it('refuses an alias inside the node it names', () => {
    const err = refused(() => parseYaml('a: &x [1, *x]\n', 'cycle.yaml'));
    assert.equal(err.code, 'ErrYamlTooComplex');
    assert.equal(err.line, 1);
    assert.equal(err.column, 11);
  });

  it('refuses an alias to an anchor of another document, with the line counted in the file', () => {
    const err = refused(() => parseYaml('a: &x nginx\n---\nkind: Pod\nimage: *x\n', 'two.yaml'));
    assert.equal(err.code, 'ErrInvalidYaml');
    assert.equal(err.doc, 1);
    assert.equal(err.line, 4);
    assert.equal(err.column, 8);
    assert.match(err.message, /^two\.yaml:4:8: unknown anchor "x"/);
  });

  it('refuses syntax errors and duplicate keys with file and line', () => {
    const dup = refused(() => parseYamlValues('kind: Pod\nmetadata:\n  name: a\n  name: b\n', 'dup.yaml'));
    assert.equal(dup.code, 'ErrInvalidYaml');
    assert.equal(dup.line, 4);
    assert.doesNotMatch(dup.message, /\n/);
    const syntax = refused(() => parseYamlValues('a: [1, 2\n', 's.yaml'));
    assert.equal(syntax.code, 'ErrInvalidYaml');
  });

  it('converts as Kubernetes reads: own keys win over merged ones, first merge source wins', () => {
    const text = 'x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nm: {a: 0, <<: [*x, *y]}\nn: {<<: *y, c: 3}\n';
    const [value] = parseYamlValues(text, 'm.yaml') as [Record<string, unknown>];
    assert.deepEqual(value['m'], { a: 0, b: 1, c: 2 });
    assert.deepEqual(value['n'], { b: 2, c: 3 });
  });

  it('keeps `__proto__` as data and refuses map or list keys', () => {
    const value = parseYamlValue('__proto__: {polluted: true}\n', 'p.yaml') as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ['__proto__']);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal(refused(() => parseYamlValue('? [a]\n: b\n', 'k.yaml')).code, 'ErrInvalidYaml');
  });

  it('reads one configuration document, refusing a stream of several', () => {
    assert.deepEqual(parseYamlValue('{"a": [1, true, null]}', 'c.json'), { a: [1, true, null] });
    assert.equal(parseYamlValue('# nothing\n', 'empty.yaml'), undefined);
    const err = refused(() => parseYamlValue('a: 1\n---\nb: 2\n', 'c.yaml'));
    assert.equal(err.line, 3);
  });
});
