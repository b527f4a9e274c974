// Runs the unit suite (src/) on the other Node.js lines kimg supports (22 and 24), with
// binaries from npm's `node-<platform>-<arch>` packages (the binary ships inside the package, no
// download script). Each is unpacked once into a cache directory outside node_modules
// (~/.cache/kimg/node-<major>), so the project's node_modules is never touched. When a runtime
// cannot be had (no registry, no package for this platform), a notice says so and the run goes on.
//
// KIMG_OTHER_NODES="22 24" (default) picks the lines; KIMG_OTHER_NODES=0 skips them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const cacheRoot = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kimg');

/** The majors to run on: KIMG_OTHER_NODES, default 22 and 24, without the one running this. */
export function otherMajors() {
  const wanted = process.env.KIMG_OTHER_NODES ?? '22 24';
  if (wanted.trim() === '0' || wanted.trim() === '') return [];
  const current = process.versions.node.split('.')[0];
  return wanted.split(/[\s,]+/).filter((m) => /^\d+$/.test(m) && m !== current);
}

function versionOf(binary) {
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** A node binary of this major: from the cache, else unpacked from npm. Returns {binary} or {why}. */
export function nodeBinary(major) {
  const dir = join(cacheRoot, `node-${major}`);
  const binary = join(dir, 'bin', 'node');
  const cached = existsSync(binary) ? versionOf(binary) : undefined;
  if (cached?.startsWith(`v${major}.`)) return { binary, version: cached };
  const pkg = `node-${process.platform}-${process.arch}@${major}`;
  const work = mkdtempSync(join(tmpdir(), `kimg-node-${major}-`));
  try {
    console.log(`# installing Node ${major} from npm (${pkg}) into ${dir}`);
    const pack = spawnSync('npm', ['pack', pkg, '--pack-destination', work, '--loglevel=error'], {
      encoding: 'utf8',
      timeout: 300_000,
      cwd: work,
    });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (pack.status !== 0 || tarball === undefined)
      return {
        why: `npm pack ${pkg} failed: ${
          (pack.stderr || pack.error?.message || `exit ${pack.status}`)
            .split('\n')
            .map((l) => l.replace(/^npm (error|ERR!) /, '').trim())
            .filter((l) => l !== '' && !l.startsWith('A complete log'))
            .slice(0, 2)
            .join('; ') || `exit ${pack.status}`
        }`,
      };
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    const tar = spawnSync('tar', ['-xzf', join(work, tarball), '-C', unpacked, '--strip-components=1'], {
      encoding: 'utf8',
    });
    if (tar.status !== 0) return { why: `unpacking ${tarball} failed: ${tar.stderr.trim()}` };
    const version = versionOf(join(unpacked, 'bin', 'node'));
    if (!version?.startsWith(`v${major}.`)) return { why: `${pkg} holds no runnable node binary` };
    mkdirSync(cacheRoot, { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
    return { binary, version };
  } catch (err) {
    return { why: err instanceof Error ? err.message : String(err) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs `files` under each other major with compact output, then one summary line per runtime.
 * Returns false if a suite failed (a runtime that could not be installed is a notice, not a failure).
 */
export function runOnOtherNodes(files) {
  let ok = true;
  for (const major of otherMajors()) {
    const found = nodeBinary(major);
    if (found.binary === undefined) {
      console.log(`# NOTICE: the unit suite did not run on Node ${major}: ${found.why}`);
      continue;
    }
    const report = join(mkdtempSync(join(tmpdir(), 'kimg-tap-')), 'report.tap');
    console.log(`# unit suite on Node ${found.version} (${found.binary})`);
    const result = spawnSync(
      found.binary,
      [
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=2',
        '--test-reporter=dot',
        '--test-reporter-destination=stdout',
        '--test-reporter=tap',
        `--test-reporter-destination=${report}`,
        ...files,
      ],
      { stdio: 'inherit' },
    );
    const tap = existsSync(report) ? readFileSync(report, 'utf8') : '';
    rmSync(join(report, '..'), { recursive: true, force: true });
    const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0);
    if (result.status !== 0) ok = false;
    console.log(`node${major}: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
  }
  return ok;
}
