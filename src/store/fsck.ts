import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCODED_LENGTH, isKnownAlgorithm } from '../digest/index.ts';
import {
  MAX_INDEX_DEPTH,
  MAX_WALK_DESCRIPTORS,
  childrenOf,
  isDocumentMediaType,
  isIndexMediaType,
  parseManifestDocument,
  walkImage,
  type Descriptor,
  type WalkStep,
} from '../oci/index.ts';
import { errnoCode } from './errors.ts';
import { readBounded } from './fs-utils.ts';
import { hashFile } from './ingest.ts';
import { BLOBS_DIR, OCI_LAYOUT_FILE } from './paths.ts';
import { toRecord } from './layout-index.ts';
import type { LayoutReader } from './layout-reader.ts';

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

/** Re-hashes every blob, then walks every image: each blob it needs must be there, of the right
 * size and content; manifests must parse. Problems are reported, never thrown. */
export async function fsck(store: LayoutReader): Promise<FsckReport> {
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
  const seen = new Set<string>();
  for (const entry of entries) {
    const image = toRecord(entry).name ?? entry.digest;
    // Each reference: the blob is there (an index may keep only some platforms: its children
    // are optional) and of the descriptor's size.
    const onReference = (descriptor: Descriptor, step: WalkStep): void => {
      const { digest } = descriptor;
      const blob = blobs.get(digest);
      if (blob === undefined) {
        if (step.parent === undefined || !isIndexMediaType(step.parent.mediaType))
          problems.push({
            kind: 'missing-blob',
            digest,
            image,
            message: `image ${image}: blob ${digest} (${descriptor.mediaType}) is missing`,
          });
      } else if (blob.size !== descriptor.size) {
        problems.push({
          kind: 'size-mismatch',
          digest,
          image,
          message: `image ${image}: blob ${digest} is ${blob.size} bytes, the descriptor says ${descriptor.size}`,
        });
      }
    };
    // Each document once: it parses, within the nesting limit.
    const visit = async (descriptor: Descriptor, step: WalkStep): Promise<readonly Descriptor[]> => {
      const { digest } = descriptor;
      if (blobs.get(digest)?.good !== true || !isDocumentMediaType(descriptor.mediaType)) return [];
      if (step.depth > MAX_INDEX_DEPTH) {
        problems.push({
          kind: 'invalid-manifest',
          digest,
          image,
          message: `image ${image}: indexes nested deeper than ${MAX_INDEX_DEPTH} levels`,
        });
        return [];
      }
      try {
        const bytes = await store.readBlob(digest, store.maxManifestBytes);
        const document = parseManifestDocument(bytes, {
          descriptorMediaType: descriptor.mediaType,
          what: `image ${image}: manifest ${digest}`,
          maxManifests: 1 << 20,
          maxLayers: 1 << 20,
        });
        return childrenOf(document);
      } catch (err) {
        problems.push({ kind: 'invalid-manifest', digest, image, message: (err as Error).message });
        return [];
      }
    };
    // Each digest is read once: the work is linear in the bytes stored, so the walk goes to the
    // end and an image over the bound pull applies is reported rather than cut short.
    const { references } = await walkImage([entry], visit, {
      seen,
      onReference,
      maxDepth: Infinity,
      maxDescriptors: Infinity,
    });
    if (references > MAX_WALK_DESCRIPTORS)
      problems.push({
        kind: 'invalid-manifest',
        digest: entry.digest,
        image,
        message: `image ${image}: the image graph has more than ${MAX_WALK_DESCRIPTORS} references; kimg refuses to pull or inspect it`,
      });
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
