import { MediaType, parseManifestDocument, type Descriptor, type ImageIndex } from '../oci/index.ts';
import { splitImageName } from './image-name.ts';

/** containerd's annotation for the full image name. */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/**
 * The OCI annotation naming an entry of a layout. kimg writes the full reference here (as crane
 * `--annotate-ref` does), so that `skopeo … oci:STORE:docker.io/library/busybox:1.36` and
 * `umoci … --image STORE:docker.io/library/busybox:1.36` address one image without ambiguity: the
 * image-layout grammar allows `/`, `:` and `@` in a ref name, and both tools accept them. skopeo,
 * regclient and containerd's export write a bare tag instead, which kimg still reads.
 */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** Most entries read from a layout's `index.json`. */
export const MAX_INDEX_ENTRIES = 1_000_000;

/** One image of the layout: an `index.json` entry. */
export interface ImageRecord {
  /** The full reference (`io.containerd.image.name`), else `ref.name` (a tag or, from crane, a
   * full reference), else undefined for an unnamed entry. */
  readonly name: string | undefined;
  /** `org.opencontainers.image.ref.name` as written. */
  readonly refName: string | undefined;
  /** The entry as stored: the top-level index or manifest, with its annotations. */
  readonly descriptor: Descriptor;
}

export function emptyLayoutIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}

/** Reads `index.json` strictly (duplicate keys, malformed descriptors and digests are refused);
 * throws the ManifestError. */
export function parseLayoutIndex(bytes: Uint8Array, what: string): ImageIndex {
  const document = parseManifestDocument(bytes, { what, maxManifests: MAX_INDEX_ENTRIES });
  if (document.kind !== 'index') throw new TypeError(`${what} is an image manifest, not an index`);
  return document.index;
}

export function serializeLayoutIndex(index: ImageIndex): string {
  return JSON.stringify({ ...index, schemaVersion: 2, mediaType: MediaType.OciIndex });
}

/** The descriptor without the layout's naming annotations (`io.containerd.image.name`,
 * `org.opencontainers.image.ref.name`): the image itself, as another layout or registry gets it. */
export function withoutNameAnnotations(descriptor: Descriptor): Descriptor {
  const { annotations, ...plain } = descriptor;
  const kept = Object.entries(annotations ?? {}).filter(
    ([key]) => key !== ANNOTATION_IMAGE_NAME && key !== ANNOTATION_REF_NAME,
  );
  return kept.length > 0 ? { ...plain, annotations: Object.fromEntries(kept) } : plain;
}

export function toRecord(descriptor: Descriptor): ImageRecord {
  const fullName = descriptor.annotations?.[ANNOTATION_IMAGE_NAME];
  const refName = descriptor.annotations?.[ANNOTATION_REF_NAME];
  return { name: fullName ?? refName, refName, descriptor };
}

/**
 * The entries that `name` designates, best first. In order of precedence:
 * 1. entries whose `io.containerd.image.name` is `name` (all of them: only one should exist);
 * 2. the first entry whose `ref.name` is `name` (crane's full reference, or a bare tag asked for);
 * 3. for a tagged `name`, the first entry without a full name whose `ref.name` is the tag (skopeo,
 *    regclient: what `skopeo … oci:DIR:TAG` reads, first match as skopeo does);
 * 4. for `name@digest`, the first entry of the same repository with that digest.
 */
export function findEntries(manifests: readonly Descriptor[], name: string): number[] {
  const exact: number[] = [];
  manifests.forEach((d, i) => {
    if (d.annotations?.[ANNOTATION_IMAGE_NAME] === name) exact.push(i);
  });
  if (exact.length > 0) return exact;
  const byRefName = manifests.findIndex((d) => d.annotations?.[ANNOTATION_REF_NAME] === name);
  if (byRefName !== -1) return [byRefName];
  const parts = splitImageName(name);
  if (parts?.tag !== undefined) {
    const byTag = manifests.findIndex(
      (d) => d.annotations?.[ANNOTATION_IMAGE_NAME] === undefined && d.annotations?.[ANNOTATION_REF_NAME] === parts.tag,
    );
    if (byTag !== -1) return [byTag];
  }
  if (parts?.digest !== undefined) {
    const byDigest = manifests.findIndex((d) => {
      const full = d.annotations?.[ANNOTATION_IMAGE_NAME];
      return d.digest === parts.digest && full !== undefined && splitImageName(full)?.repository === parts.repository;
    });
    if (byDigest !== -1) return [byDigest];
  }
  return [];
}

/**
 * The index with `name` pointing at `descriptor`: entries of that same reference (ours, or crane's
 * with the full reference in `ref.name`) are replaced in place, so a tag moves atomically and
 * never appears twice. Tag-only entries written by other tools are left alone (they may belong to
 * another repository).
 */
export function withImage(index: ImageIndex, name: string, descriptor: Descriptor): ImageIndex {
  const parts = splitImageName(name);
  if (parts === undefined || (parts.tag === undefined && parts.digest === undefined)) {
    throw new TypeError(`not a full reference with a tag or digest: ${JSON.stringify(name)}`);
  }
  const entry: Descriptor = {
    ...descriptor,
    annotations: { ...descriptor.annotations, [ANNOTATION_IMAGE_NAME]: name, [ANNOTATION_REF_NAME]: name },
  };

  const manifests: Descriptor[] = [];
  let placed = false;
  for (const existing of index.manifests) {
    const full = existing.annotations?.[ANNOTATION_IMAGE_NAME];
    const same = full === name || (full === undefined && existing.annotations?.[ANNOTATION_REF_NAME] === name);
    if (!same) manifests.push(existing);
    else if (!placed) {
      manifests.push(entry);
      placed = true;
    }
  }
  if (!placed) manifests.push(entry);
  return { ...index, manifests };
}

/** The index without the entries `name` designates (see findEntries); how many were removed. */
export function withoutImage(index: ImageIndex, name: string): { index: ImageIndex; removed: number } {
  const found = new Set(findEntries(index.manifests, name));
  if (found.size === 0) return { index, removed: 0 };
  return { index: { ...index, manifests: index.manifests.filter((_, i) => !found.has(i)) }, removed: found.size };
}

/**
 * Entries kimg wrote before ref.name carried the full reference (it held the tag, or nothing for a
 * digest-only reference) rewritten so that ref.name is the full name; undefined when none needs
 * it. Only entries with `io.containerd.image.name` are touched: tag-only entries other tools
 * wrote keep their tag.
 */
export function withFullRefNames(index: ImageIndex): ImageIndex | undefined {
  let changed = false;
  const manifests = index.manifests.map((entry) => {
    const full = entry.annotations?.[ANNOTATION_IMAGE_NAME];
    if (full === undefined || entry.annotations?.[ANNOTATION_REF_NAME] === full) return entry;
    changed = true;
    return { ...entry, annotations: { ...entry.annotations, [ANNOTATION_REF_NAME]: full } };
  });
  return changed ? { ...index, manifests } : undefined;
}
