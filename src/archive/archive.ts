/**
 * An archive opened as an image source: `oci-archive` (an OCI image layout in a tar: skopeo,
 * `ctr images export`, Docker 25+ `docker save`, kimg) or `docker-archive` (`docker save`'s
 * `manifest.json`). The tar is scanned once; blobs are then byte ranges of the archive file, each
 * checked against its digest: at the scan (an OCI blob whose bytes are not its name's digest is
 * refused, naming the entry), and again while it is read.
 */
import { createHash } from 'node:crypto';
import { digestOf } from '../digest/index.ts';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, withoutNameAnnotations } from '../store/index.ts';
import { parseManifestDocument, parseStrictJson, type Descriptor } from '../oci/index.ts';
import type { BlobSource } from '../registry/index.ts';
import { dockerImages } from './docker.ts';
import { ArchiveError } from './errors.ts';
import { indexTar, readEntry, readSmallEntry, type TarEntry, type TarIndex, type TarLimits } from './tar-index.ts';

/** Most bytes read of a metadata file (`index.json`, `manifest.json`), a manifest or a config. */
export const MAX_METADATA_BYTES = 4 << 20;

export type ArchiveFormat = 'oci-archive' | 'docker-archive';

/** One image the archive holds. */
export interface ArchiveImage {
  /** The full name when the archive gives one (`io.containerd.image.name`, a full-reference
   * `ref.name`, a docker RepoTag), as written. */
  readonly name: string | undefined;
  /** A bare `ref.name` (skopeo, `ctr export` write a tag only). */
  readonly tag: string | undefined;
  /** The top-level manifest or index, without the naming annotations. */
  readonly descriptor: Descriptor;
}

export interface OpenArchiveOptions extends TarLimits {
  readonly signal?: AbortSignal;
}

/** An opened archive: its images, bounded verified document reads and re-openable blob reads. */
export class Archive {
  private constructor(
    readonly file: string,
    readonly format: ArchiveFormat,
    readonly images: readonly ArchiveImage[],
    private readonly index: TarIndex,
    /** digest → entry holding it. */
    private readonly blobs: ReadonlyMap<string, TarEntry>,
    /** Documents made from `manifest.json` (docker-archive), by digest. */
    private readonly made: ReadonlyMap<string, Buffer>,
  ) {}

  /** Scans `file` and reads its layout or `manifest.json`; throws ArchiveError naming the entry. */
  static async open(file: string, options: OpenArchiveOptions = {}): Promise<Archive> {
    const index = await indexTar(file, options, options.signal);
    const blobs = new Map<string, TarEntry>();
    for (const entry of index.entries.values()) {
      const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(entry.name);
      if (m === null) continue;
      if (m[1] !== 'sha256') continue; // only sha256 is hashed at the scan; such a blob reads as absent
      if (entry.digest !== `sha256:${m[2]}`) {
        throw new ArchiveError(
          'ErrDigestMismatch',
          `archive ${file}: entry ${JSON.stringify(entry.name)} holds content that hashes to ${entry.digest}`,
          { archive: file, entry: entry.name, digest: `sha256:${m[2]}` },
        );
      }
      blobs.set(entry.digest, entry);
    }
    const layout = index.entries.get('oci-layout');
    const indexJson = index.entries.get('index.json');
    if (layout !== undefined && indexJson !== undefined) {
      checkLayoutVersion(file, await readSmallEntry(index, layout, MAX_METADATA_BYTES));
      const images = layoutImages(file, await readSmallEntry(index, indexJson, MAX_METADATA_BYTES));
      return new Archive(file, 'oci-archive', images, index, blobs, new Map());
    }
    const manifestJson = index.entries.get('manifest.json');
    if (manifestJson === undefined) {
      throw new ArchiveError(
        'ErrArchiveInvalid',
        `archive ${file} is neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)`,
        { archive: file },
      );
    }
    const made = new Map<string, Buffer>();
    const images: ArchiveImage[] = [];
    for (const image of dockerImages(index, await readSmallEntry(index, manifestJson, MAX_METADATA_BYTES))) {
      const descriptor: Descriptor = {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        digest: digestOf(image.manifest),
        size: image.manifest.length,
      };
      made.set(descriptor.digest, image.manifest);
      for (const entry of [image.config, ...image.layers]) blobs.set(entry.digest, entry);
      if (image.repoTags.length === 0) images.push({ name: undefined, tag: undefined, descriptor });
      for (const name of image.repoTags) images.push({ name, tag: undefined, descriptor });
    }
    return new Archive(file, 'docker-archive', images, index, blobs, made);
  }

  /** Whether the archive holds the blob with the descriptor's size. */
  hasBlob(descriptor: Descriptor): boolean {
    if (this.made.has(descriptor.digest)) return true;
    return this.blobs.get(descriptor.digest)?.size === descriptor.size;
  }

  private entryFor(descriptor: Descriptor): TarEntry {
    const entry = this.blobs.get(descriptor.digest);
    if (entry === undefined) {
      throw new ArchiveError('ErrBlobUnknown', `archive ${this.file} lacks blob ${descriptor.digest}`, {
        archive: this.file,
        digest: descriptor.digest,
      });
    }
    if (entry.size !== descriptor.size) {
      throw new ArchiveError(
        'ErrDigestMismatch',
        `archive ${this.file}: entry ${JSON.stringify(entry.name)} is ${entry.size} bytes; the descriptor of ${descriptor.digest} says ${descriptor.size}`,
        { archive: this.file, entry: entry.name, digest: descriptor.digest },
      );
    }
    return entry;
  }

  /** A manifest, index or config in memory: at most 4 MiB, verified. */
  async document(descriptor: Descriptor): Promise<Buffer> {
    const made = this.made.get(descriptor.digest);
    if (made !== undefined) return made;
    const entry = this.entryFor(descriptor);
    return readSmallEntry(this.index, entry, MAX_METADATA_BYTES);
  }

  /** A blob from any offset; read from the start, it is hashed again and a change fails it. */
  blob(descriptor: Descriptor): BlobSource {
    return { open: (offset, signal) => this.readBlob(descriptor, offset, signal) };
  }

  private async *readBlob(descriptor: Descriptor, offset: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const made = this.made.get(descriptor.digest);
    if (made !== undefined) {
      yield made.subarray(offset);
      return;
    }
    const entry = this.entryFor(descriptor);
    const hash = offset === 0 ? createHash('sha256') : undefined;
    for await (const chunk of readEntry(this.index, entry, offset, signal)) {
      hash?.update(chunk);
      yield chunk;
    }
    if (hash !== undefined && `sha256:${hash.digest('hex')}` !== entry.digest) {
      throw new ArchiveError(
        'ErrDigestMismatch',
        `archive ${this.file} changed while it was read (entry ${JSON.stringify(entry.name)})`,
        { archive: this.file, entry: entry.name, digest: descriptor.digest },
      );
    }
  }
}

function checkLayoutVersion(file: string, bytes: Buffer): void {
  let version: unknown;
  try {
    version = (parseStrictJson(bytes.toString('utf8')) as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new ArchiveError('ErrArchiveInvalid', `archive ${file}: oci-layout is not an image layout of version 1.x`, {
      archive: file,
      entry: 'oci-layout',
    });
  }
}

/** A bare tag, as skopeo and `ctr images export` write `ref.name`. */
const BARE_TAG = /^[\w][\w.-]{0,127}$/;

function layoutImages(file: string, bytes: Buffer): ArchiveImage[] {
  let document;
  try {
    document = parseManifestDocument(bytes, { what: `archive ${file}: index.json` });
  } catch (err) {
    throw new ArchiveError('ErrArchiveInvalid', (err as Error).message, {
      archive: file,
      entry: 'index.json',
      cause: err,
    });
  }
  if (document.kind !== 'index')
    throw new ArchiveError('ErrArchiveInvalid', `archive ${file}: index.json is not an image index`, {
      archive: file,
      entry: 'index.json',
    });
  return document.index.manifests.map((d) => {
    const descriptor = withoutNameAnnotations(d);
    const full = d.annotations?.[ANNOTATION_IMAGE_NAME];
    const ref = d.annotations?.[ANNOTATION_REF_NAME];
    const refIsTag = ref !== undefined && BARE_TAG.test(ref);
    return { name: full ?? (refIsTag ? undefined : ref), tag: refIsTag ? ref : undefined, descriptor };
  });
}
