// The Dockerfile, checked by reading it (no Docker engine here): what the image promises
// (multi-stage, production dependencies only, a numeric non-root user, nothing built or
// installed in the final stage) and that every file it copies is in the build context and is
// what `bin/kimg.js` loads. The runtime tree it describes was also run as uid 65532 on a
// read-only root once by hand; the generated Deployment relies on both (see the README).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
const dockerignore = readFileSync(`${root}.dockerignore`, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions per stage (comments dropped, `\` continuations joined). */
function stages(text: string): { from: string; name?: string; steps: Instruction[] }[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const out: { from: string; name?: string; steps: Instruction[] }[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      out.push({ from: m?.[1] ?? args, ...(m?.[2] !== undefined && { name: m[2] }), steps: [] });
    } else {
      out.at(-1)?.steps.push({ op: op.toUpperCase(), args });
    }
  }
  return out;
}

describe('Dockerfile', () => {
  const all = stages(dockerfile);
  const final = all.at(-1);

  test('multi-stage: a build stage, a production-dependencies stage, a final stage from neither', () => {
    assert.ok(all.length >= 3, `${all.length} stages`);
    assert.ok(final);
    const build = all.find((s) => s.name === 'build');
    const deps = all.find((s) => s.name === 'deps');
    assert.ok(build && deps);
    assert.ok(build.steps.some((s) => s.op === 'RUN' && /npm ci\b/.test(s.args)));
    assert.ok(build.steps.some((s) => s.op === 'RUN' && /tsc -p tsconfig\.build\.json/.test(s.args)));
    const install = deps.steps.find((s) => s.op === 'RUN' && /npm ci\b/.test(s.args));
    assert.match(install?.args ?? '', /--omit=dev/);
    assert.match(install?.args ?? '', /--ignore-scripts/, 'no install scripts (prepare would need tsc)');
    assert.ok(!['build', 'deps'].includes(final.from));
  });

  test('the final stage installs and builds nothing, copies only the runtime, runs as a numeric non-root user', () => {
    assert.ok(final);
    assert.ok(!final.steps.some((s) => s.op === 'RUN'), 'no RUN in the final stage');
    const copies = final.steps.filter((s) => s.op === 'COPY').map((s) => s.args);
    assert.deepEqual(copies.filter((c) => c.startsWith('--from=')).sort(), [
      '--from=build /src/dist ./dist',
      '--from=deps /app/node_modules ./node_modules',
    ]);
    const user = final.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? '';
    const [uid, gid] = user.split(':');
    assert.match(uid ?? '', /^\d+$/, 'numeric, so runAsNonRoot can be checked without /etc/passwd');
    assert.notEqual(Number(uid), 0);
    assert.notEqual(Number(gid ?? '1'), 0);
    assert.ok(!final.steps.some((s) => s.op === 'VOLUME'), 'nothing to write: read-only root filesystem');
    const entrypoint = final.steps.find((s) => s.op === 'ENTRYPOINT')?.args ?? '';
    assert.match(entrypoint, /\/app\/bin\/kimg\.js/);
  });

  test('what it copies from the context exists and is not excluded by .dockerignore', () => {
    const sources = all
      .flatMap((s) => s.steps)
      .filter((s) => s.op === 'COPY' && !s.args.startsWith('--from='))
      .flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    assert.deepEqual([...new Set(sources)].sort(), [
      'bin',
      'package-lock.json',
      'package.json',
      'src',
      'tsconfig.build.json',
      'tsconfig.json',
    ]);
    for (const source of sources) {
      assert.ok(existsSync(`${root}${source}`), source);
      assert.ok(!dockerignore.includes(source), `${source} is in .dockerignore`);
    }
    // bin/kimg.js loads the compiled CLI from dist, which the build stage writes.
    assert.match(readFileSync(`${root}bin/kimg.js`, 'utf8'), /from '\.\.\/dist\/cli\/main\.js'/);
    const build = JSON.parse(readFileSync(`${root}tsconfig.build.json`, 'utf8')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    assert.deepEqual([build.compilerOptions.rootDir, build.compilerOptions.outDir], ['src', 'dist']);
    for (const dev of ['node_modules', 'dist', 'test', '.git']) assert.ok(dockerignore.includes(dev), dev);
  });

  test('the production dependencies need no build step (pure JavaScript, no install scripts)', () => {
    const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.dev !== true && p.hasInstallScript === true)
      .map(([path]) => path);
    assert.deepEqual(withScripts, []);
  });
});
