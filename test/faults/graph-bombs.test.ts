// Image graphs small on disk but huge to walk, against the real Distribution registry and the
// real CLI: three nested indexes of 1,024 entries each (six blobs), a graph wider than the walk
// bound, and nesting at and beyond the one depth limit. Every command finishes with a result or
// an error naming the image, and one such image never stops the store serving the others.
// No timings are asserted: the per-test timeouts stand for "not hours".
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StoreImageService } from '../../src/kubelet/store-image-service.ts';
import { MAX_INDEX_DEPTH, MAX_WALK_DESCRIPTORS, formatPlatform, hostPlatform } from '../../src/oci/index.ts';
import { Puller, describeStoredImage } from '../../src/pull/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { runCli, type CliResult } from '../cli/run-cli.ts';
import { isolatedEnv, kimgInProcess } from './helpers.ts';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, putManifest, uploadBlob } from './hostile.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
/** `-o json` output: one JSON object per line. */
const jsonLines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
const platform = hostPlatform();

interface Doc {
  readonly descriptor: { mediaType: string; digest: string; size: number };
  readonly bytes: Buffer;
}

const doc = (document: unknown, mediaType: string): Doc => {
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes };
};

const indexOf = (children: readonly Doc[], annotation?: string): Doc =>
  doc(
    {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({ ...c.descriptor, platform })),
      ...(annotation !== undefined && { annotations: { 'org.example.n': annotation } }),
    },
    OCI_INDEX,
  );

/** A hostile graph pushed to the registry (children first, as a registry requires) and kept in
 * memory to plant into a store as another tool would write it. */
class Graph {
  readonly docs: Doc[] = [];
  readonly blobs: { descriptor: Doc['descriptor']; bytes: Buffer }[] = [];
  constructor(
    readonly repo: string,
    readonly top: Doc,
  ) {}
}

async function buildGraph(
  registry: RunningRegistry,
  repo: string,
  shape: (manifest: Doc) => Doc[],
  seed: string,
): Promise<Graph> {
  const layerBytes = Buffer.from(`layer of ${seed}`);
  const configBytes = Buffer.from(
    JSON.stringify({ architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = { mediaType: OCI_LAYER, ...(await uploadBlob(registry.url, repo, layerBytes)) };
  const config = { mediaType: OCI_CONFIG, ...(await uploadBlob(registry.url, repo, configBytes)) };
  const manifest = doc({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }, OCI_MANIFEST);
  const docs = [manifest, ...shape(manifest)];
  for (const d of docs)
    await putManifest(registry.url, repo, d.descriptor.digest, JSON.parse(d.bytes.toString()), d.descriptor.mediaType);
  const top = docs[docs.length - 1] as Doc;
  await putManifest(registry.url, repo, 'v1', JSON.parse(top.bytes.toString()), top.descriptor.mediaType);
  const graph = new Graph(repo, top);
  graph.docs.push(...docs);
  graph.blobs.push({ descriptor: layer, bytes: layerBytes }, { descriptor: config, bytes: configBytes });
  return graph;
}

/** Three nested indexes of 1,024 entries, each entry the same child: six blobs, 1,024³ paths. */
const bomb = (manifest: Doc): Doc[] => {
  const c = indexOf(Array.from({ length: 1024 }, () => manifest));
  const b = indexOf(Array.from({ length: 1024 }, () => c));
  const a = indexOf(Array.from({ length: 1024 }, () => b));
  return [c, b, a];
};

/** 65 distinct indexes of 1,024 entries under one: 66,626 references, past the walk bound. */
const wide = (manifest: Doc): Doc[] => {
  const middles = Array.from({ length: 65 }, (_, i) =>
    indexOf(
      Array.from({ length: 1024 }, () => manifest),
      String(i),
    ),
  );
  return [...middles, indexOf(middles)];
};

/** `levels` indexes, each holding the next: the manifest sits `levels` levels down. */
const nested =
  (levels: number) =>
  (manifest: Doc): Doc[] => {
    const out: Doc[] = [];
    let at = manifest;
    for (let i = 0; i < levels; i++) out.push((at = indexOf([at], `level-${i}`)));
    return out;
  };

/** Writes a graph into a store as another tool could (kimg's pull would refuse some of them). */
async function plant(store: Store, graph: Graph, name: string): Promise<void> {
  for (const blob of graph.blobs) await store.putBlob(blob.descriptor, blob.bytes);
  for (const d of graph.docs) await store.putBlob(d.descriptor, d.bytes);
  await store.setImage(name, graph.top.descriptor);
}

describe('image graphs small on disk but huge to walk', { skip, timeout: 300_000 }, () => {
  let tmp: TempDir;
  let registry: RunningRegistry;
  let good: BuiltImage;
  let graphs: { bomb: Graph; wide: Graph; deepest: Graph; tooDeep: Graph };
  let n = 0;
  const ref = (repo: string) => `${registry.host}/${repo}:v1`;
  /** The CLI in this process, or with `spawn` as a child process (the real binary, from source). */
  const kimg = (store: string, args: readonly string[], spawn = false): Promise<CliResult> =>
    spawn
      ? runCli(['--store', store, ...args], { env: isolatedEnv(tmp.path) })
      : kimgInProcess(['--store', store, ...args], isolatedEnv(tmp.path));
  const storeDir = () => join(tmp.path, `store-${n++}`);

  before(async () => {
    tmp = await makeTempDir('kimg-graph-bombs-');
    registry = await startRegistry();
    good = await buildImage({ layers: [4_000], seed: 'graph-bombs-good' });
    await pushImage(good, registry, 'good/app:v1');
    graphs = {
      bomb: await buildGraph(registry, 'bomb/nested', bomb, 'bomb'),
      wide: await buildGraph(registry, 'bomb/wide', wide, 'wide'),
      deepest: await buildGraph(registry, 'bomb/deepest', nested(MAX_INDEX_DEPTH), 'deepest'),
      tooDeep: await buildGraph(registry, 'bomb/too-deep', nested(MAX_INDEX_DEPTH + 1), 'too-deep'),
    };
  });

  after(async () => {
    await registry?.stop();
    await Promise.all([good?.remove(), tmp?.remove()]);
  });

  test('three nested indexes of 1,024 entries: pull, pull --all-platforms, images, inspect, gc, fsck and ensure --dry-run finish, beside another image', async () => {
    const dir = storeDir();
    assert.equal(graphs.bomb.docs.length + graphs.bomb.blobs.length, 6, 'six blobs');
    const puller = new Puller({ store: dir });
    try {
      const pulled = await puller.pull(ref('bomb/nested'));
      assert.equal(pulled.manifests.length, 1);
      assert.equal(pulled.blobs, 2);
    } finally {
      await puller.close();
    }
    const all = await kimg(dir, ['pull', '--all-platforms', ref('bomb/nested')], true);
    assert.equal(all.status, 0, all.stderr);
    const pulledGood = await kimg(dir, ['pull', ref('good/app')]);
    assert.equal(pulledGood.status, 0, pulledGood.stderr);

    const images = await kimg(dir, ['images', '-o', 'json'], true);
    assert.equal(images.status, 0, images.stderr);
    const listed = jsonLines(images.stdout) as { name: string; platforms: string[] }[];
    assert.deepEqual(listed.map((i) => i.name).sort(), [ref('bomb/nested'), ref('good/app')].sort());
    assert.deepEqual(listed.find((i) => i.name === ref('bomb/nested'))?.platforms, [formatPlatform(platform)]);

    const inspected = await kimg(dir, ['inspect', ref('bomb/nested')]);
    assert.equal(inspected.status, 0, inspected.stderr);
    const manifest = await kimg(dir, ['manifest', '--platform', formatPlatform(platform), ref('bomb/nested')]);
    assert.equal(manifest.status, 0, manifest.stderr);
    assert.equal(JSON.parse(manifest.stdout).mediaType, OCI_MANIFEST);
    const collected = await kimg(dir, ['gc']);
    assert.equal(collected.status, 0, collected.stderr);
    assert.match(collected.stdout, /Removed 0 blobs/);
    const checked = await kimg(dir, ['fsck']);
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);

    const pod = join(tmp.path, 'bomb-pod.yaml');
    await writeFile(
      pod,
      `kind: Pod\nmetadata: {name: bomb}\nspec:\n  containers:\n  - {name: a, image: ${ref('bomb/nested')}}\n  - {name: b, image: ${ref('good/app')}}\n`,
    );
    const ensured = await kimg(
      dir,
      ['ensure', '--dry-run', '--root-dir', join(tmp.path, 'root-bomb'), '-f', pod, '--no-node-credentials'],
      true,
    );
    assert.equal(ensured.status, 0, ensured.stdout + ensured.stderr);

    // The library, as the kubelet adapter and the store use it.
    const store = await openStore(dir);
    const described = await describeStoredImage(store, await store.requireImage(ref('bomb/nested')));
    assert.equal(described.images.length, 1);
    const service = new StoreImageService({ store });
    const resolved = await service.resolveImage(ref('bomb/nested'), undefined, { platform: formatPlatform(platform) });
    assert.equal(resolved.digest, graphs.bomb.top.descriptor.digest);
    assert.equal((await service.listImages()).length, 2);
    assert.equal((await store.fsck()).ok, true);
    assert.deepEqual((await store.gc()).overLimitImages, []);
  });

  test(`a graph wider than ${MAX_WALK_DESCRIPTORS} references: pull --all-platforms refuses it naming the image, gc removes what it left, one platform pulls`, async () => {
    const dir = storeDir();
    const all = await kimg(dir, ['pull', '--all-platforms', ref('bomb/wide')], true);
    assert.equal(all.status, 1);
    assert.match(all.stderr, new RegExp(`${ref('bomb/wide')}.*more than ${MAX_WALK_DESCRIPTORS} references`));
    // What the refused pull stored on the way is garbage: no image reaches it.
    const collected = await kimg(dir, ['gc']);
    assert.equal(collected.status, 0, collected.stderr);
    assert.match(collected.stdout, /Removed [1-9]\d* blobs/);
    const one = await kimg(dir, ['pull', ref('bomb/wide')]);
    assert.equal(one.status, 0, one.stderr);
    for (const args of [['fsck'], ['inspect', ref('bomb/wide')], ['images']]) {
      const result = await kimg(dir, args);
      assert.equal(result.status, 0, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
    }
  });

  test(`one limit: ${MAX_INDEX_DEPTH} nested indexes pull, collect and check; one more is refused by pull, reported by gc and fsck, which go on with the rest`, async () => {
    const dir = storeDir();
    const deepest = await kimg(dir, ['pull', ref('bomb/deepest')]);
    assert.equal(deepest.status, 0, deepest.stderr);
    const tooDeep = await kimg(dir, ['pull', ref('bomb/too-deep')]);
    assert.equal(tooDeep.status, 1);
    assert.match(tooDeep.stderr, new RegExp(`${ref('bomb/too-deep')}.*nested deeper than ${MAX_INDEX_DEPTH} levels`));
    // The remote look-ups follow the same limit.
    const platformArgs = ['--platform', formatPlatform(platform)];
    assert.equal((await kimg(dir, ['manifest', ...platformArgs, ref('bomb/deepest')])).status, 0);
    const remote = await kimg(dir, ['manifest', ...platformArgs, ref('bomb/too-deep')]);
    assert.equal(remote.status, 1);
    assert.match(remote.stderr, new RegExp(`${ref('bomb/too-deep')}.*nested deeper than ${MAX_INDEX_DEPTH} levels`));
    assert.equal((await kimg(dir, ['pull', ref('good/app')])).status, 0);
    let collected = await kimg(dir, ['gc']);
    assert.equal(collected.status, 0, collected.stderr);
    assert.equal(collected.stderr, '');
    const checked = await kimg(dir, ['fsck']);
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);

    // The same image written by another tool.
    const store = await openStore(dir);
    await plant(store, graphs.tooDeep, ref('bomb/too-deep'));
    const report = await kimg(dir, ['fsck', '-o', 'json']);
    assert.equal(report.status, 1);
    const problems = (JSON.parse(report.stdout) as { problems: { image?: string; message: string }[] }).problems;
    assert.deepEqual(
      problems.map((p) => p.image),
      [ref('bomb/too-deep')],
    );
    assert.match(problems[0]?.message ?? '', /nested deeper than 8 levels/);
    collected = await kimg(dir, ['gc']);
    assert.equal(collected.status, 0, collected.stderr);
    assert.match(collected.stderr, new RegExp(`${ref('bomb/too-deep')}.*nested deeper`));
    assert.match(collected.stdout, /Removed 0 blobs/, 'what a too-deep image reaches is kept');
    for (const image of [ref('good/app'), ref('bomb/deepest')]) {
      const inspected = await kimg(dir, ['inspect', image]);
      assert.equal(inspected.status, 0, inspected.stderr);
    }
  });

  test('an image over the work bound written by another tool: images, inspect, gc, fsck and ensure report it and serve the others; gc keeps what it reaches', async () => {
    const dir = storeDir();
    assert.equal((await kimg(dir, ['pull', ref('good/app')])).status, 0);
    const store = await openStore(dir);
    await plant(store, graphs.wide, ref('bomb/wide'));

    const images = await kimg(dir, ['images', '-o', 'json'], true);
    assert.equal(images.status, 0, images.stderr);
    const listed = jsonLines(images.stdout) as { name: string; error?: string }[];
    assert.deepEqual(listed.map((i) => i.name).sort(), [ref('bomb/wide'), ref('good/app')].sort());
    assert.match(listed.find((i) => i.name === ref('bomb/wide'))?.error ?? '', /more than 65536 references/);
    assert.match(images.stderr, new RegExp(ref('bomb/wide')));

    const inspected = await kimg(dir, ['inspect', ref('bomb/wide')]);
    assert.equal(inspected.status, 1);
    assert.match(inspected.stderr, new RegExp(`${ref('bomb/wide')}.*more than 65536 references`));
    assert.equal((await kimg(dir, ['inspect', ref('good/app')])).status, 0);

    const checked = await kimg(dir, ['fsck', '-o', 'json']);
    assert.equal(checked.status, 1);
    const problems = (JSON.parse(checked.stdout) as { problems: { image?: string; message: string }[] }).problems;
    assert.deepEqual(
      problems.map((p) => p.image),
      [ref('bomb/wide')],
    );

    const collected = await kimg(dir, ['gc']);
    assert.equal(collected.status, 0, collected.stderr);
    assert.match(collected.stderr, new RegExp(`${ref('bomb/wide')}.*more than 65536 references`));
    assert.match(collected.stdout, /Removed 0 blobs/, 'what an image over the bound reaches is kept');
    assert.equal((await kimg(dir, ['inspect', ref('good/app')])).status, 0, 'gc kept the other image');

    const pod = join(tmp.path, 'good-pod.yaml');
    await writeFile(
      pod,
      `kind: Pod\nmetadata: {name: good}\nspec:\n  containers: [{name: a, image: ${ref('good/app')}}]\n`,
    );
    const ensured = await kimg(dir, [
      'ensure',
      '--dry-run',
      '--root-dir',
      join(tmp.path, 'root-wide'),
      '-f',
      pod,
      '--no-node-credentials',
    ]);
    assert.equal(ensured.status, 0, ensured.stdout + ensured.stderr);

    // The kubelet image GC over the same store, as `kimg gc --thresholds` runs it.
    const imageGc = await kimg(dir, [
      'gc',
      '--thresholds',
      '--dry-run',
      '--root-dir',
      join(tmp.path, 'root-wide'),
      '--minimum-image-gc-age',
      '0s',
      '--capacity',
      '1000000',
      '--available',
      '100000',
    ]);
    assert.match(imageGc.stdout, /Image filesystem: /, imageGc.stdout + imageGc.stderr);
    const service = new StoreImageService({ store });
    assert.equal((await service.listImages()).length, 2, 'the kubelet image GC still sees every image');
    await assert.rejects(
      describeStoredImage(store, await store.requireImage(ref('bomb/wide'))),
      (err: unknown) => err instanceof Error && /more than 65536 references/.test(err.message),
    );
  });
});
