// The `kimg` commands that pull and manage the store, against a real registry behind a recording
// proxy: pull (plain, JSON and quiet progress), resolve, images, inspect, rmi, gc, fsck, --store
// and $KIMG_STORE, and errors that exit 1 naming the image. What depends on the process (stdout
// not a terminal, the environment, exit codes, a second process racing gc) runs the real CLI as
// a child process; the other commands run `main()` in-process, which is what the child runs,
// because each child costs a second of CPU to start.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/index.ts';
import { Puller, type PullEvent } from '../../src/pull/index.ts';
import { openStore } from '../../src/store/index.ts';
import {
  buildImage,
  fault,
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
import { eventually } from '../pull/helpers.ts';
import { runCli, type CliResult } from './run-cli.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

const short = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 12);

describe('kimg pull, resolve, images, inspect, rmi, gc, fsck', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let app: BuiltImage;
  let multi: BuiltImage;
  let store: string;
  let otherStore: string;
  const ref = (repoTag: string) => `${proxy.host}/${repoTag}`;
  /** An environment of our own: no user store, registry configuration or credentials. */
  const env = (extra: Record<string, string> = {}) => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
    ...extra,
  });
  const kimg = (args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { env: env(extra) });
  /** The same command run in-process through `main()`, with its own streams and environment. */
  const kimgHere = async (args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> => {
    const [stdout, stderr] = [new PassThrough(), new PassThrough()];
    const out: string[] = [];
    const err: string[] = [];
    stdout.setEncoding('utf8').on('data', (s: string) => out.push(s));
    stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
    const status = await main(args, {
      stdout,
      stderr,
      stdin: Readable.from([]),
      env: { ...process.env, ...env(extra) },
    });
    return { status, stdout: out.join(''), stderr: err.join('') };
  };
  const lines = (text: string) => text.trimEnd().split('\n');

  before(async () => {
    tmp = await makeTempDir('kimg-cli-pull-');
    store = join(tmp.path, 'store');
    otherStore = join(tmp.path, 'other-store');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    [app, multi] = await Promise.all([
      buildImage({ layers: [3_000, 50_000], seed: 'cli-app' }),
      buildImage({ layers: [4_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'cli-multi' }),
    ]);
    await Promise.all([pushImage(app, registry, 'cli/app:v1'), pushImage(multi, registry, 'cli/multi:v1')]);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([app?.remove(), multi?.remove()]);
    await tmp?.remove();
  });

  test('pull prints one plain line per layer state when stdout is not a terminal, then the digest, a summary and the name', async () => {
    const { status, stdout, stderr } = await kimg(['pull', '--store', store, ref('cli/app:v1')]);
    assert.equal(status, 0, stderr);
    assert.equal(stderr, `kimg: creating a new image store at ${store}\n`);
    assert.ok(!stdout.includes('\x1b['), 'terminal escapes in non-terminal output');
    const out = lines(stdout);
    const image = app.images[0];
    assert.ok(image);
    assert.equal(out[0], `${ref('cli/app:v1')}: resolved to ${app.digest}`);
    for (const blob of [image.config, ...image.layers]) {
      assert.ok(
        out.some((l) => l.startsWith(`${short(blob.digest)}: Pulling `)),
        `no "Pulling" line for ${blob.digest}`,
      );
      assert.ok(
        out.some((l) => new RegExp(`^${short(blob.digest)}: Pull complete \\(\\S+ in [\\d.]+s\\)$`).test(l)),
        `no "Pull complete" line for ${blob.digest}`,
      );
    }
    assert.equal(out.at(-3), `Digest: ${app.digest}`);
    assert.match(out.at(-2) ?? '', /^Status: Downloaded \S+ in \S+ \(3 of 3 blobs\) for /);
    assert.ok(out.at(-2)?.endsWith(` for ${ref('cli/app:v1')}`));
    assert.equal(out.at(-1), ref('cli/app:v1'));
  });

  test('pulling it again is one HEAD request and says the image is up to date', async () => {
    proxy.reset();
    const { status, stdout, stderr } = await kimg(['pull', '--store', store, ref('cli/app:v1')]);
    assert.equal(status, 0, stderr);
    assert.deepEqual(
      proxy.requests.map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/cli/app/manifests/v1'],
    );
    assert.equal(lines(stdout).filter((l) => l.endsWith(': Already exists')).length, 3);
    assert.match(
      stdout,
      new RegExp(`^Status: Image is up to date for ${ref('cli/app:v1').replace(/[.]/g, '\\.')}$`, 'm'),
    );
  });

  test('pull --progress=json writes events as JSON lines, into $KIMG_STORE', async () => {
    const { status, stdout, stderr } = await kimg(['pull', '--progress=json', ref('cli/app:v1')], {
      KIMG_STORE: otherStore,
    });
    assert.equal(status, 0, stderr);
    const events = lines(stdout).map(
      (l) => JSON.parse(l) as { type: string; time: string; digest?: string; bytes?: number; size?: number },
    );
    assert.ok(events.every((e) => typeof e.type === 'string' && !Number.isNaN(Date.parse(e.time))));
    const types = new Set(events.map((e) => e.type));
    for (const type of [
      'resolving',
      'resolved',
      'manifest',
      'blob-waiting',
      'blob-progress',
      'blob-verifying',
      'blob-done',
      'done',
    ])
      assert.ok(types.has(type), `no ${type} event`);
    assert.deepEqual(events.at(-1), { ...events.at(-1), type: 'done', digest: app.digest });
    const images = await (await openStore(otherStore, { create: false })).listImages();
    assert.deepEqual(
      images.map((i) => i.name),
      [ref('cli/app:v1')],
    );
    assert.equal(existsSync(join(tmp.path, 'xdg-data', 'kimg')), false, 'the default store was used');
  });

  test('pull -q prints only the name; --platform picks arm64 from an index', async () => {
    const { status, stdout, stderr } = await kimgHere([
      'pull',
      '-q',
      '--platform',
      'linux/arm64',
      '--store',
      store,
      ref('cli/multi:v1'),
    ]);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, `${ref('cli/multi:v1')}\n`);
    assert.equal(stderr, '');
  });

  test('resolve prints name@digest, and JSON with -o json', async () => {
    const [text, json] = await Promise.all([
      kimgHere(['resolve', ref('cli/multi:v1')]),
      kimgHere(['resolve', '-o', 'json', ref('cli/multi:v1')]),
    ]);
    assert.equal(text.status, 0, text.stderr);
    assert.equal(text.stdout, `${ref('cli/multi:v1')}@${multi.digest}\n`);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      name: ref('cli/multi:v1'),
      digest: multi.digest,
      mediaType: multi.mediaType,
      size: multi.size,
      via: 'HEAD',
    });
  });

  test('images -o json lists the store given by --store (over $KIMG_STORE); inspect -o json shows manifest and config', async () => {
    const [images, inspectApp, inspectMulti] = await Promise.all([
      kimgHere(['images', '-o', 'json', '--store', store], { KIMG_STORE: otherStore }),
      kimgHere(['inspect', '-o', 'json', '--store', store, ref('cli/app:v1')]),
      kimgHere(['inspect', '-o', 'json', '--store', store, ref('cli/multi:v1')]),
    ]);
    assert.equal(images.status, 0, images.stderr);
    // A list is JSON Lines: one object per image.
    const listed = lines(images.stdout).map(
      (l) =>
        JSON.parse(l) as {
          name: string;
          digest: string;
          mediaType: string;
          platforms: string[];
          size: number;
        },
    );
    assert.deepEqual(
      listed.map((i) => [i.name, i.digest, i.platforms]),
      [
        [ref('cli/app:v1'), app.digest, ['linux/amd64']],
        [ref('cli/multi:v1'), multi.digest, ['linux/arm64/v8']],
      ],
    );
    const appImage = app.images[0];
    assert.ok(appImage);
    assert.equal(listed[0]?.size, app.size + appImage.config.size + appImage.layers.reduce((n, l) => n + l.size, 0));

    assert.equal(inspectApp.status, 0, inspectApp.stderr);
    const shown = JSON.parse(inspectApp.stdout) as {
      name: string;
      digest: string;
      platform: string;
      manifest: { config: { digest: string }; layers: { digest: string }[] };
      config: { architecture: string; os: string; rootfs: { diff_ids: string[] } };
    };
    assert.equal(shown.name, ref('cli/app:v1'));
    assert.equal(shown.digest, app.digest);
    assert.equal(shown.platform, 'linux/amd64');
    assert.equal(shown.manifest.config.digest, appImage.config.digest);
    assert.deepEqual(
      shown.manifest.layers.map((l) => l.digest),
      appImage.layers.map((l) => l.digest),
    );
    assert.deepEqual([shown.config.os, shown.config.architecture], ['linux', 'amd64']);
    assert.deepEqual(
      shown.config.rootfs.diff_ids,
      appImage.layers.map((l) => l.diffId),
    );

    assert.equal(inspectMulti.status, 0, inspectMulti.stderr);
    const child = JSON.parse(inspectMulti.stdout) as { digest: string; manifestDigest: string; platform: string };
    assert.deepEqual(child, {
      ...child,
      digest: multi.digest,
      manifestDigest: multi.images[1]?.manifest.digest,
      platform: 'linux/arm64/v8',
    });
  });

  test('rmi then gc removes the image’s blobs and keeps the others; fsck is clean, and exits 1 after a byte flips', async () => {
    const appImage = app.images[0];
    const multiImage = multi.images[1];
    assert.ok(appImage && multiImage);
    const rmi = await kimgHere(['rmi', '--store', store, ref('cli/app:v1')]);
    assert.equal(rmi.status, 0, rmi.stderr);
    assert.equal(rmi.stdout, `Untagged: ${ref('cli/app:v1')}\n`);
    const blobFile = (digest: string) => join(store, 'blobs', 'sha256', digest.slice('sha256:'.length));
    assert.ok(existsSync(blobFile(appImage.layers[1]?.digest ?? '')), 'rmi alone removes no blob');

    const gc = await kimgHere(['gc', '--store', store]);
    assert.equal(gc.status, 0, gc.stderr);
    const appBlobs = [app.digest, appImage.config.digest, ...appImage.layers.map((l) => l.digest)];
    for (const digest of appBlobs) {
      assert.match(gc.stdout, new RegExp(`^Removed ${digest} `, 'm'));
      assert.equal(existsSync(blobFile(digest)), false, `${digest} still stored`);
    }
    assert.match(gc.stdout, /^Removed 4 blobs \(.*\) and 0 stale ingest files; kept 4 blobs in use$/m);
    for (const digest of [
      multi.digest,
      multiImage.manifest.digest,
      multiImage.config.digest,
      ...multiImage.layers.map((l) => l.digest),
    ]) {
      assert.ok(existsSync(blobFile(digest)), `${digest} of the other image was removed`);
    }

    const clean = await kimgHere(['fsck', '--store', store]);
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /^ok: 4 blobs \(.*\) in 1 images checked in .*; 0 problems$/m);

    const layer = multiImage.layers[0]?.digest ?? '';
    const bytes = await readFile(blobFile(layer));
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await chmod(blobFile(layer), 0o644);
    await writeFile(blobFile(layer), bytes);
    const corrupt = await kimg(['fsck', '--store', store]);
    assert.equal(corrupt.status, 1);
    assert.ok(corrupt.stdout.includes(layer), corrupt.stdout);
    assert.match(corrupt.stdout, /^PROBLEMS FOUND: /m);
    assert.match(corrupt.stderr, /\(ErrStoreCorrupt\)$/m);
  });

  test('gc while another process pulls keeps the blobs that pull has committed but not yet recorded', async () => {
    const racing = join(tmp.path, 'racing-store');
    const image = app.images[0];
    assert.ok(image);
    const [small, big] = image.layers;
    assert.ok(small && big);
    // The big layer's request hangs until gc has run; dropping it makes the client retry.
    proxy.reset();
    proxy.setRule((r) =>
      r.method === 'GET' && r.path.endsWith(big.digest) && r.count === 1 ? fault.hang() : undefined,
    );
    const puller = new Puller({ store: racing });
    const events: PullEvent[] = [];
    const pulling = puller.pull(ref('cli/app:v1'), { onEvent: (e) => events.push(e) });
    try {
      const done = (digest: string) => events.some((e) => e.type === 'blob-done' && e.digest === digest);
      await eventually(
        () =>
          done(image.config.digest) && done(small.digest) && proxy.inFlight(`/v2/cli/app/blobs/${big.digest}`) === 1,
        'the pull committed the config and the small layer and waits for the big one',
      );
      const gc = await kimg(['gc', '--store', racing]);
      assert.equal(gc.status, 0, gc.stderr);
      assert.match(gc.stdout, /^Removed 0 blobs /m);
    } finally {
      proxy.reset();
      await pulling.finally(() => puller.close());
    }
    const report = await (await openStore(racing, { create: false })).fsck();
    assert.deepEqual(report.problems, []);
  });

  test('errors exit 1 with a message naming the image', async () => {
    const [unknownTag, unknownPlatform] = await Promise.all([
      kimg(['pull', '--store', store, ref('cli/app:nope')]),
      kimg(['pull', '--platform', 'linux/s390x', '--store', store, ref('cli/multi:v1')]),
    ]);
    assert.equal(unknownTag.status, 1);
    assert.ok(unknownTag.stderr.includes(ref('cli/app:nope')), unknownTag.stderr);
    assert.match(unknownTag.stderr, /^kimg: .*\(ErrManifestUnknown\)$/m);
    assert.equal(unknownPlatform.status, 1);
    assert.equal(
      unknownPlatform.stderr,
      `kimg: no manifest for platform linux/s390x in ${ref('cli/multi:v1')}; available: linux/amd64, linux/arm64/v8 (ErrPlatformNotFound)\n`,
    );
  });
});
