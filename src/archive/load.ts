/**
 * `kimg load`: the images of an archive into the store, through its verified ingest. Each image
 * is planned first (every document and blob checked present), then its blobs and documents are
 * written, and its name is recorded last, so a failed load leaves nothing tagged; blobs already
 * written stay untagged until `kimg gc`.
 */
import { basename } from 'node:path';
import { VerifyError } from '../digest/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import type { Store } from '../store/index.ts';
import { Archive, type ArchiveImage, type OpenArchiveOptions } from './archive.ts';
import { ArchiveError } from './errors.ts';
import { planImage, type ImagePlan } from './plan.ts';

export type LoadEvent =
  | {
      readonly type: 'blob';
      readonly image: string;
      readonly digest: string;
      readonly size: number;
      readonly stored: boolean;
    }
  | { readonly type: 'image'; readonly image: LoadedImage };

export interface LoadOptions extends OpenArchiveOptions {
  /** Repository for images the archive does not name (default `localhost/<file name>`). */
  readonly repository?: string;
  readonly onEvent?: (event: LoadEvent) => void;
}

export interface LoadedImage {
  readonly name: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly blobs: number;
  /** Blob bytes the store did not have. */
  readonly bytesStored: number;
}

/** The store name of an archive image: its name normalized, else `repository:tag` or
 * `repository@digest`. */
export function storeNameOf(image: ArchiveImage, repository: string, archive: string): string {
  const given =
    image.name ?? `${repository}${image.tag !== undefined ? `:${image.tag}` : `@${image.descriptor.digest}`}`;
  try {
    const ref = parseDockerRef(given);
    return ref.toString();
  } catch (err) {
    throw new ArchiveError(
      'ErrArchiveInvalid',
      `archive ${archive}: image name ${JSON.stringify(given.slice(0, 300))} is not a valid reference: ${(err as Error).message}`,
      { archive, cause: err },
    );
  }
}

function defaultRepository(file: string): string {
  const stem = basename(file)
    .replace(/\.(tar|oci|docker)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-');
  return `localhost/${stem.replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'image'}`;
}

/** Loads every image of `file` into `store`; returns them in archive order. */
export async function loadArchive(store: Store, file: string, options: LoadOptions = {}): Promise<LoadedImage[]> {
  const archive = await Archive.open(file, options);
  const repository = options.repository ?? defaultRepository(file);
  const emit = options.onEvent ?? (() => undefined);
  const source = {
    label: `archive ${file}`,
    has: (d: Parameters<Archive['hasBlob']>[0]) => archive.hasBlob(d),
    document: (d: Parameters<Archive['document']>[0]) => archive.document(d),
  };
  if (archive.images.length === 0) {
    throw new ArchiveError('ErrArchiveInvalid', `archive ${file} holds no image`, { archive: file });
  }
  const named = archive.images.map((image) => ({ image, name: storeNameOf(image, repository, file) }));
  // Plan every image before writing any: a bad one stops the load before the store changes.
  // Each top digest is walked once, however many names (RepoTags, index entries) point at it.
  const byDigest = new Map<string, ImagePlan>();
  const plans = [];
  for (const { image, name } of named) {
    let plan = byDigest.get(image.descriptor.digest);
    if (plan === undefined) {
      plan = await planImage(source, name, image.descriptor);
      byDigest.set(image.descriptor.digest, plan);
    }
    plans.push(plan);
  }
  const loaded: LoadedImage[] = [];
  for (const [i, { image, name }] of named.entries()) {
    const plan = plans[i] as (typeof plans)[number];
    let bytesStored = 0;
    for (const blob of plan.blobs.values()) {
      options.signal?.throwIfAborted();
      const ingest = await store.openIngest(blob, {
        source: `archive ${file}`,
        ...(options.signal !== undefined && { signal: options.signal }),
      });
      if (!ingest.alreadyPresent) {
        try {
          if (ingest.offset > 0) await ingest.reset();
          for await (const chunk of archive.blob(blob).open(0, options.signal)) await ingest.write(chunk);
          await ingest.commit();
        } catch (err) {
          await ingest.abort().catch(() => undefined);
          if (!(err instanceof VerifyError)) throw err;
          throw new ArchiveError(
            'ErrDigestMismatch',
            `${name}: blob ${blob.digest} from archive ${file}: ${(err as Error).message}`,
            { archive: file, digest: blob.digest, cause: err },
          );
        }
        bytesStored += blob.size;
      }
      emit({ type: 'blob', image: name, digest: blob.digest, size: blob.size, stored: !ingest.alreadyPresent });
    }
    for (const d of plan.documents) await store.putBlob(d.descriptor, d.bytes);
    await store.setImage(name, image.descriptor);
    await store.releaseClaims([...plan.blobs.keys(), ...plan.documents.map((d) => d.descriptor.digest)]);
    const result = {
      name,
      digest: image.descriptor.digest,
      mediaType: image.descriptor.mediaType,
      blobs: plan.blobs.size,
      bytesStored,
    };
    loaded.push(result);
    emit({ type: 'image', image: result });
  }
  return loaded;
}
