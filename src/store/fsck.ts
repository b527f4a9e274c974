import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCODED_LENGTH, isKnownAlgorithm } from '../digest/index.ts';
import { isIndexMediaType, isManifestMediaType, parseManifestDocument, type Descriptor } from '../oci/index.ts';
import { errnoCode } from './errors.ts';
import { readBounded } from './fs-utils.ts';
import { hashFile } from './ingest.ts';
import { BLOBS_DIR, OCI_LAYOUT_FILE } from './paths.ts';
import type { LayoutStore } from './store.ts';

export type FsckProblemKind =
  | 'invalid-layout'
  | 'invalid-index'
  | 'not-a-regular-file'
  | 'digest-mismatch'
  | 'unreadable'
  | 'missing-blob'
  | 'size-mismatch'
  | 'invalid-manifest';

export interface FsckProblem {
  readonly kind: FsckProblemKind;
  readonly message: string;
  readonly path?: string;
  readonly digest?: string;
  /** The image (full name, else ref.name, else digest) whose blob this is. */
  readonly image?: string;
}

export interface FsckReport {
  readonly ok: boolean;
  readonly root: string;
  readonly blobsChecked: number;
  readonly bytesChecked: number;
  readonly images: number;
  readonly problems: readonly FsckProblem[];
}

const MAX_DEPTH = 8;

/** Re-hashes every blob, then walks every image: each blob it needs must be there, of the right
 * size and content; manifests must parse. Problems are reported, never thrown. */
export async function fsck(store: LayoutStore): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  const root = store.root;

  const layoutPath = join(root, OCI_LAYOUT_FILE);
  try {
    const version = (
      JSON.parse((await readBounded(layoutPath, 64 * 1024)).toString('utf8')) as { imageLayoutVersion?: unknown }
    ).imageLayoutVersion;
    if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
      problems.push({
        kind: 'invalid-layout',
        path: layoutPath,
        message: `${layoutPath}: unsupported imageLayoutVersion ${JSON.stringify(version)}`,
      });
    }
  } catch (err) {
    problems.push({ kind: 'invalid-layout', path: layoutPath, message: `${layoutPath}: ${(err as Error).message}` });
  }

  // Every blob file: content must hash to its name.
  const blobs = new Map<string, { size: number; good: boolean }>();
  let blobsChecked = 0;
  let bytesChecked = 0;
  const blobsDir = join(root, BLOBS_DIR);
  const blobsStat = await lstat(blobsDir).catch(() => undefined);
  if (blobsStat !== undefined && !blobsStat.isDirectory()) {
    problems.push({
      kind: 'not-a-regular-file',
      path: blobsDir,
      message: `${blobsDir} is a symlink or not a directory (refused)`,
    });
  } else {
    for (const algorithm of await listDir(blobsDir)) {
      if (!isKnownAlgorithm(algorithm)) continue;
      const dir = join(blobsDir, algorithm);
      if (!(await lstat(dir)).isDirectory()) {
        problems.push({
          kind: 'not-a-regular-file',
          path: dir,
          message: `${dir} is a symlink or not a directory (refused)`,
        });
        continue;
      }
      for (const name of await listDir(dir)) {
        if (name.length !== ENCODED_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(name)) continue; // readers ignore unknown files
        const digest = `${algorithm}:${name}`;
        const path = join(dir, name);
        const entry = await lstat(path);
        if (!entry.isFile()) {
          problems.push({
            kind: 'not-a-regular-file',
            path,
            digest,
            message: `blob ${digest} at ${path} is a symlink or not a regular file`,
          });
          continue;
        }
        blobsChecked++;
        try {
          const { hex, bytes } = await hashFile(path, algorithm);
          bytesChecked += bytes;
          const good = hex === name;
          blobs.set(digest, { size: bytes, good });
          if (!good) {
            problems.push({
              kind: 'digest-mismatch',
              path,
              digest,
              message: `blob ${digest} at ${path} holds content that hashes to ${algorithm}:${hex}`,
            });
          }
        } catch (err) {
          blobs.set(digest, { size: entry.size, good: false });
          problems.push({
            kind: 'unreadable',
            path,
            digest,
            message: `blob ${digest} at ${path}: ${(err as Error).message}`,
          });
        }
      }
    }
  }

  // Every image: what it needs is present, sized right, and its manifests parse.
  let entries: readonly Descriptor[] = [];
  try {
    entries = (await store.readIndex()).manifests;
  } catch (err) {
    problems.push({ kind: 'invalid-index', path: store.indexPath, message: (err as Error).message });
  }
  const visited = new Set<string>();
  const walk = async (descriptor: Descriptor, image: string, depth: number, required: boolean): Promise<void> => {
    const { digest } = descriptor;
    const blob = blobs.get(digest);
    if (blob === undefined) {
      // An index may keep only some platforms' manifests: its children are optional.
      if (required)
        problems.push({
          kind: 'missing-blob',
          digest,
          image,
          message: `image ${image}: blob ${digest} (${descriptor.mediaType}) is missing`,
        });
      return;
    }
    if (blob.size !== descriptor.size) {
      problems.push({
        kind: 'size-mismatch',
        digest,
        image,
        message: `image ${image}: blob ${digest} is ${blob.size} bytes, the descriptor says ${descriptor.size}`,
      });
    }
    const isIndex = isIndexMediaType(descriptor.mediaType);
    if (!blob.good || (!isIndex && !isManifestMediaType(descriptor.mediaType))) return;
    if (visited.has(digest)) return;
    visited.add(digest);
    if (depth >= MAX_DEPTH) {
      problems.push({
        kind: 'invalid-manifest',
        digest,
        image,
        message: `image ${image}: indexes nested deeper than ${MAX_DEPTH}`,
      });
      return;
    }
    try {
      const bytes = await store.readBlob(digest, store.maxManifestBytes);
      const document = parseManifestDocument(bytes, {
        descriptorMediaType: descriptor.mediaType,
        what: `image ${image}: manifest ${digest}`,
        maxManifests: 1 << 20,
        maxLayers: 1 << 20,
      });
      if (document.kind === 'index') {
        for (const child of document.index.manifests) await walk(child, image, depth + 1, false);
      } else {
        for (const child of [document.manifest.config, ...document.manifest.layers])
          await walk(child, image, depth + 1, true);
      }
    } catch (err) {
      problems.push({ kind: 'invalid-manifest', digest, image, message: (err as Error).message });
    }
  };
  for (const entry of entries) {
    const image =
      entry.annotations?.['io.containerd.image.name'] ??
      entry.annotations?.['org.opencontainers.image.ref.name'] ??
      entry.digest;
    await walk(entry, image, 0, true);
  }

  return { ok: problems.length === 0, root, blobsChecked, bytesChecked, images: entries.length, problems };
}

async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}
