/**
 * One image's graph, read and checked before anything is written: every document verified and
 * parsed, every blob present. An index child the source lacks is a platform that was not pulled
 * or exported (as `ctr images export` leaves them) and is skipped; a manifest's config or layer
 * that is missing fails, naming the image and the blob.
 */
import {
  childrenOf,
  isDocumentMediaType,
  isIndexMediaType,
  parseManifestDocument,
  walkImage,
  type Descriptor,
  type ImageManifest,
} from '../oci/index.ts';
import { ArchiveError } from './errors.ts';

/** What a plan reads: an archive, or the store. */
export interface GraphSource {
  /** Names the source in errors (the archive file, the store root). */
  readonly label: string;
  has(descriptor: Descriptor): Promise<boolean> | boolean;
  document(descriptor: Descriptor): Promise<Uint8Array>;
}

export interface ImagePlan {
  readonly top: Descriptor;
  /** Every document present, children before parents (the top one last). */
  readonly documents: { readonly descriptor: Descriptor; readonly bytes: Uint8Array }[];
  /** Configs and layers, by digest. */
  readonly blobs: Map<string, Descriptor>;
  /** The image manifests present, with their descriptors (a platform's, or the top one). */
  readonly manifests: { readonly descriptor: Descriptor; readonly manifest: ImageManifest }[];
}

/** Walks `top` in `source` (the one walker); throws ArchiveError ErrBlobUnknown naming `image`. */
export async function planImage(source: GraphSource, image: string, top: Descriptor): Promise<ImagePlan> {
  const documents: { descriptor: Descriptor; bytes: Uint8Array }[] = [];
  const blobs = new Map<string, Descriptor>();
  const manifests: { descriptor: Descriptor; manifest: ImageManifest }[] = [];
  const missing = (descriptor: Descriptor, parent: Descriptor | undefined): ArchiveError =>
    new ArchiveError(
      'ErrBlobUnknown',
      `${image}: ${source.label} lacks blob ${descriptor.digest} (${descriptor.mediaType})${parent === undefined ? '' : `, which ${parent.digest} names`}`,
      { archive: source.label, digest: descriptor.digest },
    );
  await walkImage([top], async (descriptor, step) => {
    const present = await source.has(descriptor);
    if (!isDocumentMediaType(descriptor.mediaType)) {
      if (!present) throw missing(descriptor, step.parent);
      blobs.set(descriptor.digest, descriptor);
      return [];
    }
    if (!present) {
      // A platform of an index that is not there: skipped, as the store keeps partial indexes.
      if (step.parent !== undefined && isIndexMediaType(step.parent.mediaType)) return [];
      throw missing(descriptor, step.parent);
    }
    const bytes = await source.document(descriptor);
    const document = parseManifestDocument(bytes, {
      what: `${image}: ${descriptor.digest}`,
      descriptorMediaType: descriptor.mediaType,
    });
    documents.push({ descriptor, bytes });
    if (document.kind === 'manifest') manifests.push({ descriptor, manifest: document.manifest });
    return childrenOf(document);
  });
  if (manifests.length === 0) {
    throw new ArchiveError('ErrBlobUnknown', `${image}: ${source.label} holds no platform manifest of ${top.digest}`, {
      archive: source.label,
      digest: top.digest,
    });
  }
  return { top, documents: documents.reverse(), blobs, manifests };
}
