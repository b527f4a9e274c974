import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCODED_LENGTH, isKnownAlgorithm } from '../digest/index.ts';
import {
  MAX_INDEX_DEPTH,
  MAX_WALK_DESCRIPTORS,
  childrenOf,
  isDocumentMediaType,
  parseManifestDocument,
  walkImage,
  type Descriptor,
  type ManifestDocument,
  type WalkStep,
} from '../oci/index.ts';
import { liveClaims } from './claims.ts';
import { errnoCode } from './errors.ts';
import { tempNamePid, unlinkIfPresent } from './fs-utils.ts';
import { liveHolder, tryAcquireLock } from './lock.ts';
import { BLOBS_DIR } from './paths.ts';
import { toRecord } from './layout-index.ts';
import type { LayoutReader } from './layout-reader.ts';

export interface GcOptions {
  /** Partial downloads untouched for longer than this are removed; default 24 h. */
  readonly ingestMaxAgeMs?: number;
  /** Blobs written or found present by a live process within this long are kept even when no
   * image reaches them yet (a pull between commit and setImage); default 1 h, 0 ignores them. */
  readonly claimMaxAgeMs?: number;
  /** Report what would be removed, remove nothing. */
  readonly dryRun?: boolean;
  /** Image entries (by top-level digest) to count as removed: a dry run that previews removing
   * images first (`kimg gc --thresholds --dry-run`) reports the blobs that would then go too.
   * Ignored unless `dryRun`. */
  readonly assumeRemoved?: readonly string[];
}

export interface GcResult {
  readonly dryRun: boolean;
  /** Blobs removed (or, in a dry run, that would be). */
  readonly removedBlobs: readonly { readonly digest: string; readonly size: number }[];
  readonly reclaimedBytes: number;
  /** Blobs kept because an image reaches them. */
  readonly keptBlobs: number;
  /** Unreferenced blobs kept because a live process claimed them recently. */
  readonly claimedBlobs: readonly string[];
  /** Files removed from `ingest/` (stale partials, their metadata, leftovers of dead processes). */
  readonly removedIngests: readonly string[];
  /** Images kimg would refuse to pull or inspect (nested too deep, a graph over the walk bound):
   * reported, not refused; everything they reach is kept. `kimg rmi` them. */
  readonly overLimitImages: readonly OverLimitImage[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const INGEST_FILE = /^(sha256|sha384|sha512)-([0-9a-f]+)\.(data|json|lock)$/;

/** An image kimg would refuse to pull: indexes nested too deep, or a graph over the walk bound. */
export interface OverLimitImage {
  readonly image: string;
  readonly digest: string;
  readonly message: string;
}

/** What the images reach, and the images over the walk limits. */
export interface Reachable {
  readonly marked: Set<string>;
  readonly overLimit: OverLimitImage[];
}

/**
 * Every digest an image reaches: entries, child manifests, configs, layers, subjects. Each digest
 * is read once, so the work is linear in the bytes stored, however the graph is shaped; the walk
 * limits that pull applies are checked and an image over them is reported in `overLimit`, but
 * gc still follows it to the end: it keeps what such an image reaches rather than collect it.
 */
export async function markReachable(
  layout: LayoutReader,
  assumeRemoved: ReadonlySet<string> = new Set(),
): Promise<Reachable> {
  const marked = new Set<string>();
  const overLimit: OverLimitImage[] = [];
  const seen = new Set<string>();
  for (const entry of (await layout.readIndex()).manifests) {
    if (assumeRemoved.has(entry.digest)) continue;
    const image = toRecord(entry).name ?? entry.digest;
    let tooDeep: Descriptor | undefined;
    const visit = async (descriptor: Descriptor, step: WalkStep): Promise<readonly Descriptor[]> => {
      marked.add(descriptor.digest);
      if (!isDocumentMediaType(descriptor.mediaType)) return [];
      if (!(await layout.hasBlob(descriptor.digest))) return []; // e.g. other platforms of an index
      if (step.depth > MAX_INDEX_DEPTH) tooDeep ??= descriptor;
      return childrenOf(await readDocument(layout, descriptor, image), { subject: true });
    };
    const { references } = await walkImage([entry], visit, { seen, maxDepth: Infinity, maxDescriptors: Infinity });
    if (tooDeep !== undefined)
      overLimit.push({
        image,
        digest: tooDeep.digest,
        message: `image ${image}: indexes nested deeper than ${MAX_INDEX_DEPTH} levels; kept, but kimg refuses to pull it`,
      });
    else if (references > MAX_WALK_DESCRIPTORS)
      overLimit.push({
        image,
        digest: entry.digest,
        message: `image ${image}: the image graph has more than ${MAX_WALK_DESCRIPTORS} references; kept, but kimg refuses to walk it`,
      });
  }
  return { marked, overLimit };
}

/** A stored document, parsed; without it gc cannot tell what is garbage, so it refuses. */
async function readDocument(layout: LayoutReader, descriptor: Descriptor, image: string): Promise<ManifestDocument> {
  try {
    const bytes = await layout.readBlob(descriptor.digest, layout.maxManifestBytes);
    return parseManifestDocument(bytes, {
      descriptorMediaType: descriptor.mediaType,
      what: `${image} (${descriptor.digest})`,
      maxManifests: 1 << 20,
      maxLayers: 1 << 20,
    });
  } catch (err) {
    // Collect nothing rather than too much.
    throw layout.corrupt(
      `cannot read manifest ${descriptor.digest} of image ${image} (${(err as Error).message}); refusing to collect garbage, run kimg fsck`,
      err,
      { digest: descriptor.digest, image },
    );
  }
}

/** Removes blobs no image reaches and stale ingests, holding the store's lock. */
export async function gc(store: LayoutReader, options: GcOptions = {}): Promise<GcResult> {
  const dryRun = options.dryRun === true;
  const ingestMaxAgeMs = options.ingestMaxAgeMs ?? DAY_MS;
  const claimMaxAgeMs = options.claimMaxAgeMs ?? HOUR_MS;
  return store.lock(async () => {
    const now = Date.now();
    // Only a dry run may pretend: a real run must never sweep what an image still reaches.
    const { marked, overLimit } = await markReachable(store, new Set(dryRun ? (options.assumeRemoved ?? []) : []));
    const blobsDir = join(store.root, BLOBS_DIR);
    const blobsStat = await lstat(blobsDir).catch(() => undefined);
    if (blobsStat !== undefined && !blobsStat.isDirectory())
      throw store.corrupt(`${blobsDir} is a symlink or not a directory (refused)`);
    // Listed before the claims are read: a blob published after this listing is not swept, and one
    // published before it was claimed before it (claims are written before publishing).
    const candidates: { algorithm: string; dir: string; name: string }[] = [];
    let keptBlobs = 0;
    for (const algorithm of await listDir(blobsDir)) {
      if (!isKnownAlgorithm(algorithm)) continue;
      const dir = join(blobsDir, algorithm);
      if (!(await lstat(dir)).isDirectory()) continue; // a symlinked algorithm directory is never entered
      for (const name of await listDir(dir)) {
        if (name.length !== ENCODED_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(name)) continue; // not ours to judge
        if (marked.has(`${algorithm}:${name}`)) keptBlobs++;
        else candidates.push({ algorithm, dir, name });
      }
    }
    const claims = await liveClaims(store.ingestDir, claimMaxAgeMs, now, dryRun);
    const removedBlobs: { digest: string; size: number }[] = [];
    const claimedBlobs: string[] = [];
    let reclaimedBytes = 0;
    for (const { algorithm, dir, name } of candidates) {
      const digest = `${algorithm}:${name}`;
      if (claims.has(digest)) {
        claimedBlobs.push(digest);
        continue;
      }
      const path = join(dir, name);
      const entry = await lstat(path).catch(() => undefined);
      if (entry === undefined || entry.isDirectory()) continue;
      // A symlink is not content; it is removed (unlink never follows it).
      const size = entry.isFile() ? entry.size : 0;
      if (!dryRun) await unlinkIfPresent(path);
      removedBlobs.push({ digest, size });
      reclaimedBytes += size;
    }

    const removedIngests = await sweepIngests(store, ingestMaxAgeMs, now, dryRun);
    return {
      dryRun,
      removedBlobs,
      reclaimedBytes,
      keptBlobs,
      claimedBlobs,
      removedIngests,
      overLimitImages: overLimit,
    };
  });
}

async function sweepIngests(store: LayoutReader, maxAgeMs: number, now: number, dryRun: boolean): Promise<string[]> {
  const dir = store.ingestDir;
  const removed: string[] = [];
  const names = await listDir(dir);
  const bases = new Map<string, Set<string>>();
  for (const name of names) {
    const match = INGEST_FILE.exec(name);
    if (match !== null) {
      const base = `${match[1]}-${match[2]}`;
      const kinds = bases.get(base) ?? new Set<string>();
      kinds.add(match[3] ?? '');
      bases.set(base, kinds);
      continue;
    }
    const pid = tempNamePid(name);
    if (pid === undefined) continue;
    // Temporary files live for a moment; one whose process is gone, or very old, is garbage.
    const path = join(dir, name);
    const age = now - ((await lstat(path).catch(() => undefined))?.mtimeMs ?? now);
    if (!isAlive(pid) || age > Math.max(maxAgeMs, HOUR_MS)) {
      if (!dryRun) await unlinkIfPresent(path);
      removed.push(name);
    }
  }
  for (const [base, kinds] of bases) {
    const lockPath = join(dir, `${base}.lock`);
    if (dryRun) {
      if (kinds.has('lock') && (await liveHolder(lockPath)) !== undefined) continue;
      if (await isStale(dir, base, kinds, maxAgeMs, now))
        removed.push(...['data', 'json'].filter((k) => kinds.has(k)).map((k) => `${base}.${k}`));
      continue;
    }
    const lock = await tryAcquireLock(lockPath, dir, 'gc');
    if (lock === undefined) continue; // a live process is downloading it
    try {
      if (await isStale(dir, base, kinds, maxAgeMs, now)) {
        for (const kind of ['data', 'json']) {
          if (await unlinkIfPresent(join(dir, `${base}.${kind}`))) removed.push(`${base}.${kind}`);
        }
      }
    } finally {
      await lock.release();
    }
  }
  return removed;
}

async function isStale(dir: string, base: string, kinds: Set<string>, maxAgeMs: number, now: number): Promise<boolean> {
  let newest = -Infinity;
  for (const kind of ['data', 'json']) {
    if (!kinds.has(kind)) continue;
    const entry = await lstat(join(dir, `${base}.${kind}`)).catch(() => undefined);
    if (entry !== undefined) newest = Math.max(newest, entry.mtimeMs);
  }
  return newest !== -Infinity && now - newest >= maxAgeMs;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}
