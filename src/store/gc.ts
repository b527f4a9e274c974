import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCODED_LENGTH, isKnownAlgorithm } from '../digest/index.ts';
import { isIndexMediaType, isManifestMediaType, parseManifestDocument, type Descriptor } from '../oci/index.ts';
import { liveClaims } from './claims.ts';
import { errnoCode } from './errors.ts';
import { tempNamePid, unlinkIfPresent } from './fs-utils.ts';
import { liveHolder, tryAcquireLock } from './lock.ts';
import { BLOBS_DIR } from './paths.ts';
import type { LayoutStore } from './store.ts';

export interface GcOptions {
  /** Partial downloads untouched for longer than this are removed; default 24 h. */
  readonly ingestMaxAgeMs?: number;
  /** Blobs written or found present by a live process within this long are kept even when no
   * image reaches them yet (a pull between commit and setImage); default 1 h, 0 ignores them. */
  readonly claimMaxAgeMs?: number;
  /** Report what would be removed, remove nothing. */
  readonly dryRun?: boolean;
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
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const MAX_DEPTH = 8;
const INGEST_FILE = /^(sha256|sha384|sha512)-([0-9a-f]+)\.(data|json|lock)$/;

/** Every digest an image reaches: entries, child manifests, configs, layers, subjects. */
export async function markReachable(store: LayoutStore): Promise<Set<string>> {
  const marked = new Set<string>();
  const queue: { descriptor: Descriptor; depth: number; image: string }[] = (await store.readIndex()).manifests.map(
    (d) => ({
      descriptor: d,
      depth: 0,
      image:
        d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'] ?? d.digest,
    }),
  );
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
    const { descriptor, depth, image } = item;
    if (marked.has(descriptor.digest)) continue;
    marked.add(descriptor.digest);
    const isIndex = isIndexMediaType(descriptor.mediaType);
    if (!isIndex && !isManifestMediaType(descriptor.mediaType)) continue;
    if (!(await store.hasBlob(descriptor.digest))) continue; // e.g. other platforms of an index
    if (depth >= MAX_DEPTH)
      throw store.corrupt(`image ${image}: indexes nested deeper than ${MAX_DEPTH}; refusing to collect garbage`);
    let children: Descriptor[];
    try {
      const bytes = await store.readBlob(descriptor.digest, store.maxManifestBytes);
      const document = parseManifestDocument(bytes, {
        descriptorMediaType: descriptor.mediaType,
        what: `${image} (${descriptor.digest})`,
        maxManifests: 1 << 20,
        maxLayers: 1 << 20,
      });
      const own = document.kind === 'index' ? document.index : document.manifest;
      children =
        document.kind === 'index'
          ? [...document.index.manifests]
          : [document.manifest.config, ...document.manifest.layers];
      if (own.subject !== undefined) children.push(own.subject);
    } catch (err) {
      // Without its children we cannot tell what is garbage: collect nothing rather than too much.
      throw store.corrupt(
        `cannot read manifest ${descriptor.digest} of image ${image} (${(err as Error).message}); refusing to collect garbage, run kimg fsck`,
        err,
        {
          digest: descriptor.digest,
          image,
        },
      );
    }
    for (const child of children) queue.push({ descriptor: child, depth: depth + 1, image });
  }
  return marked;
}

export async function gc(store: LayoutStore, options: GcOptions = {}): Promise<GcResult> {
  const dryRun = options.dryRun === true;
  const ingestMaxAgeMs = options.ingestMaxAgeMs ?? DAY_MS;
  const claimMaxAgeMs = options.claimMaxAgeMs ?? HOUR_MS;
  return store.lock(async () => {
    const now = Date.now();
    const marked = await markReachable(store);
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
    return { dryRun, removedBlobs, reclaimedBytes, keptBlobs, claimedBlobs, removedIngests };
  });
}

async function sweepIngests(store: LayoutStore, maxAgeMs: number, now: number, dryRun: boolean): Promise<string[]> {
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
