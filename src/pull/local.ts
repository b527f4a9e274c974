import {
  WalkLimitError,
  childrenOf,
  formatPlatform,
  hostPlatform,
  parseManifestDocument,
  selectPlatform,
  walkImage,
  type Descriptor,
  type ImageManifest,
  type Platform,
} from '../oci/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import type { ImageRecord, Store } from '../store/index.ts';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** One platform's image as stored: its manifest, config and layers. */
export interface StoredPlatformImage {
  readonly descriptor: Descriptor;
  readonly platform: string | undefined;
  readonly manifest: ImageManifest;
  /** The image config, parsed. Untrusted data: shown, never acted on. */
  readonly config: unknown;
  /** Manifest, config and layers, in bytes. */
  readonly size: number;
}

export interface StoredImage {
  readonly name: string;
  readonly descriptor: Descriptor;
  /** The platforms of an index that are stored (all of them for a single-platform image). */
  readonly images: readonly StoredPlatformImage[];
  /** Platforms an index lists but the store does not hold. */
  readonly missingPlatforms: readonly string[];
  /** Every stored byte the image uses, shared blobs counted once. */
  readonly size: number;
}

/** The stored name for what a user typed: `busybox` is `docker.io/library/busybox:latest`. */
export function storedName(image: string): string {
  return parseDockerRef(image).toString();
}

/** Reads an image's manifests and configs from the store: one bounded walk (see `walkImage`). */
export async function describeStoredImage(store: Store, record: ImageRecord): Promise<StoredImage> {
  const name = record.name ?? record.refName ?? record.descriptor.digest;
  const images: StoredPlatformImage[] = [];
  const missing: string[] = [];
  const counted = new Map<string, number>();

  // Missing children and ones nested too deep are reported as platforms not stored; a graph
  // too large to walk throws (WalkLimitError) naming the image.
  const missingAt = (descriptor: Descriptor): void => {
    missing.push(descriptor.platform ? formatPlatform(descriptor.platform) : descriptor.digest);
  };
  const visit = async (descriptor: Descriptor): Promise<readonly Descriptor[]> => {
    if (!(await store.hasBlob(descriptor.digest))) {
      missingAt(descriptor);
      return [];
    }
    const bytes = await store.readBlob(descriptor.digest, MAX_MANIFEST_BYTES);
    counted.set(descriptor.digest, bytes.byteLength);
    const document = parseManifestDocument(bytes, { what: `${name} (${descriptor.digest})` });
    if (document.kind === 'index') return childrenOf(document);
    const { manifest } = document;
    let config: unknown;
    if (await store.hasBlob(manifest.config.digest)) {
      const configBytes = await store.readBlob(manifest.config.digest, MAX_CONFIG_BYTES);
      try {
        config = JSON.parse(configBytes.toString('utf8')) as unknown;
      } catch {
        config = undefined;
      }
    }
    let size = bytes.byteLength;
    for (const blob of [manifest.config, ...manifest.layers]) {
      size += blob.size;
      counted.set(blob.digest, blob.size);
    }
    images.push({
      descriptor,
      platform: descriptor.platform ? formatPlatform(descriptor.platform) : configPlatform(config),
      manifest,
      config,
      size,
    });
    return [];
  };
  try {
    await walkImage([record.descriptor], visit, { onTooDeep: missingAt });
  } catch (err) {
    if (err instanceof WalkLimitError) throw new WalkLimitError(err.limit, `${name}: ${err.message}`, err.digest);
    throw err;
  }
  const size = [...counted.values()].reduce((a, b) => a + b, 0);
  return { name, descriptor: record.descriptor, images, missingPlatforms: missing, size };
}

/** The stored platform image closest to `platform` (default the host's). */
export function pickPlatformImage(image: StoredImage, platform?: Platform): StoredPlatformImage | undefined {
  if (image.images.length <= 1) return image.images[0];
  const candidates = image.images.map((i) => ({
    ...(i.descriptor.platform !== undefined && { platform: i.descriptor.platform }),
  }));
  const at = selectPlatform(candidates, platform ?? hostPlatform());
  return at === undefined ? image.images[0] : image.images[at];
}

function configPlatform(config: unknown): string | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const { os, architecture, variant } = config as Record<string, unknown>;
  if (typeof os !== 'string' || typeof architecture !== 'string') return undefined;
  return [os, architecture, typeof variant === 'string' ? variant : undefined].filter(Boolean).join('/');
}
