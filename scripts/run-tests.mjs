// Runs every *.test.ts under the given folders (default: src and test) with Node's test runner.
// Node 20's --test does not expand globs, so the files are listed here. With no folders given
// (`npm test`), the unit suite (src/) also runs on the other supported Node.js lines first
// (scripts/other-nodes.mjs; KIMG_OTHER_NODES=0 skips that).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runOnOtherNodes } from './other-nodes.mjs';

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['src', 'test']).flatMap(findTests).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const othersOk = roots.length === 0 ? runOnOtherNodes(findTests('src').sort()) : true;
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(othersOk ? (result.status ?? 1) : 1);
