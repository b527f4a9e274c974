/**
 * The store's `index.json` as the server reads it: repositories, their tags and what each tag
 * points at, re-read only when the file changed (every write replaces it by a rename, so its
 * inode, size or mtime differs). The store's directory is watched (inotify on Linux), so a
 * manifest HEAD by tag costs no system call (one `stat` a second in all); where watching is not
 * possible, one `stat` each.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../oci/index.ts';
import { splitImageName, type Store } from '../store/index.ts';

const INDEX_FILE = 'index.json';

/** Even with a watcher the file is checked this often: a change made where the kernel does not
 * report it (another machine writing a network file system) is seen within this time. */
const RECHECK_MS = 1000;

/** What one repository of the store holds. */
export interface StoredRepository {
  /** Tag → the top-level descriptor it points at. */
  readonly tags: ReadonlyMap<string, Descriptor>;
  /** Digests stored under this repository by digest only (`repo@sha256:…`). */
  readonly digests: ReadonlySet<string>;
}

export interface IndexSnapshot {
  /** Full repository name (`docker.io/library/nginx`) → its content. */
  readonly repositories: ReadonlyMap<string, StoredRepository>;
}

interface Mutable {
  readonly tags: Map<string, Descriptor>;
  readonly digests: Set<string>;
}

/** Builds the snapshot from the store's records; entries without a full name are not served. */
export function snapshotOf(records: readonly { name: string | undefined; descriptor: Descriptor }[]): IndexSnapshot {
  const repositories = new Map<string, Mutable>();
  for (const record of records) {
    if (record.name === undefined) continue;
    const parts = splitImageName(record.name);
    if (parts === undefined || !parts.repository.includes('/')) continue;
    let repo = repositories.get(parts.repository);
    if (repo === undefined) {
      repo = { tags: new Map(), digests: new Set() };
      repositories.set(parts.repository, repo);
    }
    if (parts.tag !== undefined) {
      if (!repo.tags.has(parts.tag)) repo.tags.set(parts.tag, record.descriptor);
    } else repo.digests.add(record.descriptor.digest);
  }
  return { repositories };
}

/**
 * The current snapshot of a store's index. The store's directory is watched: a change of
 * `index.json` reported by the kernel (queued at the rename, so before any request that follows
 * the write) or an `invalidate` drops the snapshot and the next call reads the file again;
 * besides, the file is `stat`ed at most once a second and re-read when its identity changed.
 * Without a watcher, every call `stat`s it.
 */
export class IndexView {
  private key = '';
  private current: Promise<IndexSnapshot> | undefined;
  private watcher: FSWatcher | undefined;
  /** When the file was last `stat`ed (performance.now()). */
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: Store,
    options: { watch?: boolean } = {},
  ) {
    if (options.watch !== false) this.startWatching();
  }

  private startWatching(): void {
    try {
      const watcher = watch(this.store.root, { persistent: false }, (_event, name) => {
        // A null name is an overflowed event queue: anything may have changed.
        if (name === null || name === INDEX_FILE) this.invalidate();
      });
      watcher.on('error', () => {
        this.stopWatching();
        this.invalidate();
      });
      this.watcher = watcher;
    } catch {
      // No watching here (no inotify instances left, a file system without it): stat each time.
      this.watcher = undefined;
    }
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  async snapshot(): Promise<IndexSnapshot> {
    const now = performance.now();
    if (this.current !== undefined && this.watcher !== undefined && now - this.checkedAt < RECHECK_MS)
      return this.current;
    this.checkedAt = now;
    const info = await stat(join(this.store.root, INDEX_FILE), { bigint: true }).catch(() => undefined);
    const key = info === undefined ? 'absent' : `${info.ino}:${info.size}:${info.mtimeNs}`;
    if (this.current === undefined || key !== this.key) {
      this.key = key;
      this.current = this.load();
    }
    return this.current;
  }

  private load(): Promise<IndexSnapshot> {
    const loading = this.store.listImages().then(snapshotOf);
    // A failed read is not kept: the next request tries again.
    loading.catch(() => {
      if (this.current === loading) this.current = undefined;
    });
    return loading;
  }

  /** Forgets the snapshot, so that the next call reads the index again (after a change). */
  invalidate(): void {
    this.current = undefined;
  }

  /** Stops watching the store's directory. */
  close(): void {
    this.stopWatching();
  }
}
