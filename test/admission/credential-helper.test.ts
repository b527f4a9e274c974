// Docker credential helpers in the webhook (docs/semantics.md admission §4.8, §4.10), with real helper programs: shell
// scripts named docker-credential-<name> on the webhook's PATH, configured through the mounted
// Docker config's credHelpers. A helper that never answers must not hold the admission past its
// budget (the image fails with `timeout`, the answer comes inside `?timeout=2s`) nor outlive the
// longest budget; helper answers are shared while fresh and asked again once stale.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dockerConfigCredentials } from '../../src/admission/index.ts';
import { requireTools } from '../harness/index.ts';
import { patchMap } from './apiserver.ts';
import { objects, startRegistryFixture, startWebhook, writeJson, type RegistryFixture } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl', 'sh', 'sleep']);

const APP = 'registry.kimg.test/team/app:v1';

async function writeScript(path: string, body: string): Promise<void> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('Docker credential helpers', { skip }, () => {
  let fx: RegistryFixture;
  let bin: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    fx = await startRegistryFixture(['app', 'redis']);
    bin = join(fx.temp.path, 'bin');
    await mkdir(bin);
    // Records its PID (exec keeps it for sleep), then never answers.
    await writeScript(
      join(bin, 'docker-credential-hang'),
      `echo $$ >> "${join(fx.temp.path, 'hang.pids')}"\nexec sleep 600`,
    );
    env = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: fx.temp.path };
  });

  after(async () => {
    await fx?.stop();
  });

  test('a hung helper: the answer comes within ?timeout=2s, the image fails with timeout, the helper is killed', async () => {
    const dockerConfig = await writeJson(join(fx.temp.path, 'hang-config.json'), {
      credHelpers: { 'registry.kimg.test': 'hang' },
    });
    // maxBudgetMs also bounds the helper's life: no request waits longer than that.
    const resolver = { dockerConfig, maxBudgetMs: 3000 };
    const denying = await startWebhook(fx, { resolver }, env);
    const allowing = await startWebhook(fx, { resolver, mutate: { onResolveError: 'allow' } }, env);
    try {
      const pod = { object: objects.pod({ containers: objects.containers(APP, 'redis:7.2') }) };
      // The harness gives up at the 2 s deadline, as the apiserver would.
      const denied = await denying.mutate(pod, 2);
      assert.equal(denied.response.allowed, false);
      assert.match(
        denied.response.status?.message ?? '',
        /registry\.kimg\.test\/team\/app:v1: timeout \(no pull credentials within the request budget/,
      );
      assert.doesNotMatch(
        denied.response.status?.message ?? '',
        /redis/,
        'only the image whose registry has the helper fails',
      );

      const allowed = await allowing.mutate(pod, 2);
      assert.equal(allowed.response.allowed, true);
      assert.deepEqual(patchMap(allowed.patch), { '/spec/containers/1/image': `redis:7.2@${fx.digest('redis')}` });
      assert.ok(
        allowed.response.warnings?.some((w) => w.startsWith(`${APP}: not pinned: timeout`)),
        JSON.stringify(allowed.response.warnings),
      );

      const pids = (await readFile(join(fx.temp.path, 'hang.pids'), 'utf8')).trim().split('\n').map(Number);
      assert.equal(pids.length, 2, 'one helper run per webhook');
      // Killed at maxBudgetMs rather than the 30 s helper default; polled, not timed.
      for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(pids.filter(alive), [], 'the hung helpers were killed');
    } finally {
      await denying.stop();
      await allowing.stop();
    }
  });

  test("a helper's answer is shared by concurrent lookups and asked for again once stale", async () => {
    const runs = join(fx.temp.path, 'rotate.runs');
    const secret = join(fx.temp.path, 'rotate.json');
    await writeScript(join(bin, 'docker-credential-rotate'), `echo run >> "${runs}"\ncat "${secret}"`);
    await writeFile(secret, JSON.stringify({ ServerURL: 'registry.kimg.test', Username: 'robot', Secret: 'token-1' }));
    const dockerConfig = await writeJson(join(fx.temp.path, 'rotate-config.json'), {
      credHelpers: { 'registry.kimg.test': 'rotate' },
    });
    let now = 0;
    const lookup = await dockerConfigCredentials(dockerConfig, env, { cacheMs: 60_000, now: () => now });
    const passwords = async (repository: string) => {
      const found = await lookup('registry.kimg.test', repository);
      return found.map((c) => (c.kind === 'basic' ? c.password : c.kind));
    };
    const runCount = async () => (await readFile(runs, 'utf8')).trim().split('\n').length;

    assert.deepEqual(
      await Promise.all(['team/app', 'team/app', 'team/other'].map((r) => passwords(`registry.kimg.test/${r}`))),
      [['token-1'], ['token-1'], ['token-1']],
    );
    assert.equal(await runCount(), 1, 'one helper run for one server');

    await writeFile(secret, JSON.stringify({ ServerURL: 'registry.kimg.test', Username: 'robot', Secret: 'token-2' }));
    now = 59_999;
    assert.deepEqual(await passwords('registry.kimg.test/team/app'), ['token-1'], 'fresh: kept');
    now = 60_000;
    assert.deepEqual(await passwords('registry.kimg.test/team/app'), ['token-2'], 'stale: the helper is asked again');
    assert.equal(await runCount(), 2);
  });
});
