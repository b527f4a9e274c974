// Alias and merge-key bombs against the real `kimg` processes that read YAML (issue 11, item 4):
// `lint`, `pin`, `pin --check`, the KRM functions and `webhook serve --config` each stop at once
// with the error naming the file and line, instead of expanding for hours.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir, type TempDir } from '../harness/index.ts';
import { runCli, type CliResult } from '../cli/run-cli.ts';

/** A 665-byte-class merge-key bomb: each level merges the previous one ten times, and the pod
 * spec merges the last level, so looking up a key the spec lacks walks 10^9 maps. */
function mergeBomb(levels: number): string {
  let text = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\nx0: &a0 {k: v}\n';
  for (let i = 1; i <= levels; i++)
    text += `x${i}: &a${i} {<<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]}\n`;
  return `${text}spec:\n  <<: *a${levels}\n  containers: [{name: c, image: busybox}]\n`;
}

/** A KRM ResourceList carrying the same bomb in its one item. */
function krmBomb(levels: number): string {
  let text = 'apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nx0: &a0 {k: v}\n';
  for (let i = 1; i <= levels; i++)
    text += `x${i}: &a${i} {<<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]}\n`;
  return `${text}items:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: bomb}\n  spec:\n    <<: *a${levels}\n    containers: [{name: c, image: busybox}]\n`;
}

/** Generous: a bounded parse takes well under a second; an unbounded one takes hours. */
const KILL_AFTER_MS = 120_000;

describe('YAML bombs against the kimg CLI', () => {
  let tmp: TempDir;
  let bomb: string;
  const kimg = (args: readonly string[], stdin?: string): Promise<CliResult> =>
    runCli(args, {
      env: { HOME: tmp.path, KIMG_STORE: join(tmp.path, 'store'), DOCKER_CONFIG: join(tmp.path, 'docker') },
      killAfterMs: KILL_AFTER_MS,
      ...(stdin !== undefined && { stdin }),
    });
  const assertRefused = (result: CliResult, file: string): void => {
    assert.notEqual(result.status, 137, 'killed: the bomb was expanded');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`${file.replace(/[.\\/]/g, '\\$&')}:\\d+:\\d+: excessive aliasing`));
    assert.match(result.stderr, /ErrYamlTooComplex/);
  };

  before(async () => {
    tmp = await makeTempDir('kimg-yaml-bomb-');
    bomb = join(tmp.path, 'bomb.yaml');
    const text = mergeBomb(9);
    assert.ok(text.length < 700, `${text.length} bytes`);
    await writeFile(bomb, text);
  });
  after(() => tmp.remove());

  test('kimg lint -f', async () => assertRefused(await kimg(['lint', '-f', bomb]), bomb));
  test('kimg pin -f (offline: nothing is resolved before the parse fails)', async () =>
    assertRefused(await kimg(['pin', '-f', bomb]), bomb));
  test('kimg pin --check -f', async () => assertRefused(await kimg(['pin', '--check', '-f', bomb]), bomb));
  test('kimg lint --krm and kimg pin --krm (KRM functions on standard input)', async () => {
    assertRefused(await kimg(['lint', '--krm'], krmBomb(9)), '-');
    assertRefused(await kimg(['pin', '--krm'], krmBomb(9)), '-');
  });
  test('kimg webhook serve --config refuses a bombed configuration before listening', async () => {
    const config = join(tmp.path, 'config.yaml');
    let text = 'x0: &a0 {k: v}\n';
    for (let i = 1; i <= 9; i++)
      text += `x${i}: &a${i} {<<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]}\n`;
    await writeFile(config, `${text}validate:\n  <<: *a9\n`);
    const result = await kimg(['webhook', 'serve', '--config', config, '--port', '0']);
    assert.notEqual(result.status, 137, 'killed: the bomb was expanded');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /config\.yaml:\d+:\d+: excessive aliasing/);
  });
});
