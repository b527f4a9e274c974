import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MediaType } from './media-types.ts';
import type { Descriptor, ManifestDocument } from './types.ts';
import {
  MAX_INDEX_DEPTH,
  MAX_WALK_DESCRIPTORS,
  WalkLimitError,
  childrenOf,
  forPlatform,
  walkImage,
  type WalkStep,
} from './walk.ts';

const digestOf = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const blob = (name: string, mediaType: string = MediaType.OciLayer): Descriptor => ({
  mediaType,
  digest: digestOf(name),
  size: name.length,
});

/** An in-memory graph: digest → document. */
class Graph {
  readonly documents = new Map<string, ManifestDocument>();
  reads = 0;

  manifest(name: string, layers: readonly Descriptor[] = [blob(`${name}-layer`)]): Descriptor {
    const config = blob(`${name}-config`, MediaType.OciConfig);
    const descriptor = blob(name, MediaType.OciManifest);
    this.documents.set(descriptor.digest, {
      kind: 'manifest',
      mediaType: MediaType.OciManifest,
      manifest: { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers },
    });
    return descriptor;
  }

  index(name: string, manifests: readonly Descriptor[]): Descriptor {
    const descriptor = blob(name, MediaType.OciIndex);
    this.documents.set(descriptor.digest, {
      kind: 'index',
      mediaType: MediaType.OciIndex,
      index: { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests },
    });
    return descriptor;
  }

  /** A visitor reading documents from the graph and descending into all their children. */
  visit = async (descriptor: Descriptor): Promise<readonly Descriptor[]> => {
    const document = this.documents.get(descriptor.digest);
    if (document === undefined) return [];
    this.reads++;
    return childrenOf(document);
  };
}

describe('childrenOf', () => {
  it("gives an index's manifests, a manifest's config and layers, and the subject only when asked", () => {
    const subject = blob('subject', MediaType.OciManifest);
    const config = blob('config', MediaType.OciConfig);
    const layer = blob('layer');
    const manifest: ManifestDocument = {
      kind: 'manifest',
      mediaType: MediaType.OciManifest,
      manifest: { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer], subject },
    };
    assert.deepEqual(childrenOf(manifest), [config, layer]);
    assert.deepEqual(childrenOf(manifest, { subject: true }), [config, layer, subject]);
    const index: ManifestDocument = {
      kind: 'index',
      mediaType: MediaType.OciIndex,
      index: { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [subject] },
    };
    assert.deepEqual(childrenOf(index), [subject]);
  });
});

describe('forPlatform', () => {
  it("narrows an index to its best child, [] when none matches, and keeps a manifest's children", () => {
    const amd64 = { ...blob('amd64', MediaType.OciManifest), platform: { os: 'linux', architecture: 'amd64' } };
    const arm64 = { ...blob('arm64', MediaType.OciManifest), platform: { os: 'linux', architecture: 'arm64' } };
    const index: ManifestDocument = {
      kind: 'index',
      mediaType: MediaType.OciIndex,
      index: { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [amd64, arm64] },
    };
    assert.deepEqual(forPlatform(childrenOf, { os: 'linux', architecture: 'arm64' })(index), [arm64]);
    assert.deepEqual(forPlatform(childrenOf, { os: 'windows', architecture: 'amd64' })(index), []);
    const graph = new Graph();
    const manifest = graph.documents.get(graph.manifest('m').digest);
    assert.ok(manifest !== undefined);
    assert.equal(forPlatform(childrenOf, { os: 'linux', architecture: 'arm64' })(manifest).length, 2);
  });
});

describe('walkImage', () => {
  it('visits depth-first in document order, each digest once, and reports every reference', async () => {
    const graph = new Graph();
    const shared = blob('shared-layer');
    const a = graph.manifest('a', [shared]);
    const b = graph.manifest('b', [shared]);
    const top = graph.index('top', [a, b, a]);
    const order: string[] = [];
    const references: string[] = [];
    const names = new Map([top, a, b, shared].map((d, i) => [d.digest, ['top', 'a', 'b', 'shared'][i]]));
    const label = (d: Descriptor) => names.get(d.digest) ?? (d.mediaType === MediaType.OciConfig ? 'config' : '?');
    const stats = await walkImage(
      [top],
      async (d) => {
        order.push(label(d));
        return graph.visit(d);
      },
      { onReference: (d) => void references.push(label(d)) },
    );
    assert.deepEqual(order, ['top', 'a', 'config', 'shared', 'b', 'config']);
    assert.deepEqual(references, ['top', 'a', 'config', 'shared', 'b', 'config', 'shared', 'a']);
    assert.deepEqual(stats, { references: 8, visited: 6 });
  });

  it('breadth-first visits level by level', async () => {
    const graph = new Graph();
    const top = graph.index('top', [graph.manifest('a'), graph.manifest('b')]);
    const depths: number[] = [];
    await walkImage(
      [top],
      async (d, step) => {
        depths.push(step.depth);
        return graph.visit(d);
      },
      { order: 'breadth-first' },
    );
    assert.deepEqual(depths, [0, 1, 1, 2, 2, 2, 2]);
  });

  it('walks three nested indexes of 1,024 entries each (six blobs) in about 3,000 references', async () => {
    const graph = new Graph();
    const manifest = graph.manifest('m');
    const c = graph.index(
      'c',
      Array.from({ length: 1024 }, () => manifest),
    );
    const b = graph.index(
      'b',
      Array.from({ length: 1024 }, () => c),
    );
    const a = graph.index(
      'a',
      Array.from({ length: 1024 }, () => b),
    );
    const stats = await walkImage([a], graph.visit);
    assert.equal(graph.reads, 4);
    assert.deepEqual(stats, { references: 1 + 3 * 1024 + 2, visited: 6 });
  });

  it(`refuses a graph of more than ${MAX_WALK_DESCRIPTORS} references, and a lower bound when given`, async () => {
    const graph = new Graph();
    const manifest = graph.manifest('m');
    // 65 distinct indexes of 1,024 entries: 66,625 references from 67 documents.
    const wide = Array.from({ length: 65 }, (_, i) =>
      graph.index(
        `wide-${i}`,
        Array.from({ length: 1024 }, () => manifest),
      ),
    );
    const top = graph.index('top', wide);
    const err = await walkImage([top], graph.visit).then(
      () => assert.fail('the walk finished'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WalkLimitError, String(err));
    assert.equal(err.limit, 'descriptors');
    assert.equal(err.code, 'ErrManifestInvalid');
    assert.match(err.message, /more than 65536 references/);
    assert.ok(graph.reads <= 66, `${graph.reads} documents read`);

    await assert.rejects(walkImage([wide[0] as Descriptor], graph.visit, { maxDescriptors: 100 }), WalkLimitError);
  });

  it(`allows documents ${MAX_INDEX_DEPTH} levels down and refuses one level more`, async () => {
    const nest = (graph: Graph, levels: number): Descriptor => {
      let at = graph.manifest('m');
      for (let i = 0; i < levels; i++) at = graph.index(`i${i}`, [at]);
      return at;
    };
    const ok = new Graph();
    const stats = await walkImage([nest(ok, MAX_INDEX_DEPTH)], ok.visit);
    assert.equal(stats.visited, MAX_INDEX_DEPTH + 3);

    const deep = new Graph();
    await assert.rejects(walkImage([nest(deep, MAX_INDEX_DEPTH + 1)], deep.visit), (err: unknown) => {
      assert.ok(err instanceof WalkLimitError);
      assert.equal(err.limit, 'depth');
      assert.match(err.message, /nested deeper than 8 levels/);
      return true;
    });

    const reported: WalkStep[] = [];
    const report = new Graph();
    await walkImage([nest(report, MAX_INDEX_DEPTH + 1)], report.visit, {
      onTooDeep: (_d, step) => void reported.push(step),
    });
    assert.deepEqual(
      reported.map((s) => s.depth),
      [MAX_INDEX_DEPTH + 1],
    );
  });

  it('shares `seen` across walks so a second image is not walked again', async () => {
    const graph = new Graph();
    const m = graph.manifest('m');
    const seen = new Set<string>();
    await walkImage([graph.index('one', [m])], graph.visit, { seen });
    const before = graph.reads;
    await walkImage([graph.index('two', [m])], graph.visit, { seen });
    assert.equal(graph.reads, before + 1);
  });
});
