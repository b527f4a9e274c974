/**
 * Manifests and blobs read from the store for serving. Manifests are read whole (capped),
 * verified against their digest once and kept in a small cache by digest (content-addressed, so
 * a cached copy never goes stale); blobs are only `stat`ed here and streamed by the caller.
 */
import type { FileHandle } from 'node:fs/promises';
import { parseManifestDocument, type ManifestDocument } from '../oci/index.ts';
import { StoreError, type Store } from '../store/index.ts';
import { DistributionError } from './errors.ts';

/** A manifest or index as served: the exact stored bytes and their media type. */
export interface StoredManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly document: ManifestDocument;
}

/** Default cap on a manifest served or accepted: 4 MiB, as Distribution's default. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;

const CACHE_BYTES = 32 << 20;

export class ContentReader {
  private readonly cache = new Map<string, StoredManifest>();
  private cached = 0;

  constructor(
    readonly store: Store,
    private readonly maxManifestBytes: number = DEFAULT_MAX_MANIFEST_BYTES,
  ) {}

  /** The size of a blob in the store, or undefined when absent (a symlink is not a blob). */
  async blobSize(digest: string): Promise<number | undefined> {
    return this.store.blobSize(digest).catch(() => undefined);
  }

  /** A blob opened for reading with its size, or undefined when absent or unreadable (a symlink
   * is not a blob). The caller closes the handle. */
  async openBlob(digest: string): Promise<{ handle: FileHandle; size: number } | undefined> {
    return this.store.openBlobFile(digest).catch(() => undefined);
  }

  /**
   * The manifest stored under `digest`, or undefined when the store has no such blob or it is
   * not a manifest or index (a layer asked for as a manifest).
   */
  async manifest(digest: string): Promise<StoredManifest | undefined> {
    const hit = this.cache.get(digest);
    if (hit !== undefined) {
      // Most recently used last.
      this.cache.delete(digest);
      this.cache.set(digest, hit);
      return hit;
    }
    const size = await this.blobSize(digest);
    if (size === undefined || size > this.maxManifestBytes) return undefined;
    let bytes: Buffer;
    try {
      bytes = await this.store.readBlob(digest, this.maxManifestBytes);
    } catch (err) {
      if (err instanceof StoreError && (err.code === 'ErrBlobUnknown' || err.code === 'ErrBlobTooLarge'))
        return undefined;
      throw err;
    }
    let document: ManifestDocument;
    try {
      document = parseManifestDocument(bytes, { what: digest });
    } catch {
      return undefined;
    }
    const manifest: StoredManifest = { digest, mediaType: document.mediaType, bytes, document };
    this.remember(manifest);
    return manifest;
  }

  /** As `manifest`, MANIFEST_UNKNOWN when absent. */
  async requireManifest(digest: string, shown: string): Promise<StoredManifest> {
    const found = await this.manifest(digest);
    if (found === undefined)
      throw new DistributionError('MANIFEST_UNKNOWN', `manifest unknown: ${shown}`, { detail: { reference: shown } });
    return found;
  }

  /** Keeps a manifest this process verified (read or received). */
  remember(manifest: StoredManifest): void {
    if (manifest.bytes.byteLength > CACHE_BYTES / 4 || this.cache.has(manifest.digest)) return;
    this.cache.set(manifest.digest, manifest);
    this.cached += manifest.bytes.byteLength;
    for (const [digest, entry] of this.cache) {
      if (this.cached <= CACHE_BYTES) break;
      this.cache.delete(digest);
      this.cached -= entry.bytes.byteLength;
    }
  }
}
