import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestSource } from './document.ts';
import { ManifestFileError } from './errors.ts';

function syntaxError(text: string): ManifestFileError {
  try {
    ManifestSource.parse('app.yaml', text);
  } catch (err) {
    assert.ok(err instanceof ManifestFileError, String(err));
    return err;
  }
  assert.fail('expected a syntax error');
}

describe('ManifestSource', () => {
  it('names file, document index, line and column of a syntax error', () => {
    const err = syntaxError('apiVersion: v1\nkind: Pod\n---\na: 1\nspec:\n  containers: [\n    {image: x}\n');
    assert.equal(err.code, 'ErrManifestSyntax');
    assert.equal(err.file, 'app.yaml');
    assert.equal(err.doc, 1);
    assert.match(err.message, /^app\.yaml:\d+:\d+: .* \(document 1\)$/);
    assert.doesNotMatch(err.message, /\n/);
  });

  it('refuses duplicate keys, as kubectl does', () => {
    const err = syntaxError('kind: Pod\nmetadata:\n  name: a\n  name: b\n');
    assert.equal(err.doc, 0);
    assert.equal(err.line, 4);
    assert.equal(err.column, 3);
    assert.match(err.message, /unique/);
  });

  it('refuses an alias to an anchor of another document', () => {
    const err = syntaxError('a: &x nginx\n---\nkind: Pod\nspec:\n  containers: [{image: *x}]\n');
    assert.equal(err.doc, 1);
    assert.equal(err.line, 5);
    assert.match(err.message, /unknown anchor "x"/);
  });

  it('refuses bytes that are not UTF-8, naming the file', () => {
    assert.throws(
      () => ManifestSource.fromBytes('bad.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xff, 0x0a])),
      (err: unknown) => {
        assert.ok(err instanceof ManifestFileError);
        assert.equal(err.code, 'ErrManifestEncoding');
        assert.match(err.message, /^bad\.yaml: not UTF-8/);
        return true;
      },
    );
  });

  it('keeps a byte-order mark in the text, so writing it back gives the same bytes', () => {
    const bytes = Buffer.from('\uFEFFa: b\n', 'utf8');
    const source = ManifestSource.fromBytes('a.yaml', bytes);
    assert.deepEqual(Buffer.from(source.text, 'utf8'), bytes);
  });

  it('counts documents as the parser does (empty ones too), and positions in lines and columns', () => {
    const source = ManifestSource.parse('a.yaml', '# lead\n---\na: 1\r\n---\n---\nb: 2');
    assert.equal(source.documents.length, 3);
    assert.deepEqual(source.position(0), { line: 1, column: 1 });
    assert.deepEqual(source.position(11), { line: 3, column: 1 });
    assert.deepEqual(source.position(13), { line: 3, column: 3 });
    assert.deepEqual(source.position(source.text.length - 1), { line: 6, column: 4 });
  });

  it('reads an empty file and a comment-only file as no documents', () => {
    assert.equal(ManifestSource.parse('a', '').documents.length, 0);
    assert.equal(ManifestSource.parse('a', '# nothing\n').documents.length, 0);
  });
});
