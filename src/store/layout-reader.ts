import type { ImageIndex } from '../oci/index.ts';
import type { StoreError } from './errors.ts';

/**
 * What gc and fsck read of a layout: its paths, `index.json`, blobs, the lock and how to name a
 * corruption. `LayoutStore` implements it; gc and fsck depend on this and not on the store, so
 * the store can call them without an import cycle.
 */
export interface LayoutReader {
  readonly root: string;
  readonly indexPath: string;
  readonly ingestDir: string;
  /** Most bytes of a manifest or index read back. */
  readonly maxManifestBytes: number;
  readIndex(): Promise<ImageIndex>;
  /** The whole blob, verified; see `Store.readBlob`. */
  readBlob(digest: string, maxBytes: number): Promise<Buffer>;
  hasBlob(digest: string): Promise<boolean>;
  /** An ErrStoreCorrupt error naming the store and the facts given. */
  corrupt(message: string, cause?: unknown, facts?: { digest?: string; image?: string; path?: string }): StoreError;
  /** Runs `fn` holding the store's cross-process lock on `index.json` (re-entrant). */
  lock<T>(fn: () => Promise<T>): Promise<T>;
}
