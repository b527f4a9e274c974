import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { expandInputs } from './pin-input.ts';
import { concatenateStreams, writeFilesAtomically } from './pin-output.ts';

describe('concatenateStreams', () => {
  const cases: [string, string[], string][] = [
    ['one file as it is', ['a: 1'], 'a: 1'],
    ['--- between files', ['a: 1\n', 'b: 2\n'], 'a: 1\n---\nb: 2\n'],
    ['a newline first when one is missing', ['a: 1', 'b: 2'], 'a: 1\n---\nb: 2'],
    ['no second --- when the next file starts with one', ['a: 1\n', '--- # b\nb: 2\n'], 'a: 1\n--- # b\nb: 2\n'],
    [
      'a directive follows a document end marker',
      ['a: 1\n', '%YAML 1.2\n---\nb: 2\n'],
      'a: 1\n...\n%YAML 1.2\n---\nb: 2\n',
    ],
    ['empty files add nothing', ['', 'a: 1\n', '', 'b: 2\n'], 'a: 1\n---\nb: 2\n'],
    ['a later byte-order mark is dropped', ['a: 1\n', '\uFEFFb: 2\n'], 'a: 1\n---\nb: 2\n'],
    ['CRLF files', ['a: 1\r\n', 'b: 2\r\n'], 'a: 1\r\n---\r\nb: 2\r\n'],
  ];
  for (const [name, texts, expected] of cases) {
    it(name, () => {
      const out = concatenateStreams(texts);
      assert.equal(out, expected);
      assert.deepEqual(
        parseAllDocuments(out).flatMap((d) => (Array.isArray(d.errors) ? d.errors : [])),
        [],
      );
    });
  }
});

describe('writeFilesAtomically and expandInputs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-pin-out-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('replaces files keeping their mode, writes through symbolic links, leaves no temporary file', async () => {
    const a = join(dir, 'a.yaml');
    const real = join(dir, 'real.yaml');
    const link = join(dir, 'link.yaml');
    await writeFile(a, 'old');
    await chmod(a, 0o640);
    await writeFile(real, 'old');
    await symlink('real.yaml', link);
    await writeFilesAtomically([
      { path: a, text: 'new a' },
      { path: link, text: 'new real' },
      { path: join(dir, 'fresh.lock'), text: 'lock' },
    ]);
    assert.equal(await readFile(a, 'utf8'), 'new a');
    assert.equal((await stat(a)).mode & 0o777, 0o640);
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.equal(await readlink(link), 'real.yaml');
    assert.equal(await readFile(real, 'utf8'), 'new real');
    assert.equal(await readFile(join(dir, 'fresh.lock'), 'utf8'), 'lock');
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('changes no file when one cannot be written', async () => {
    const b = join(dir, 'b.yaml');
    await writeFile(b, 'old b');
    await assert.rejects(
      writeFilesAtomically([
        { path: b, text: 'new b' },
        { path: join(dir, 'missing-dir', 'c.yaml'), text: 'c' },
      ]),
    );
    assert.equal(await readFile(b, 'utf8'), 'old b');
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('expands a directory to its YAML and JSON files in name order, each file once', async () => {
    const sub = await mkdtemp(join(dir, 'k8s-'));
    for (const name of ['b.yaml', 'a.json', 'c.yml', 'notes.txt', 'Z.YAML']) await writeFile(join(sub, name), '');
    assert.deepEqual(
      await expandInputs([sub, join(sub, 'a.json')]),
      ['Z.YAML', 'a.json', 'b.yaml', 'c.yml'].map((n) => join(sub, n)),
    );
    await assert.rejects(expandInputs([]), /no input/);
    await assert.rejects(expandInputs(['-', '-']), /once/);
    await assert.rejects(expandInputs([join(dir, 'absent')]), /absent: cannot read: no such file/);
  });
});
