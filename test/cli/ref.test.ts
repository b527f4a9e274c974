import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './run-cli.ts';

const digest = `sha256:${'b'.repeat(64)}`;

describe('kimg ref', () => {
  it('prints every field of a normalized reference', async () => {
    const { status, stdout, stderr } = await runCli(['ref', 'busybox']);
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^busybox$/m);
    assert.match(stdout, /normalized\s+docker\.io\/library\/busybox$/m);
    assert.match(stdout, /pull\s+docker\.io\/library\/busybox:latest$/m);
    assert.match(stdout, /familiar\s+busybox$/m);
    assert.match(stdout, /domain\s+docker\.io$/m);
    assert.match(stdout, /path\s+library\/busybox$/m);
    assert.match(stdout, /pull policy\s+Always$/m);
  });

  it('prints one JSON object per input', async () => {
    const { status, stdout } = await runCli(['ref', '-o', 'json', 'localhost:5000/app:v1', `nginx:1.25@${digest}`]);
    assert.equal(status, 0);
    const [first, second] = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(first, {
      input: 'localhost:5000/app:v1',
      normalized: 'localhost:5000/app:v1',
      pull: 'localhost:5000/app:v1',
      familiar: 'localhost:5000/app:v1',
      domain: 'localhost:5000',
      path: 'app',
      tag: 'v1',
      digest: null,
      pullPolicy: 'IfNotPresent',
    });
    assert.equal(second?.pull, `docker.io/library/nginx@${digest}`);
    assert.equal(second?.tag, '1.25');
    assert.equal(second?.familiar, `nginx:1.25@${digest}`);
  });

  it('reads references from standard input with "-"', async () => {
    const { status, stdout } = await runCli(['ref', '-', '-o', 'json'], {
      stdin: 'busybox\n# a comment\n\nquay.io/a/b:c\n',
    });
    assert.equal(status, 0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { normalized: string });
    assert.deepEqual(
      lines.map((l) => l.normalized),
      ['docker.io/library/busybox', 'quay.io/a/b:c'],
    );
  });

  it('exits 1 on invalid input, names the error on stderr, and still prints the valid inputs', async () => {
    const { status, stdout, stderr } = await runCli(['ref', 'Nginx', 'nginx']);
    assert.equal(status, 1);
    assert.match(stderr, /repository name \(library\/Nginx\) must be lowercase/);
    assert.match(stderr, /errNameNotLowercase/);
    assert.match(stdout, /normalized\s+docker\.io\/library\/nginx$/m);
  });

  it('keeps JSON output aligned with the input lines when one is invalid', async () => {
    const { status, stdout } = await runCli(['ref', '-o', 'json', 'a', 'b:', 'c']);
    assert.equal(status, 1);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { input: string; error?: { code: string } });
    assert.deepEqual(
      lines.map((l) => l.input),
      ['a', 'b:', 'c'],
    );
    assert.equal(lines[1]?.error?.code, 'ErrReferenceInvalidFormat');
  });

  it('rejects an unknown output format as a usage error (exit 2)', async () => {
    const { status, stderr } = await runCli(['ref', '-o', 'xml', 'busybox']);
    assert.equal(status, 2);
    assert.equal(stderr, 'kimg: -o/--output must be one of text, json, yaml, got "xml" (ErrUsage)\n');
  });
});
