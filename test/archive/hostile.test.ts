// Hostile archives given to `kimg load`: entries leaving the archive (`../`, absolute paths,
// symlinks out, hard links, devices), a blob whose bytes are not its digest, a manifest naming a
// blob the archive lacks, an oversized manifest.json. Each fails naming the entry or blob; the
// store stays fsck-clean with nothing new tagged. An old-style `docker save` archive whose
// repeated layer is a symlink inside the archive still loads.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';
import { makeTempDir, type TempDir } from '../harness/index.ts';
import { kimg, storedImages } from './helpers.ts';

type Entry = { header: Partial<Header> & { name: string }; content?: Buffer };

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobName = (digest: string) => `blobs/sha256/${digest.slice(7)}`;

async function tarOf(entries: readonly Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const { header, content } of entries) {
    await new Promise<void>((resolve, reject) =>
      p.entry({ mode: 0o644, ...header }, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())),
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A one-layer OCI image: its blobs (name → bytes) and the index.json naming it `name`. */
function ociImage(name: string): { files: Map<string, Buffer>; layer: string; manifest: string } {
  const layerTar = Buffer.alloc(2048, 1);
  const layer = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha(layerTar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
        annotations: { 'io.containerd.image.name': name },
      },
    ],
  };
  const files = new Map<string, Buffer>([
    ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
    ['index.json', Buffer.from(JSON.stringify(index))],
    [blobName(sha(config)), config],
    [blobName(sha(layer)), layer],
    [blobName(sha(manifest)), manifest],
  ]);
  return { files, layer: sha(layer), manifest: sha(manifest) };
}

const filesOf = (files: Map<string, Buffer>): Entry[] =>
  [...files].map(([name, content]) => ({ header: { name }, content }));

describe('kimg load refuses hostile archives', () => {
  let tmp: TempDir;
  let store: string;
  const good = 'registry.example/team/good:v1';

  const load = async (name: string, entries: readonly Entry[]) => {
    const file = join(tmp.path, `${name}.tar`);
    await writeFile(file, await tarOf(entries));
    return kimg(['load', '--store', store, '-i', file], tmp.path);
  };

  before(async () => {
    tmp = await makeTempDir('kimg-archive-hostile-');
    store = join(tmp.path, 'store');
    const r = await load('good', filesOf(ociImage(good).files));
    assert.equal(r.status, 0, r.stderr);
  });

  after(async () => {
    // Every refusal left the store as it was: one image, every blob intact.
    const images = await storedImages(store, tmp.path);
    assert.deepEqual(
      images.map((i) => i.name),
      [good],
    );
    const fsck = await kimg(['fsck', '--store', store], tmp.path);
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
    await tmp.remove();
  });

  const image = () => ociImage('registry.example/team/bad:v1');
  const cases: [string, () => Entry[], RegExp][] = [
    [
      'a ../ entry',
      () => [...filesOf(image().files), { header: { name: '../evil' }, content: Buffer.from('x') }],
      /"\.\.\/evil"/,
    ],
    [
      'an absolute path',
      () => [{ header: { name: '/etc/evil' }, content: Buffer.from('x') }, ...filesOf(image().files)],
      /"\/etc\/evil"/,
    ],
    [
      'a symlink out of the archive',
      () => [
        ...filesOf(image().files),
        { header: { name: 'abc/layer.tar', type: 'symlink', linkname: '/etc/passwd' } },
      ],
      /"abc\/layer\.tar".*symlink/,
    ],
    [
      'a symlink climbing out',
      () => [{ header: { name: 'a/layer.tar', type: 'symlink', linkname: '../../secret' } }, ...filesOf(image().files)],
      /"a\/layer\.tar"/,
    ],
    [
      'a hard link',
      () => [...filesOf(image().files), { header: { name: 'hard', type: 'link', linkname: 'index.json' } }],
      /"hard".*link/,
    ],
    [
      'a character device',
      () => [
        ...filesOf(image().files),
        { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
      ],
      /"dev\/null".*character-device/,
    ],
    [
      'a blob whose bytes are not its digest',
      () => {
        const { files, layer } = image();
        files.set(blobName(layer), Buffer.from('not the layer'));
        return filesOf(files);
      },
      /blobs\/sha256\/[0-9a-f]{64}.*hashes to/,
    ],
    [
      'a manifest naming a blob the archive lacks',
      () => {
        const { files, layer } = image();
        files.delete(blobName(layer));
        return filesOf(files);
      },
      /lacks blob sha256:[0-9a-f]{64}/,
    ],
    [
      'a huge manifest.json',
      () => [{ header: { name: 'manifest.json' }, content: Buffer.alloc(5 << 20, 0x20) }],
      /"manifest\.json" is 5242880 bytes/,
    ],
  ];
  for (const [what, entries, message] of cases) {
    test(what, async () => {
      const r = await load(what.replace(/\W+/g, '-'), entries());
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, message);
    });
  }

  test('an old docker save archive with a repeated layer linked inside the archive loads', async () => {
    const layerTar = Buffer.alloc(1024, 7);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [sha(layerTar), sha(layerTar)] },
      }),
    );
    const configName = `${sha(config).slice(7)}.json`;
    const entries: Entry[] = [
      {
        header: { name: 'manifest.json' },
        content: Buffer.from(
          JSON.stringify([{ Config: configName, RepoTags: ['legacy:1'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]),
        ),
      },
      { header: { name: configName }, content: config },
      { header: { name: 'aaa/', type: 'directory' } },
      { header: { name: 'aaa/layer.tar' }, content: layerTar },
      { header: { name: 'bbb/layer.tar', type: 'symlink', linkname: '../aaa/layer.tar' } },
    ];
    const file = join(tmp.path, 'legacy.tar');
    await writeFile(file, await tarOf(entries));
    const other = join(tmp.path, 'legacy-store');
    const r = await kimg(['load', '--store', other, '-i', file, '-o', 'json'], tmp.path);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { name: string }).name, 'docker.io/library/legacy:1');
    const inspect = await kimg(['inspect', '--store', other, 'legacy:1', '-o', 'json'], tmp.path);
    assert.equal(inspect.status, 0, inspect.stderr);
    const manifest = (JSON.parse(inspect.stdout) as { manifest: { config: { digest: string } } }).manifest;
    assert.equal(manifest.config.digest, sha(config), 'the image ID is the config digest, as docker shows it');
  });
});
