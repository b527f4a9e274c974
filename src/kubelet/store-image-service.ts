/**
 * The image service over kimg's own runtime pieces: the OCI-layout store for what is present and
 * one Puller (one registry client: connections, tokens, learned challenges) for the node, opened
 * at the first pull. Each pull brings exactly one credential (or none) on the call, sent only to
 * the registry itself, never to a mirror. imageRef = the digest of the stored index or manifest,
 * so two names of the same content share an imageRef (as two tags of one image do in the CRI).
 * Like CRI-O, connection failures and 5xx answers are reported as `RegistryUnavailable: …`, which
 * the image manager turns into the `RegistryUnavailable` waiting reason.
 */
import type { BasicCredential } from '../credentials/index.ts';
import { KimgError, isKimgError } from '../errors/index.ts';
import {
  PlatformNotFoundError,
  WalkLimitError,
  childrenOf,
  describeAvailable,
  forPlatform,
  formatPlatform,
  isIndexMediaType,
  manifestBlobs,
  parsePlatform,
  selectPlatform,
  walkImage,
  type Descriptor,
  type Platform,
} from '../oci/index.ts';
import {
  MemoryBlobSink,
  Puller,
  describeStoredImage,
  storedName,
  toClientCredential,
  type PullEventSink,
  type PullOptions,
  type PullerOptions,
} from '../pull/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import { credentialIdentity, type CallOptions, type EventSink } from '../registry/index.ts';
import { splitImageName, type ImageRecord, type Store } from '../store/index.ts';
import type { ImageInfo, ImageResolver, ImageService, PullImageOptions, ResolvedImage } from './image-service.ts';

export interface StoreImageServiceOptions {
  readonly store: Store;
  /** Everything a Puller takes but the store and credentials (hosts, CAs, concurrency, client,
   * or an existing `registry` client to share). */
  readonly puller?: Omit<PullerOptions, 'store' | 'credentials'>;
  /** The node's platform, `os/arch[/variant]`; default the host's. */
  readonly platform?: string;
  readonly onPullEvent?: PullEventSink;
  /** Every event of the registry client, HTTP exchanges included (`kimg ensure -v`). */
  readonly onRegistryEvent?: EventSink;
  /** Images never garbage collected (the kubelet's pinned images, e.g. the sandbox image). */
  readonly pinned?: readonly string[];
}

const UNAVAILABLE_CODES = new Set(['ErrConnection', 'ErrRegistryUnavailable']);
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The runtime's error as the kubelet will see its text. */
export function runtimeError(err: unknown): unknown {
  if (isKimgError(err) && UNAVAILABLE_CODES.has(err.code))
    return new KimgError(err.code, `RegistryUnavailable: ${err.message}`, { cause: err });
  return err;
}

/**
 * The `ImageService` over kimg's own pieces: the OCI-layout store for what is on the node and
 * one shared registry client for pulls. Each pull brings at most one credential, sent to the
 * registry itself, never to a mirror; the imageRef is the digest of the stored index or manifest.
 * Connection failures and 5xx answers are reported as `RegistryUnavailable: …`.
 */
export class StoreImageService implements ImageService, ImageResolver {
  readonly store: Store;
  readonly platform: string | undefined;
  readonly #options: StoreImageServiceOptions;
  readonly #pinned: Set<string>;
  #sharedPuller: Puller | undefined;

  constructor(options: StoreImageServiceOptions) {
    this.store = options.store;
    this.platform = options.platform;
    this.#options = options;
    this.#pinned = new Set((options.pinned ?? []).map((name) => storedName(name)));
  }

  async getImageRef(image: string): Promise<string> {
    const record = await this.store.getImage(storedName(image));
    return record?.descriptor.digest ?? '';
  }

  async pullImage(
    image: string,
    credential: BasicCredential | undefined,
    options: PullImageOptions = {},
  ): Promise<string> {
    try {
      const result = await this.#puller().pull(image, {
        ...(this.platform !== undefined && { platform: this.platform }),
        ...(options.signal !== undefined && { signal: options.signal }),
        ...(this.#options.onPullEvent !== undefined && { onEvent: this.#options.onPullEvent }),
        ...this.#credentials(credential),
      });
      return result.descriptor.digest;
    } catch (err) {
      throw runtimeError(err);
    }
  }

  /** Closes the node's registry connections; a later pull opens new ones. */
  async close(): Promise<void> {
    const puller = this.#sharedPuller;
    this.#sharedPuller = undefined;
    await puller?.close();
  }

  async getImageSize(image: string): Promise<number> {
    const record = await this.store.getImage(storedName(image));
    if (record === undefined) return 0;
    try {
      return (await describeStoredImage(this.store, record)).size;
    } catch {
      return 0;
    }
  }

  async listImages(): Promise<ImageInfo[]> {
    const byId = new Map<string, ImageRecord[]>();
    for (const record of await this.store.listImages()) {
      const list = byId.get(record.descriptor.digest) ?? [];
      list.push(record);
      byId.set(record.descriptor.digest, list);
    }
    const images: ImageInfo[] = [];
    for (const [id, records] of byId) {
      const repoTags = new Set<string>();
      const repoDigests = new Set<string>();
      for (const record of records) {
        const parts = record.name === undefined ? undefined : splitImageName(record.name);
        if (parts === undefined || record.name === undefined) continue;
        if (parts.tag !== undefined && parts.digest === undefined) repoTags.add(record.name);
        repoDigests.add(`${parts.repository}@${id}`);
      }
      let size = 0;
      const first = records[0];
      if (first !== undefined)
        size = await describeStoredImage(this.store, first).then(
          (d) => d.size,
          () => 0,
        );
      const pinned = records.some((r) => r.name !== undefined && this.#pinned.has(r.name));
      images.push({ id, repoTags: [...repoTags], repoDigests: [...repoDigests], size, ...(pinned && { pinned }) });
    }
    return images;
  }

  async removeImage(imageRef: string): Promise<void> {
    for (const record of await this.store.listImages()) {
      if (record.descriptor.digest !== imageRef) continue;
      const name = record.name ?? record.refName;
      if (name !== undefined) await this.store.removeImage(name);
    }
  }

  /** The digest and platforms a reference points at now: manifests and the config only. */
  async resolveImage(
    image: string,
    credential: BasicCredential | undefined,
    options: { platform: string; signal?: AbortSignal },
  ): Promise<ResolvedImage> {
    const ref = parseDockerRef(image);
    const name = ref.toString();
    const repo = { registry: ref.domain, path: ref.path };
    const { credentials } = this.#credentials(credential);
    const call: CallOptions = {
      ...(options.signal !== undefined && { signal: options.signal }),
      ...(credentials !== undefined && { credentials }),
    };
    const want = parsePlatform(options.platform);
    const puller = this.#puller();
    try {
      const found = await puller.client.resolve(repo, ref.digest ?? ref.tag ?? 'latest', call);
      const top = found.descriptor;
      let platforms: string[] = [];
      let resolved: ResolvedImage | undefined;
      const pick = forPlatform(childrenOf, want);
      // Down the chosen platform's path, one bounded walk (the nesting limit pull enforces).
      const visit = async (descriptor: Descriptor): Promise<readonly Descriptor[]> => {
        const manifest = await puller.client.getManifest(repo, descriptor.digest, { ...call, descriptor });
        if (manifest.document.kind === 'index') {
          platforms = describeAvailable(manifest.document.index.manifests);
          const chosen = pick(manifest.document);
          if (chosen.length === 0) throw new PlatformNotFoundError(name, want, platforms);
          return chosen;
        }
        const blobs = manifestBlobs(manifest.document.manifest);
        const size = manifest.bytes.byteLength + blobs.reduce((sum, b) => sum + b.size, 0);
        const configPlatform = isIndexMediaType(top.mediaType)
          ? undefined
          : await this.#configPlatform(puller, repo, manifest.document.manifest.config, call);
        if (configPlatform !== undefined) platforms = [formatPlatform(configPlatform)];
        const matches =
          configPlatform === undefined || selectPlatform([{ platform: configPlatform }], want) !== undefined;
        resolved = {
          digest: top.digest,
          mediaType: top.mediaType,
          platforms,
          platformDigest: matches ? descriptor.digest : undefined,
          size,
        };
        return [];
      };
      try {
        await walkImage([top], visit);
      } catch (err) {
        if (err instanceof WalkLimitError) throw new WalkLimitError(err.limit, `${name}: ${err.message}`, err.digest);
        throw err;
      }
      if (resolved === undefined) throw new KimgError('ErrManifestInvalid', `${name}: no image manifest found`);
      return resolved;
    } catch (err) {
      throw runtimeError(err);
    }
  }

  async #configPlatform(
    puller: Puller,
    repo: { registry: string; path: string },
    config: Descriptor,
    call: CallOptions,
  ): Promise<Platform | undefined> {
    if (config.size > MAX_CONFIG_BYTES) return undefined;
    const sink = new MemoryBlobSink(config.size);
    try {
      await puller.client.fetchBlob(repo, config, sink, call);
      const parsed = JSON.parse(sink.bytes().toString('utf8')) as {
        os?: unknown;
        architecture?: unknown;
        variant?: unknown;
      };
      if (typeof parsed.os !== 'string' || typeof parsed.architecture !== 'string') return undefined;
      return {
        os: parsed.os,
        architecture: parsed.architecture,
        ...(typeof parsed.variant === 'string' && parsed.variant !== '' && { variant: parsed.variant }),
      };
    } catch {
      return undefined;
    }
  }

  #puller(): Puller {
    if (this.#sharedPuller === undefined) {
      this.#sharedPuller = new Puller({ ...this.#options.puller, store: this.store });
      if (this.#options.onRegistryEvent !== undefined) this.#sharedPuller.client.listen(this.#options.onRegistryEvent);
    }
    return this.#sharedPuller;
  }

  /** The pull's one credential as per-call credentials (never for a mirror), and the key under
   * which pulls of one image with the same credential share their work. */
  #credentials(credential: BasicCredential | undefined): Pick<PullOptions, 'credentials' | 'credentialKey'> {
    if (credential === undefined) return {};
    const client = toClientCredential(credential);
    return {
      credentials: async (_host, context) => (context.endpoint.mirror === true ? undefined : client),
      credentialKey: credentialIdentity(client),
    };
  }
}
