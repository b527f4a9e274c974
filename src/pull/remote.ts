/**
 * Looking at an image in its registry without pulling it (crane `digest`/`manifest`/`config`,
 * skopeo `inspect --raw`): what a reference points at, for one platform when asked, the exact
 * manifest bytes, the config blob. Every manifest is verified against its digest, the config too;
 * nothing is written anywhere.
 */
import { DigestVerifier } from '../digest/index.ts';
import { KimgError } from '../errors/index.ts';
import {
  PlatformNotFoundError,
  describeAvailable,
  formatPlatform,
  hostPlatform,
  forPlatform,
  isDocumentMediaType,
  isIndexMediaType,
  parsePlatform,
  walkImage,
  type Descriptor,
  type ManifestDocument,
  type Platform,
} from '../oci/index.ts';
import { parseDockerRef, type NamedReference } from '../reference/index.ts';
import type { BlobSink, RegistryClient } from '../registry/index.ts';
import { PullError } from './puller.ts';

/** Largest config blob read into memory; Docker Hub's largest configs are well under 1 MiB. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface RemoteOptions {
  /** `os/arch[/variant]`: follow an index to this platform's manifest. */
  readonly platform?: string | Platform;
  readonly signal?: AbortSignal;
}

/** What a reference points at, and, for a platform, the manifest chosen from its index. */
export interface RemoteResolution {
  /** The full normalized reference (`docker.io/library/busybox:latest`). */
  readonly name: string;
  /** The index or manifest the reference points at. */
  readonly descriptor: Descriptor;
  readonly via: 'HEAD' | 'GET';
  /** With a platform: the manifest for it (the top descriptor itself when it is a manifest). */
  readonly platformManifest?: Descriptor;
  /** With a platform: the platform as the index names the chosen child, else as asked. */
  readonly platform?: string;
}

export interface RemoteManifest {
  readonly name: string;
  readonly descriptor: Descriptor;
  /** The exact bytes the registry served, verified against `descriptor.digest`. */
  readonly bytes: Uint8Array;
  readonly document: ManifestDocument;
  readonly platform?: string;
}

export interface RemoteConfig {
  readonly name: string;
  /** The image manifest the config belongs to. */
  readonly manifest: Descriptor;
  readonly descriptor: Descriptor;
  /** The exact config bytes, verified against `descriptor.digest`. */
  readonly bytes: Uint8Array;
  readonly platform?: string;
}

function wanted(platform: string | Platform | undefined): Platform | undefined {
  if (platform === undefined) return undefined;
  return typeof platform === 'string' ? parsePlatform(platform) : platform;
}

function repoOf(ref: NamedReference): { registry: string; path: string } {
  return { registry: ref.domain, path: ref.path };
}

/** Runs a look-up, naming the image in its error as a pull does. */
async function naming<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof PullError ? err : new PullError(name, err);
  }
}

/**
 * Follows an index down to the manifest for `platform` (nested indexes included, within the
 * walk's limits), fetching each index by digest. A manifest is its own answer.
 */
async function followPlatform(
  client: RegistryClient,
  ref: NamedReference,
  top: Descriptor,
  topDocument: ManifestDocument | undefined,
  platform: Platform,
  signal: AbortSignal | undefined,
): Promise<{ descriptor: Descriptor; document: ManifestDocument | undefined; platform: string }> {
  const name = ref.toString();
  let chosen: { descriptor: Descriptor; document: ManifestDocument | undefined } = {
    descriptor: top,
    document: topDocument,
  };
  await walkImage(
    [top],
    async (descriptor, step) => {
      const known = step.depth === 0 ? topDocument : undefined;
      if (!isIndexMediaType(descriptor.mediaType)) {
        chosen = { descriptor, document: known };
        return [];
      }
      const document =
        known ??
        (
          await client.getManifest(repoOf(ref), descriptor.digest, {
            descriptor,
            ...(signal !== undefined && { signal }),
          })
        ).document;
      chosen = { descriptor, document };
      if (document.kind !== 'index') return [];
      const documents = document.index.manifests.filter((c) => isDocumentMediaType(c.mediaType));
      const picked = forPlatform(() => documents, platform)(document);
      if (picked.length === 0) throw new PlatformNotFoundError(name, platform, describeAvailable(documents));
      return picked;
    },
    signal === undefined ? {} : { signal },
  );
  const shown = chosen.descriptor.platform === undefined ? platform : chosen.descriptor.platform;
  return { ...chosen, platform: formatPlatform(shown) };
}

/** What `image` points at now; with `platform`, also the manifest for that platform. */
export function resolveRemote(
  client: RegistryClient,
  image: string,
  options: RemoteOptions = {},
): Promise<RemoteResolution> {
  const ref = parseDockerRef(image);
  const name = ref.toString();
  return naming(name, async () => {
    const found = await client.resolve(
      repoOf(ref),
      ref.digest ?? ref.tag ?? 'latest',
      options.signal === undefined ? {} : { signal: options.signal },
    );
    const platform = wanted(options.platform);
    if (platform === undefined) return { name, descriptor: found.descriptor, via: found.via };
    const picked = await followPlatform(
      client,
      ref,
      found.descriptor,
      found.manifest?.document,
      platform,
      options.signal,
    );
    return {
      name,
      descriptor: found.descriptor,
      via: found.via,
      platformManifest: picked.descriptor,
      platform: picked.platform,
    };
  });
}

/**
 * The manifest or index `image` points at, byte for byte; with `platform`, the manifest for it
 * (an index is followed, a manifest is returned as is).
 */
export function fetchRemoteManifest(
  client: RegistryClient,
  image: string,
  options: RemoteOptions = {},
): Promise<RemoteManifest> {
  const ref = parseDockerRef(image);
  const name = ref.toString();
  return naming(name, async () => {
    const call = options.signal === undefined ? {} : { signal: options.signal };
    const found = await client.resolve(repoOf(ref), ref.digest ?? ref.tag ?? 'latest', call);
    let descriptor = found.descriptor;
    let document = found.manifest?.document;
    let bytes = found.manifest?.bytes;
    let platformText: string | undefined;
    const platform = wanted(options.platform);
    if (platform !== undefined) {
      const picked = await followPlatform(client, ref, descriptor, document, platform, options.signal);
      if (picked.descriptor.digest !== descriptor.digest) {
        descriptor = picked.descriptor;
        document = undefined;
        bytes = undefined;
      }
      platformText = picked.platform;
    }
    if (bytes === undefined || document === undefined) {
      const fetched = await client.getManifest(repoOf(ref), descriptor.digest, { ...call, descriptor });
      bytes = fetched.bytes;
      document = fetched.document;
    }
    return { name, descriptor, bytes, document, ...(platformText !== undefined && { platform: platformText }) };
  });
}

/** A sink that keeps a small blob (a config) in memory, refusing more than `limit` bytes. */
export class MemoryBlobSink implements BlobSink {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  get offset(): number {
    return this.size;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.size + chunk.byteLength > this.limit)
      return Promise.reject(new KimgError('ErrBlobTooLarge', `more than ${this.limit} bytes`));
    this.chunks.push(Buffer.from(chunk));
    this.size += chunk.byteLength;
    return Promise.resolve();
  }

  reset(): Promise<void> {
    this.chunks = [];
    this.size = 0;
    return Promise.resolve();
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/**
 * The config blob of `image` (for `platform`, default this machine's, when it is an index),
 * read into memory (at most {@link MAX_CONFIG_BYTES}) and verified against its digest.
 */
export function fetchRemoteConfig(
  client: RegistryClient,
  image: string,
  options: RemoteOptions = {},
): Promise<RemoteConfig> {
  const name = parseDockerRef(image).toString();
  return naming(name, async () => {
    const manifest = await fetchRemoteManifest(client, image, {
      ...options,
      platform: options.platform ?? hostPlatform(),
    });
    if (manifest.document.kind !== 'manifest')
      throw new KimgError('ErrManifestInvalid', `${name}: ${manifest.descriptor.digest} is an index, not an image`);
    const config = manifest.document.manifest.config;
    if (config.size > MAX_CONFIG_BYTES) {
      throw new KimgError(
        'ErrBlobTooLarge',
        `${name}: the config ${config.digest} declares ${config.size} bytes, more than the limit of ${MAX_CONFIG_BYTES}; not fetched`,
      );
    }
    const sink = new MemoryBlobSink(config.size);
    await client.fetchBlob(repoOf(parseDockerRef(image)), config, sink, {
      ...(options.signal !== undefined && { signal: options.signal }),
    });
    const bytes = sink.bytes();
    // fetchBlob verifies by default; checked again here because this answer leaves the process.
    const verifier = new DigestVerifier(config.digest, config.size);
    verifier.update(bytes);
    verifier.finish();
    return {
      name,
      manifest: manifest.descriptor,
      descriptor: config,
      bytes,
      ...(manifest.platform !== undefined && { platform: manifest.platform }),
    };
  });
}
