/**
 * The OCI 1.1 referrers API over the store: every stored manifest whose `subject` is the asked
 * digest, as an image index (opencontainers/distribution-spec spec.md, "Listing Referrers").
 * The store keeps no reverse index, so blobs are looked at once each (small ones read and
 * parsed, large ones skipped by size) and what was learnt is kept by digest: content never
 * changes under its digest.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaType, referrerOf, type Descriptor, type ImageIndex } from '../oci/index.ts';
import type { ContentReader } from './content.ts';

/** What a blob refers to: its subject's digest and the descriptor of the referrer. */
interface Referrer {
  readonly subject: string;
  readonly descriptor: Descriptor;
}

const MAX_REFERRERS = 10_000;

export class ReferrersIndex {
  /** Digest → what it refers to, or null for a blob that refers to nothing. */
  private readonly known = new Map<string, Referrer | null>();
  private scanning: Promise<void> | undefined;

  constructor(
    private readonly content: ContentReader,
    private readonly maxManifestBytes: number,
  ) {}

  /** The referrers of `digest`, filtered by `artifactType` when given. */
  async referrers(digest: string, artifactType: string | undefined): Promise<ImageIndex> {
    await this.scan();
    const manifests: Descriptor[] = [];
    for (const entry of this.known.values()) {
      if (entry === null || entry.subject !== digest) continue;
      if (artifactType !== undefined && entry.descriptor.artifactType !== artifactType) continue;
      manifests.push(entry.descriptor);
      if (manifests.length >= MAX_REFERRERS) break;
    }
    manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  }

  /** Looks at every blob not seen before; concurrent callers share one pass. */
  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const root = join(this.content.store.root, 'blobs');
    const algorithms = await readdir(root).catch(() => [] as string[]);
    for (const algorithm of algorithms) {
      const names = await readdir(join(root, algorithm)).catch(() => [] as string[]);
      for (const name of names) {
        const digest = `${algorithm}:${name}`;
        if (this.known.has(digest)) continue;
        this.known.set(digest, await this.inspect(digest));
      }
    }
  }

  private async inspect(digest: string): Promise<Referrer | null> {
    let size: number | undefined;
    try {
      size = await this.content.blobSize(digest);
    } catch {
      return null;
    }
    if (size === undefined || size > this.maxManifestBytes) return null;
    const manifest = await this.content.manifest(digest).catch(() => undefined);
    if (manifest === undefined) return null;
    return referrerOf(manifest.document, digest, manifest.bytes.byteLength) ?? null;
  }

  /** Records a manifest this server just stored (a push), without a scan. */
  learn(digest: string): void {
    this.known.delete(digest);
  }
}
