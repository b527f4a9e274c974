// Interoperability with real tools: what kimg writes must open with skopeo and umoci, and kimg must
// read layouts skopeo writes. Skipped with a notice when the tools are not installed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { digestOf } from '../../src/digest/index.ts';
import { MediaType, type Descriptor } from '../../src/oci/index.ts';
import { ANNOTATION_REF_NAME, openStore, type Store } from '../../src/store/index.ts';

const run = promisify(execFile);
const SKOPEO = '/usr/bin/skopeo';
const UMOCI = '/usr/bin/umoci';
const haveTools = existsSync(SKOPEO) && existsSync(UMOCI);
if (!haveTools)
  console.log(
    '# skopeo or umoci not installed: store interop tests skipped (scripts/ensure-test-deps.sh installs them)',
  );

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** One regular file as a ustar entry, written by hand. */
function tarFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(content.length, 12), 124);
  header.write(octal(1_700_000_000, 12), 136);
  header.fill(' ', 148, 156);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding]);
}

function tarArchive(files: Record<string, Buffer>): Buffer {
  return Buffer.concat([...Object.entries(files).map(([name, content]) => tarFile(name, content)), Buffer.alloc(1024)]);
}

interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  files: Record<string, Buffer>;
}

/** Writes a one-layer (plus a shared layer) image into the store the way the pull engine does:
 * layers through openIngest in chunks, config and manifest through putBlob, then setImage. */
async function buildImage(
  store: Store,
  name: string,
  files: Record<string, Buffer>,
  shared: Buffer,
): Promise<BuiltImage> {
  const ownTar = tarArchive(files);
  const sharedTar = tarArchive({ 'shared.txt': shared });
  const layers: Descriptor[] = [];
  for (const tar of [sharedTar, ownTar]) {
    const gz = gzipSync(tar);
    const d: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: digestOf(gz), size: gz.length };
    const ingest = await store.openIngest(d);
    if (!ingest.alreadyPresent) {
      for (let i = 0; i < gz.length; i += 4096) await ingest.write(gz.subarray(i, i + 4096));
      await ingest.commit();
    }
    layers.push(d);
  }
  const configBytes = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [digestOf(sharedTar), digestOf(ownTar)] },
      history: [{ created_by: 'kimg test (shared)' }, { created_by: `kimg test ${name}` }],
    }),
  );
  const config: Descriptor = {
    mediaType: MediaType.OciConfig,
    digest: digestOf(configBytes),
    size: configBytes.length,
  };
  await store.putBlob(config, configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }),
  );
  const manifest: Descriptor = {
    mediaType: MediaType.OciManifest,
    digest: digestOf(manifestBytes),
    size: manifestBytes.length,
  };
  await store.putBlob(manifest, manifestBytes);
  await store.setImage(name, manifest);
  return { manifest, config, layers, files };
}

describe('OCI layout interoperability with skopeo and umoci', { skip: !haveTools }, () => {
  let dir: string;
  let store: Store;
  let first: BuiltImage;
  let second: BuiltImage;
  const shared = Buffer.from('shared between both images\n');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-interop-'));
    store = await openStore(join(dir, 'kimg'));
    first = await buildImage(
      store,
      'docker.io/library/kimgtest:1.0',
      { 'hello.txt': Buffer.from('hello from kimg\n') },
      shared,
    );
    second = await buildImage(
      store,
      'registry.example:5000/team/other:2.0',
      { 'other.txt': randomBytes(100_000) },
      shared,
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('stores a blob shared by two images once', async () => {
    assert.equal(first.layers[0]?.digest, second.layers[0]?.digest);
    const names = await readdir(join(store.root, 'blobs', 'sha256'));
    assert.equal(names.length, 7); // shared layer + 2 own layers + 2 configs + 2 manifests
    assert.equal((await store.fsck()).ok, true);
  });

  it('skopeo inspect oci:DIR:NAME (the full reference) reads what kimg wrote', async () => {
    const { stdout } = await run(SKOPEO, [
      '--insecure-policy',
      'inspect',
      `oci:${store.root}:docker.io/library/kimgtest:1.0`,
    ]);
    const inspected = JSON.parse(stdout) as { Digest: string; Layers: string[]; Os: string; Architecture: string };
    assert.equal(inspected.Digest, first.manifest.digest);
    assert.deepEqual(
      inspected.Layers,
      first.layers.map((l) => l.digest),
    );
    assert.equal(inspected.Os, 'linux');
    const raw = await run(SKOPEO, [
      '--insecure-policy',
      'inspect',
      '--raw',
      `oci:${store.root}:registry.example:5000/team/other:2.0`,
    ]);
    assert.equal(digestOf(Buffer.from(raw.stdout)), second.manifest.digest);
  });

  it('skopeo copy oci:DIR:NAME (the full reference) dir:OUT copies every blob byte for byte', async () => {
    const out = join(dir, 'dir-out');
    await run(SKOPEO, ['--insecure-policy', 'copy', `oci:${store.root}:docker.io/library/kimgtest:1.0`, `dir:${out}`]);
    const manifest = await readFile(join(out, 'manifest.json'));
    assert.equal(digestOf(manifest), first.manifest.digest);
    for (const blob of [first.config, ...first.layers]) {
      const bytes = await readFile(join(out, blob.digest.slice('sha256:'.length)));
      assert.equal(digestOf(bytes), blob.digest);
    }
  });

  it('umoci unpack --rootless --image DIR:NAME unpacks the layers', async () => {
    const bundle = join(dir, 'bundle');
    await run(UMOCI, ['unpack', '--rootless', '--image', `${store.root}:docker.io/library/kimgtest:1.0`, bundle]);
    assert.equal(await readFile(join(bundle, 'rootfs', 'hello.txt'), 'utf8'), 'hello from kimg\n');
    assert.deepEqual(await readFile(join(bundle, 'rootfs', 'shared.txt')), shared);
    const bundle2 = join(dir, 'bundle2');
    await run(UMOCI, [
      'unpack',
      '--rootless',
      '--image',
      `${store.root}:registry.example:5000/team/other:2.0`,
      bundle2,
    ]);
    assert.deepEqual(await readFile(join(bundle2, 'rootfs', 'other.txt')), second.files['other.txt']);
  });

  it('kimg reads what skopeo writes into a kimg store, and both keep working', async () => {
    const target = await openStore(join(dir, 'kimg-target'));
    const own = await buildImage(target, 'docker.io/library/mine:1', { 'mine.txt': Buffer.from('mine\n') }, shared);
    await run(SKOPEO, [
      '--insecure-policy',
      'copy',
      `oci:${store.root}:docker.io/library/kimgtest:1.0`,
      `oci:${target.root}:copied`,
    ]);

    const reopened = await openStore(target.root, { create: false });
    const record = await reopened.getImage('docker.io/library/kimgtest:copied'); // skopeo writes ref.name = tag only
    assert.equal(record?.descriptor.digest, first.manifest.digest);
    assert.equal(record?.refName, 'copied');
    assert.equal((await reopened.getImage('copied'))?.descriptor.digest, first.manifest.digest);
    assert.equal(
      (await reopened.getImage('docker.io/library/mine:1'))?.descriptor.digest,
      own.manifest.digest,
      'skopeo kept our entry',
    );
    const report = await reopened.fsck();
    assert.deepEqual(report.problems, []);
    assert.equal(report.images, 2);
    // Nothing skopeo wrote is garbage; nothing of ours was lost.
    const collected = await reopened.gc({ claimMaxAgeMs: 0 });
    assert.deepEqual(collected.removedBlobs, []);
    assert.equal(await reopened.hasBlob(first.layers[1]?.digest ?? ''), true);
    // kimg updates the index skopeo rewrote; skopeo still reads its entry and ours.
    await reopened.setImage('docker.io/library/kimgtest:again', first.manifest);
    await run(SKOPEO, ['--insecure-policy', 'inspect', `oci:${target.root}:copied`]);
    await run(SKOPEO, ['--insecure-policy', 'inspect', `oci:${target.root}:docker.io/library/kimgtest:again`]);
    await run(SKOPEO, ['--insecure-policy', 'inspect', `oci:${target.root}:docker.io/library/mine:1`]);
  });

  it('kimg opens a layout created by skopeo from scratch', async () => {
    const fresh = join(dir, 'skopeo-made');
    await run(SKOPEO, [
      '--insecure-policy',
      'copy',
      `oci:${store.root}:registry.example:5000/team/other:2.0`,
      `oci:${fresh}:v2`,
    ]);
    const opened = await openStore(fresh, { create: false });
    const images = await opened.listImages();
    assert.deepEqual(
      images.map((i) => [i.name, i.descriptor.digest, i.descriptor.annotations?.[ANNOTATION_REF_NAME]]),
      [['v2', second.manifest.digest, 'v2']],
    );
    const report = await opened.fsck();
    assert.deepEqual(report.problems, []);
    assert.equal(report.blobsChecked, 4);
    const manifest = await opened.readBlob(second.manifest.digest, 4 << 20);
    assert.equal(createHash('sha256').update(manifest).digest('hex'), second.manifest.digest.slice(7));
  });
});
