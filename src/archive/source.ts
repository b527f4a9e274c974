/**
 * An archive image as the source end of a copy (`oci-archive:FILE[:REF]`,
 * `docker-archive:FILE[:REF]`): the shape `src/copy` takes for any source (label, top level,
 * verified documents, re-openable blobs), so the copy engine reads archives as it reads layouts
 * and registries.
 */
import { referrersAmong, type Descriptor } from '../oci/index.ts';
import { tryParseDockerRef } from '../reference/index.ts';
import type { BlobSource } from '../registry/index.ts';
import { Archive, type ArchiveImage, type OpenArchiveOptions } from './archive.ts';
import { ArchiveError } from './errors.ts';

/** The image's top level: descriptor, exact bytes and the name the archive gives it. */
export interface ArchiveTopLevel {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
  readonly name?: string;
}

/** One image of an archive, read as a copy source. */
export interface ArchiveImageSource {
  readonly label: string;
  readonly archive: Archive;
  root(signal?: AbortSignal): Promise<ArchiveTopLevel>;
  manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  hasBlob(descriptor: Descriptor): Promise<boolean>;
  blob(descriptor: Descriptor): BlobSource;
  /** Referrers listed in the archive's `index.json` (manifests with a `subject`). */
  referrers(subject: Descriptor): Promise<readonly Descriptor[]>;
  close(): Promise<void>;
}

/** A name normalized as the store records it; undefined when it is not a valid reference. */
function normalizeName(name: string): string | undefined {
  const parsed = tryParseDockerRef(name);
  return parsed.ok ? parsed.value.toString() : undefined;
}

/**
 * The image `reference` designates in `archive`: a name (normalized, `busybox` = `docker.io/
 * library/busybox:latest`), a bare tag as `ref.name` holds it, or `@N` (the N-th image, as
 * skopeo's docker-archive takes it); none: the only image.
 */
export function selectArchiveImage(archive: Archive, reference: string | undefined): ArchiveImage {
  const names = archive.images.map((i) => i.name ?? i.tag ?? i.descriptor.digest);
  const fail = (why: string): never => {
    throw new ArchiveError(
      'ErrImageUnknown',
      `archive ${archive.file}: ${why} (it holds: ${names.join(', ') || 'nothing'})`,
      {
        archive: archive.file,
      },
    );
  };
  if (reference === undefined) {
    const distinct = new Set(archive.images.map((i) => i.descriptor.digest));
    if (distinct.size !== 1) return fail(`${archive.images.length} images; name one (FILE:REF)`);
    return archive.images[0] as ArchiveImage;
  }
  const at = /^@(\d+)$/.exec(reference)?.[1];
  if (at !== undefined) return archive.images[Number(at)] ?? fail(`no image @${at}`);
  const normalize = normalizeName;
  const wanted = normalize(reference);
  return (
    archive.images.find((i) => i.tag === reference || i.name === reference) ??
    archive.images.find((i) => i.name !== undefined && wanted !== undefined && normalize(i.name) === wanted) ??
    fail(`no image named ${JSON.stringify(reference)}`)
  );
}

/** Opens `file` and selects one image as a copy source; `close()` releases nothing but is there
 * for the copy engine's contract. */
export async function openArchiveSource(
  file: string,
  reference: string | undefined,
  options: OpenArchiveOptions & { label?: string } = {},
): Promise<ArchiveImageSource> {
  const archive = await Archive.open(file, options);
  const image = selectArchiveImage(archive, reference);
  const label = options.label ?? `${archive.format}:${file}${reference === undefined ? '' : `:${reference}`}`;
  let referrerMap: Promise<Map<string, Descriptor[]>> | undefined;
  return {
    label,
    archive,
    async root() {
      const bytes = await archive.document(image.descriptor);
      // A full name normalized (a docker RepoTag `busybox:1.36` is docker.io/library/busybox:1.36);
      // a bare tag as written, as a layout's `ref.name` gives it.
      const name = image.name === undefined ? image.tag : (normalizeName(image.name) ?? image.name);
      return { descriptor: image.descriptor, bytes, ...(name !== undefined && { name }) };
    },
    manifest: (descriptor) => archive.document(descriptor),
    hasBlob: async (descriptor) => archive.hasBlob(descriptor),
    blob: (descriptor) => archive.blob(descriptor),
    async referrers(subject) {
      referrerMap ??= referrersAmong(
        archive.images.map((i) => i.descriptor),
        (d) => archive.document(d),
      );
      return (await referrerMap).get(subject.digest) ?? [];
    },
    close: async () => undefined,
  };
}
