// kimg copy, push, save and load through the real CLI against real parts: two TLS registries
// with htpasswd (verified certificates), skopeo as the reference reader and writer, tar archives
// with hostile entries.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { digestOf } from '../../src/digest/index.ts';
import {
  Containerd,
  buildImage,
  copyImage as skopeoCopy,
  inspectRaw,
  makeTempDir,
  pushImage,
  requireTools,
  run,
  snapshotTree,
  startRegistry,
  type BuiltImage,
  type PushedImage,
  type RunningRegistry,
  type TempDir,
  which,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);

/** The `index.json` of a tar archive, for messages. */
async function tarIndex(file: string): Promise<string> {
  const extract = tar.extract();
  const { createReadStream } = await import('node:fs');
  createReadStream(file).pipe(extract);
  let text = '';
  const names: string[] = [];
  for await (const entry of extract) {
    names.push(entry.header.name);
    if (entry.header.name === 'index.json') for await (const c of entry) text += String(c);
    else entry.resume();
  }
  return `${text} entries: ${names.join(' ')}`;
}

describe('kimg copy, push, save, load', { skip }, () => {
  let a: RunningRegistry;
  let b: RunningRegistry;
  let image: BuiltImage;
  let pushed: PushedImage;
  let tmp: TempDir;
  let flags: string[];
  const user = { user: 'copier', password: 'c0py-pass' };

  before(async () => {
    [a, b, image, tmp] = await Promise.all([
      startRegistry({ tls: true, htpasswd: [user] }),
      startRegistry({ tls: true, htpasswd: [user] }),
      buildImage({ layers: [400_000, 2_500_000], platforms: ['linux/amd64', 'linux/arm64'], seed: 'copy' }),
      makeTempDir('kimg-copy-test-'),
    ]);
    pushed = await pushImage(image, a, 'team/app:v1', { creds: user });
    const auth = Buffer.from(`${user.user}:${user.password}`).toString('base64');
    const config = join(tmp.path, 'config.json');
    await writeFile(config, JSON.stringify({ auths: { [a.host]: { auth }, [b.host]: { auth } } }));
    flags = [
      '--store',
      join(tmp.path, 'store'),
      '--authfile',
      config,
      '--ca-file',
      a.caFile as string,
      '--ca-file',
      b.caFile as string,
      '--tls-verify-loopback',
    ];
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), image?.remove(), tmp?.remove()]);
  });

  const kimg = (...args: string[]) => runCli([...args, ...flags], { killAfterMs: 120_000 });
  const raw = (registry: RunningRegistry, ref: string) =>
    inspectRaw(`${registry.host}/${ref}`, { creds: user, certDir: registry.certDir, tlsVerify: true });

  test('registry to registry over verified TLS: skopeo reads the source bytes at the destination; again is up to date', async () => {
    const r = await kimg('copy', `docker://${pushed.ref}`, `docker://${b.host}/mirror/app:v1`, '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { digest: string; pushed: number; upToDate: boolean };
    assert.equal(result.digest, pushed.digest);
    assert.ok(result.pushed >= 3);
    assert.equal(digestOf(await raw(b, 'mirror/app:v1')), pushed.digest);
    // Every platform's manifest went too.
    for (const p of image.images)
      assert.equal(digestOf(await raw(b, `mirror/app@${p.manifest.digest}`)), p.manifest.digest);
    const again = await kimg('copy', `docker://${pushed.ref}`, `docker://${b.host}/mirror/app:v1`, '-o', 'json');
    assert.equal(again.status, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { upToDate: boolean }).upToDate, true);
  });

  test('within one registry, blobs are mounted, not uploaded', async () => {
    const r = await kimg('copy', `docker://${pushed.ref}`, `docker://${a.host}/other/app:v1`, '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { pushed: number; mounted: number; bytesPushed: number };
    assert.equal(result.pushed, 0);
    assert.ok(result.mounted >= 3);
    assert.equal(digestOf(await raw(a, 'other/app:v1')), pushed.digest);
  });

  test('--platform copies one manifest as the top level', async () => {
    const r = await kimg(
      'copy',
      '--platform',
      'linux/arm64',
      `docker://${pushed.ref}`,
      `docker://${b.host}/one/app:arm`,
      '-o',
      'json',
    );
    assert.equal(r.status, 0, r.stderr);
    const arm = image.images.find((p) => p.platformString === 'linux/arm64');
    assert.equal((JSON.parse(r.stdout) as { digest: string }).digest, arm?.manifest.digest);
  });

  test('pull into the store, push to another name, write an oci-archive skopeo reads, copy it back to a registry', async () => {
    const ref = `${a.host}/team/app:v1`;
    const pull = await kimg('pull', '--all-platforms', ref);
    assert.equal(pull.status, 0, pull.stderr);
    const push = await kimg('push', ref, `${b.host}/pushed/app:v1`);
    assert.equal(push.status, 0, push.stderr);
    assert.equal(digestOf(await raw(b, 'pushed/app:v1')), pushed.digest);
    const archive = join(tmp.path, 'app.tar');
    const save = await kimg('copy', ref, `oci-archive:${archive}`);
    assert.equal(save.status, 0, save.stderr);
    const listing = await tarIndex(archive);
    // One writer: `kimg copy … oci-archive:` writes what `kimg save` writes, byte for byte.
    const saved = join(tmp.path, 'saved.tar');
    const save2 = await kimg('save', ref, '-o', saved);
    assert.equal(save2.status, 0, save2.stderr);
    assert.ok((await readFile(saved)).equals(await readFile(archive)), 'kimg save and kimg copy oci-archive: differ');
    // skopeo reads what kimg wrote, by tag.
    await skopeoCopy(`oci-archive:${archive}:v1`, `oci:${join(tmp.path, 'from-skopeo')}:v1`, { all: true }).catch(
      (err: unknown) => {
        throw new Error(`${(err as Error).message}\nindex.json: ${listing}`);
      },
    );
    // containerd names the image from io.containerd.image.name.
    if (which('containerd') !== undefined && which('ctr') !== undefined) {
      const daemon = await Containerd.start(join(tmp.path, 'containerd'), 'kimg-copy');
      try {
        await daemon.ctr(['images', 'import', '--all-platforms', archive]);
        assert.match(await daemon.ctr(['images', 'ls', '-q']), new RegExp(`${ref.replace(/[.]/g, '\\.')}`));
      } finally {
        await daemon.stop();
      }
    }
    const back = await kimg('copy', `oci-archive:${archive}:v1`, `docker://${b.host}/roundtrip/app:v1`);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(digestOf(await raw(b, 'roundtrip/app:v1')), pushed.digest);
  });

  test('a docker-archive written by skopeo copies to a registry', async () => {
    const archive = join(tmp.path, 'docker.tar');
    await skopeoCopy(`docker://${a.host}/team/app:v1`, `docker-archive:${archive}:example.com/skopeo/app:v2`, {
      src: { creds: user, certDir: a.certDir, tlsVerify: true },
    });
    const r = await kimg('copy', `docker-archive:${archive}`, `docker://${b.host}/from-docker/app:v2`, '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    const digest = (JSON.parse(r.stdout) as { digest: string }).digest;
    assert.equal(digestOf(await raw(b, 'from-docker/app:v2')), digest);
  });

  test('archives with ../, absolute paths, symlinks or devices are refused, naming the entry', async () => {
    const cases: [string, Partial<tar.Header> & { name: string }][] = [
      ['dotdot', { name: '../escape', type: 'file', size: 1 }],
      ['absolute', { name: '/etc/kimg-test', type: 'file', size: 1 }],
      ['symlink', { name: 'blobs', type: 'symlink', linkname: '/etc' }],
      ['device', { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 }],
    ];
    for (const [label, header] of cases) {
      const file = join(tmp.path, `${label}.tar`);
      const pack = tar.pack();
      if (header.type === 'file') pack.entry({ ...header }, 'x');
      else pack.entry({ ...header }, '');
      pack.finalize();
      const chunks: Buffer[] = [];
      for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c as Buffer);
      await writeFile(file, Buffer.concat(chunks));
      const r = await kimg('copy', `oci-archive:${file}`, `docker://${b.host}/hostile/${label}:v1`);
      assert.equal(r.status, 1, `${label}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(header.name.replace(/[./]/g, (c) => `\\${c}`)), `${label}: ${r.stderr}`);
    }
  });

  test('a source oci:DIR is read, never written: layouts by skopeo, umoci and ctr export stay byte for byte', async () => {
    // skopeo's layout, with `io.containerd.image.name` added as `ctr images export` writes it (an
    // entry kimg's store would migrate when opened for writing).
    const skopeoDir = join(tmp.path, 'ro-skopeo');
    await skopeoCopy(`oci:${image.layout}:latest`, `oci:${skopeoDir}:v1`, { all: true });
    const indexPath = join(skopeoDir, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    for (const m of index.manifests)
      m.annotations = { ...m.annotations, 'io.containerd.image.name': 'example.com/ro/app:v1' };
    await writeFile(indexPath, JSON.stringify(index));
    const layouts = [skopeoDir];
    if (which('umoci') !== undefined) {
      const umociDir = join(tmp.path, 'ro-umoci');
      await run('umoci', ['init', '--layout', umociDir]);
      await run('umoci', ['new', '--image', `${umociDir}:v1`]);
      layouts.push(umociDir);
    }
    for (const [i, dir] of layouts.entries()) {
      const before = await snapshotTree(dir);
      const r = await kimg('copy', `oci:${dir}:v1`, `oci:${join(tmp.path, `ro-out-${i}`)}:v1`);
      assert.equal(r.status, 0, `${dir}: ${r.stderr}`);
      assert.deepEqual(await snapshotTree(dir), before, dir);
    }
  });

  test('an OCI layout whose blob does not match its digest: an error naming the blob, nothing tagged', async () => {
    const dir = join(tmp.path, 'corrupt');
    await mkdir(dir, { recursive: true });
    await skopeoCopy(`oci:${image.layout}:latest`, `oci:${dir}:v1`, { all: true });
    const layer = image.images[0]?.layers[1];
    assert.ok(layer);
    const path = join(dir, 'blobs', 'sha256', layer.digest.slice(7));
    const bytes = await readFile(path);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const r = await kimg('copy', `oci:${dir}:v1`, `docker://${b.host}/corrupt/app:v1`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(layer.digest));
    await assert.rejects(raw(b, 'corrupt/app:v1'));
  });
});
