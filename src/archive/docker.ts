/**
 * The `docker save` format (moby `image/tarexport`): `manifest.json` lists each image's config
 * file, its tags and its layer files. An image manifest is made for each, as skopeo's
 * docker-archive source does (containers/image `docker/internal/tarfile/src.go`): Docker
 * schema 2, the config as stored, every layer as the file holds it (gzip or plain tar), so the
 * config digest (the image ID) stays what `docker images` shows.
 */
import { MediaType, parseStrictJson, type Descriptor } from '../oci/index.ts';
import { ArchiveError } from './errors.ts';
import { resolveEntry, type TarEntry, type TarIndex } from './tar-index.ts';

/** Docker's schema 2 uncompressed layer, which `MediaType` does not list. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

/** One `manifest.json` item, with the image manifest made for it. */
export interface DockerImage {
  /** RepoTags as written (`busybox:1.36`, `registry:5000/app:v1`). */
  readonly repoTags: readonly string[];
  readonly manifest: Buffer;
  readonly config: TarEntry;
  readonly layers: readonly TarEntry[];
}

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.DockerLayerGzip;
  if (head.readUInt32LE(0) === 0xfd2fb528) return MediaType.OciLayerZstd;
  return DOCKER_LAYER_TAR;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Reads `manifest.json` (already bounded) and makes each image's manifest. */
export function dockerImages(index: TarIndex, bytes: Buffer): DockerImage[] {
  const file = index.file;
  const bad = (message: string, entry = 'manifest.json'): ArchiveError =>
    new ArchiveError('ErrArchiveInvalid', `archive ${file}: ${entry}: ${message}`, { archive: file, entry });
  let parsed: unknown;
  try {
    parsed = parseStrictJson(bytes.toString('utf8'));
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!Array.isArray(parsed)) throw bad('not a JSON array');
  const find = (name: string, what: string): TarEntry => {
    const entry = resolveEntry(index, name);
    if (entry === undefined) {
      throw new ArchiveError(
        'ErrBlobUnknown',
        `archive ${file}: manifest.json names ${what} ${JSON.stringify(name.slice(0, 300))}, which the archive lacks`,
        { archive: file, entry: name },
      );
    }
    return entry;
  };
  return parsed.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw bad(`item ${i} is not an object`);
    const { Config: config, RepoTags: tags, Layers: layers } = item as Record<string, unknown>;
    if (typeof config !== 'string') throw bad(`item ${i} has no Config`);
    if (!isStringArray(layers)) throw bad(`item ${i}: Layers is not a list of file names`);
    if (tags !== undefined && tags !== null && !isStringArray(tags)) throw bad(`item ${i}: RepoTags is not a list`);
    const configEntry = find(config, 'the config');
    // A `<hex>.json` config is named by its digest (the image ID): check it.
    const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(configEntry.name)?.[1];
    if (named !== undefined && `sha256:${named}` !== configEntry.digest) {
      throw new ArchiveError(
        'ErrDigestMismatch',
        `archive ${file}: entry ${JSON.stringify(configEntry.name)} holds content that hashes to ${configEntry.digest}, not sha256:${named}`,
        { archive: file, entry: configEntry.name, digest: `sha256:${named}` },
      );
    }
    const layerEntries = layers.map((l) => find(l, 'the layer'));
    const descriptor = (entry: TarEntry, mediaType: string): Descriptor => ({
      mediaType,
      digest: entry.digest,
      size: entry.size,
    });
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: descriptor(configEntry, MediaType.DockerConfig),
      layers: layerEntries.map((l) => descriptor(l, layerMediaType(Buffer.concat([l.head, Buffer.alloc(4)])))),
    };
    return {
      repoTags: tags ?? [],
      manifest: Buffer.from(JSON.stringify(manifest)),
      config: configEntry,
      layers: layerEntries,
    };
  });
}
