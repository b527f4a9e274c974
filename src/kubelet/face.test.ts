import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import ts from 'typescript';

/** Every name `index.ts` exports, values and types together, read from its `export { … }` lists. */
function faceNames(file: URL): string[] {
  const source = ts.createSourceFile(file.pathname, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const names: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement)) {
      const exported = ts.canHaveModifiers(statement)
        ? ts.getModifiers(statement)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
        : false;
      assert.ok(!exported, 'the face only re-exports; declarations live in their own files');
      continue;
    }
    const clause = statement.exportClause;
    assert.ok(clause && ts.isNamedExports(clause), 'no `export *` in a face: every name is chosen');
    for (const element of clause.elements) names.push(element.name.text);
  }
  return names;
}

describe('the kubelet face', () => {
  const names = faceNames(new URL('./index.ts', import.meta.url));

  it('exports at most 60 names, values and types together', () => {
    assert.ok(names.length <= 60, `kubelet/index.ts exports ${names.length} names (limit 60)`);
    assert.equal(new Set(names).size, names.length);
  });

  it('keeps the test doubles in the testing subpath', () => {
    assert.ok(!names.includes('FakeImageService'));
    assert.ok(!names.includes('ManualClock'));
    assert.deepEqual(faceNames(new URL('./testing/index.ts', import.meta.url)).sort(), [
      'FakeCall',
      'FakeImageService',
      'FakeRemoteImage',
      'ManualClock',
    ]);
  });
});
