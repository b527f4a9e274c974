/**
 * The store's `index.json` as the server reads it: repositories, their tags and what each tag
 * points at, re-read only when the file changed (every write replaces it by a rename, so its
 * inode, size or mtime differs). A manifest HEAD by tag then costs one `stat`.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../oci/index.ts';
import { splitImageName, type Store } from '../store/index.ts';

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

/** The current snapshot of a store's index, cached by the file's identity. */
export class IndexView {
  private key = '';
  private current: Promise<IndexSnapshot> | undefined;

  constructor(private readonly store: Store) {}

  async snapshot(): Promise<IndexSnapshot> {
    const info = await stat(join(this.store.root, 'index.json'), { bigint: true }).catch(() => undefined);
    const key = info === undefined ? 'absent' : `${info.ino}:${info.size}:${info.mtimeNs}`;
    if (this.current === undefined || key !== this.key) {
      this.key = key;
      const loading = this.store.listImages().then(snapshotOf);
      this.current = loading;
      // A failed read is not kept: the next request tries again.
      loading.catch(() => {
        if (this.current === loading) this.current = undefined;
      });
    }
    return this.current;
  }

  /** Forgets the cached snapshot (after this process changed the index). */
  invalidate(): void {
    this.current = undefined;
  }
}
