// A store on a full file system, with real `kimg` processes against a real registry: a small
// tmpfs is mounted, an image pulled, the rest of the file system filled by another file. Then the
// read-only commands (images, inspect, fsck, resolve) and the ones that free space (rmi, gc) still
// work, and a pull that runs out of space midway fails with ErrStoreFull naming the store, keeps
// its partial download, leaves the store sound, and resumes once there is room again.
// Mounting needs root (and CAP_SYS_ADMIN): otherwise the test is skipped with a notice.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, type CliResult } from '../cli/run-cli.ts';
import { assertStoreSound, knownBlobs } from '../faults/helpers.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';

const MiB = 1024 * 1024;
const TMPFS_SIZE = 40 * MiB;

/** Why this test cannot mount a tmpfs here, or undefined when it can. */
function cannotMount(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return requireTools(['mount', 'umount']);
}

/** Fills the file system to the last byte by appending to `fd`. */
function fill(fd: number): number {
  for (const size of [MiB, 64 * 1024, 4096, 512, 64, 1]) {
    const chunk = Buffer.alloc(size, 0x66);
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  }
  return fd;
}

async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

const why = cannotMount() ?? requireTools(['docker-registry', 'skopeo']) ?? undefined;

describe('a full disk', { skip: why, timeout: 300_000 }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let small: BuiltImage;
  let big: BuiltImage;
  let mnt = '';
  let mounted = false;
  let filler: number | undefined;
  const ref = (repo: string) => `${proxy.host}/${repo}:v1`;
  const store = () => join(mnt, 'store');
  const env = (): NodeJS.ProcessEnv => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
  });
  const kimg = (args: readonly string[]): Promise<CliResult> => runCli(args, { env: env(), killAfterMs: 120_000 });
  const ok = (r: CliResult, what: string) => assert.equal(r.status, 0, `${what}: ${r.stderr}`);

  before(async () => {
    tmp = await makeTempDir('kimg-full-disk-');
    mnt = join(tmp.path, 'mnt');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'kimg-full-disk', mnt], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      console.log(`# NOTICE: cannot mount a tmpfs (${(err as Error).message.split('\n')[0]}): full-disk test skipped`);
      return;
    }
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    [small, big] = await Promise.all([
      buildImage({ layers: [600_000, 300_000], seed: 'full-disk-small' }),
      buildImage({ layers: [24 * MiB], seed: 'full-disk-big' }),
    ]);
    await Promise.all([pushImage(small, registry, 'full/small:v1'), pushImage(big, registry, 'full/big:v1')]);
  });

  after(async () => {
    if (filler !== undefined) closeSync(filler);
    if (mounted) execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([small?.remove(), big?.remove()]);
    await tmp?.remove();
  });

  test('read-only commands and the ones that free space work at 100 % usage; a pull out of space fails cleanly and resumes later', async (t) => {
    if (!mounted) return t.skip('no tmpfs');
    ok(await kimg(['pull', '--store', store(), ref('full/small')]), 'pull before the disk is full');

    filler = fill(openSync(join(mnt, 'filler'), 'w'));
    assert.equal(await freeBytes(mnt), 0, 'the file system is full');

    // Read-only commands.
    const images = await kimg(['images', '--store', store()]);
    ok(images, 'images');
    assert.match(images.stdout, /full\/small/);
    ok(await kimg(['inspect', '--store', store(), ref('full/small')]), 'inspect');
    const fsck = await kimg(['fsck', '--store', store()]);
    ok(fsck, 'fsck');
    assert.match(fsck.stdout, /^ok: /m);
    ok(await kimg(['resolve', ref('full/small')]), 'resolve');
    // A pull with no room at all fails at once, naming the store.
    const refused = await kimg(['pull', '--store', store(), ref('full/big')]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /no space left on the file system of the image store .*\(ErrStoreFull\)/);

    // What frees space.
    const rmi = await kimg(['rmi', '--store', store(), ref('full/small')]);
    ok(rmi, 'rmi');
    assert.match(rmi.stdout, /Untagged: /);
    const gc = await kimg(['gc', '--store', store()]);
    ok(gc, 'gc');
    assert.match(gc.stdout, /Removed 4 blobs/);
    assert.ok((await freeBytes(mnt)) >= 900_000, 'gc freed the image’s blobs');

    // A pull that runs out of space inside its large layer.
    const layer = big.images[0]?.layers[0] ?? assert.fail();
    fill(filler);
    ftruncateSync(filler, fstatSync(filler).size - 8 * MiB);
    const failed = await kimg(['pull', '--store', store(), ref('full/big')]);
    assert.equal(failed.status, 1, failed.stderr);
    t.diagnostic(failed.stderr.trim());
    assert.match(failed.stderr, /no space left on the file system of the image store .*\(ErrStoreFull\)/);
    assert.ok(failed.stderr.includes(store()), `the error names the store: ${failed.stderr}`);
    const report = await assertStoreSound(store(), {
      known: knownBlobs(small, big),
      image: { name: ref('full/big'), recorded: false },
    });
    const kept = report.partials.get(layer.digest) ?? 0;
    t.diagnostic(`the pull kept ${kept} bytes of the ${layer.size}-byte layer`);
    assert.ok(failed.stderr.includes(`${kept} of its ${layer.size} bytes are kept`), 'the error says what is kept');
    assert.ok(kept > MiB, `the partial download was kept (${kept} bytes)`);
    ok(await kimg(['fsck', '--store', store()]), 'fsck after the failed pull');
    // Full to the last byte with the partial in ingest/: gc still runs, and keeps the partial.
    fill(filler);
    assert.equal(await freeBytes(mnt), 0, 'the file system is full again');
    ok(await kimg(['gc', '--store', store()]), 'gc with a partial on a full disk');
    assert.equal((await assertStoreSound(store(), { known: knownBlobs(small, big) })).partials.get(layer.digest), kept);

    // Room again: the next pull resumes where the first stopped.
    closeSync(filler);
    filler = undefined;
    await rm(join(mnt, 'filler'));
    proxy.reset();
    ok(await kimg(['pull', '--store', store(), ref('full/big')]), 'pull with room again');
    const get = proxy.requests.find((r) => r.method === 'GET' && r.path.endsWith(layer.digest));
    assert.equal(get?.headers.range, `bytes=${kept}-`, 'the layer download resumed');
    await assertStoreSound(store(), {
      known: knownBlobs(small, big),
      image: { name: ref('full/big'), recorded: true },
    });
  });
});
