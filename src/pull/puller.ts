import { stat } from 'node:fs/promises';
import { VerifyError } from '../digest/index.ts';
import { KimgError } from '../errors/index.ts';
import {
  WalkLimitError,
  childrenOf,
  forPlatform,
  isDocumentMediaType,
  manifestBlobs,
  parseManifestDocument,
  type Descriptor,
  type ManifestDocument,
  type Platform,
  PlatformNotFoundError,
  describeAvailable,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  walkImage,
  type Children,
} from '../oci/index.ts';
import { parseDockerRef, type NamedReference } from '../reference/index.ts';
import type { BlobSink, CallOptions, CredentialSource, RegistryClient, RegistryEvent } from '../registry/index.ts';
import { SingleFlight } from '../signals/index.ts';
import { StoreError, isNoSpace, openStore, type Ingest, type Store } from '../store/index.ts';
import type { PullEvent, PullEventSink } from './events.ts';
import { openRegistry, type RegistryAccessOptions } from './registry-access.ts';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface PullerOptions extends Omit<RegistryAccessOptions, 'onEvent'> {
  /** The store, or its directory; default the embedded default store (`openStore()`). */
  readonly store?: Store | string;
  /** An existing client to share (connections, tokens, challenges, back-off); the access
   * options (`hosts`, `caPems`, `credentials`, `client`) are then ignored, and `close()` leaves
   * the client open for its owner. Default: a client of its own from `openRegistry`. */
  readonly registry?: RegistryClient;
  /** Blobs downloaded at once per pull; default 3, as containerd (measured on 2 cores: 2–3 streams
   * beat 4 and 8, which only add contention). */
  readonly concurrency?: number;
  /** No body bytes for this long: drop the connection and resume with Range (default 60 s). */
  readonly stallTimeoutMs?: number;
}

export interface PullOptions {
  /** `os/arch[/variant]`; default the host's. */
  readonly platform?: string | Platform;
  /** Keep every platform of an index. */
  readonly allPlatforms?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: PullEventSink;
  /** Credentials for this pull only, instead of the Puller's (see `CallOptions.credentials`). */
  readonly credentials?: CredentialSource;
  /**
   * Stands for `credentials` when pulls of one image share work: a pull with its own
   * credentials joins only a pull with the same key (e.g. a hash of the credential), and
   * without a key it joins none.
   */
  readonly credentialKey?: string;
}

export interface PulledManifest {
  readonly digest: string;
  readonly platform?: string;
}

export interface PullResult {
  /** The full normalized reference stored (`docker.io/library/busybox:latest`). */
  readonly name: string;
  /** The top-level descriptor: the index or manifest the reference points at. */
  readonly descriptor: Descriptor;
  readonly manifests: readonly PulledManifest[];
  /** Blobs (configs and layers) the image needs, and how many of them were downloaded now. */
  readonly blobs: number;
  readonly blobsFetched: number;
  readonly bytesReceived: number;
  /** Nothing was downloaded: the image was complete in the store. */
  readonly upToDate: boolean;
  readonly ms: number;
}

export interface ResolveResult {
  readonly name: string;
  readonly descriptor: Descriptor;
  readonly via: 'HEAD' | 'GET';
}

/** A pull that failed, naming the image; `cause` is the typed error underneath. */
export class PullError extends KimgError<string> {
  readonly image: string;

  constructor(image: string, cause: unknown) {
    const inner = cause instanceof Error ? cause.message : String(cause);
    const code = cause instanceof KimgError ? cause.code : 'ErrPull';
    super(code, inner.includes(image) ? inner : `pulling ${image}: ${inner}`, { cause });
    this.image = image;
  }
}

/** A blob that found no room in the store: names the store, what is kept, and what to do. */
function storeFull(store: Store, blob: Descriptor, kept: string, cause: unknown): StoreError {
  return new StoreError(
    'ErrStoreFull',
    `no space left on the file system of the image store ${store.root} while writing ${blob.digest}: ${kept} in ${store.root}/ingest for the next pull to resume; free space (kimg rmi, kimg gc) and pull again`,
    { store: store.root, digest: blob.digest, cause },
  );
}

interface Plan {
  readonly manifests: PulledManifest[];
  readonly blobs: Map<string, Descriptor>;
}

/**
 * Pulls images into an OCI layout: resolve the tag (one HEAD), fetch manifests by digest, then
 * the blobs that are missing, in parallel, each verified before it is committed. An image whose
 * content is all present costs one request by tag and none by digest. Two pulls of the same
 * image in one Puller share the work.
 */
export class Puller {
  readonly client: RegistryClient;
  private readonly ownsClient: boolean;
  private readonly stopListening: () => void;
  private readonly storePromise: Promise<Store>;
  private readonly concurrency: number;
  private readonly stallTimeoutMs: number | undefined;
  /** Pulls in progress, shared by every caller pulling the same image and platforms; the last
   * caller to give up hears of it only once the work has stopped. */
  private readonly flights = new SingleFlight<PullResult>({ settleBeforeLastLeaves: true });
  /** The event sinks of each pull in progress: a caller sees the events of the pull it joined. */
  private readonly listeners = new Map<string, Set<PullEventSink>>();
  /** Numbers pulls with their own credentials and no key, which share with nobody. */
  private unshared = 0;

  constructor(options: PullerOptions = {}) {
    this.storePromise = typeof options.store === 'object' ? Promise.resolve(options.store) : openStore(options.store);
    this.concurrency = Math.max(1, options.concurrency ?? 3);
    this.stallTimeoutMs = options.stallTimeoutMs;
    this.ownsClient = options.registry === undefined;
    this.client = options.registry ?? openRegistry(options);
    this.stopListening = this.client.listen((event) => this.forwardRegistryEvent(event));
  }

  store(): Promise<Store> {
    return this.storePromise;
  }

  /** Stops listening to the client, and closes it when it is the Puller's own. */
  async close(): Promise<void> {
    this.stopListening();
    if (this.ownsClient) await this.client.close();
  }

  /** The digest a reference points at now, without downloading anything else. */
  async resolve(image: string, options: CallOptions = {}): Promise<ResolveResult> {
    const ref = parseDockerRef(image);
    const name = ref.toString();
    try {
      const found = await this.client.resolve(
        { registry: ref.domain, path: ref.path },
        ref.digest ?? ref.tag ?? 'latest',
        options,
      );
      return { name, descriptor: found.descriptor, via: found.via };
    } catch (err) {
      throw new PullError(name, err);
    }
  }

  /**
   * Pulls `image` into the store and records it under its full normalized name. A pull of an
   * image already being pulled by this Puller joins it; aborting one caller's signal abandons
   * only that caller, and the work stops when the last caller has aborted.
   */
  pull(image: string, options: PullOptions = {}): Promise<PullResult> {
    let ref: NamedReference;
    let want: string;
    try {
      ref = parseDockerRef(image);
      want = options.allPlatforms ? 'all' : formatPlatform(this.wantedPlatform(options.platform));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const name = ref.toString();
    if (options.signal?.aborted) return Promise.reject(new PullError(name, options.signal.reason));
    let key = `${name} ${want}`;
    if (options.credentials !== undefined) {
      key += options.credentialKey === undefined ? ` ${++this.unshared}` : ` key ${options.credentialKey}`;
    }
    const { result } = this.flights.run(
      key,
      (signal) => {
        const listeners = new Set<PullEventSink>();
        this.listeners.set(key, listeners);
        const emit = (event: PullEvent) => {
          for (const listener of listeners) listener(event);
        };
        return this.pullOnce(ref, options, signal, emit).finally(() => {
          if (this.listeners.get(key) === listeners) this.listeners.delete(key);
        });
      },
      options.signal,
    );
    return this.listening(this.listeners.get(key), name, options, result);
  }

  /** One caller's view of a shared pull: its events while it waits, its own abort as a PullError. */
  private async listening(
    listeners: Set<PullEventSink> | undefined,
    name: string,
    options: PullOptions,
    result: Promise<PullResult>,
  ): Promise<PullResult> {
    const { onEvent, signal } = options;
    if (onEvent !== undefined) listeners?.add(onEvent);
    try {
      return await result;
    } catch (err) {
      throw signal?.aborted === true && err === signal.reason ? new PullError(name, err) : err;
    } finally {
      if (onEvent !== undefined) listeners?.delete(onEvent);
    }
  }

  private wantedPlatform(platform: string | Platform | undefined): Platform {
    if (platform === undefined) return hostPlatform();
    return typeof platform === 'string' ? parsePlatform(platform) : platform;
  }

  /** Registry events (retries, warnings) belong to a host, not to one pull: every caller of a
   * pull in progress sees them. */
  private broadcast(event: PullEvent): void {
    for (const listeners of this.listeners.values()) for (const listener of listeners) listener(event);
  }

  private forwardRegistryEvent(event: RegistryEvent): void {
    if (event.type === 'retrying') {
      this.broadcast({
        type: 'retrying',
        host: event.host,
        reason: event.reason,
        attempt: event.attempt,
        delayMs: event.delayMs,
      });
    } else if (event.type === 'warning') {
      this.broadcast({ type: 'warning', message: `${event.host}: ${event.message}` });
    } else if (event.type === 'resuming') {
      this.broadcast({
        type: 'retrying',
        host: event.host,
        reason: `resuming ${event.digest} at byte ${event.offset}: ${event.reason}`,
        attempt: event.attemptsWithoutProgress,
        delayMs: 0,
      });
    }
  }

  private async pullOnce(
    ref: NamedReference,
    options: PullOptions,
    signal: AbortSignal,
    emit: PullEventSink,
  ): Promise<PullResult> {
    const started = Date.now();
    const name = ref.toString();
    const store = await this.storePromise;
    const repo = { registry: ref.domain, path: ref.path };
    const call: CallOptions = {
      signal,
      ...(options.credentials !== undefined && { credentials: options.credentials }),
    };
    const platform = options.allPlatforms ? undefined : this.wantedPlatform(options.platform);
    try {
      emit({ type: 'resolving', image: name });
      let top: Descriptor | undefined;
      let via: 'HEAD' | 'GET' | 'store' = 'store';
      if (ref.digest !== undefined) top = await this.storedDescriptor(store, ref.digest);
      if (top === undefined) {
        const found = await this.client.resolve(repo, ref.digest ?? ref.tag ?? 'latest', call);
        top = found.descriptor;
        via = found.via;
        if (found.manifest !== undefined && !(await store.hasBlob(top.digest))) {
          await store.putBlob(top, found.manifest.bytes);
        }
      }
      emit({ type: 'resolved', image: name, digest: top.digest, mediaType: top.mediaType, via });

      const plan = await this.planManifest(store, repo, name, top, platform, call, emit);

      const missing: Descriptor[] = [];
      for (const blob of plan.blobs.values()) {
        if (await store.hasBlob(blob.digest)) emit({ type: 'blob-exists', digest: blob.digest, size: blob.size });
        else missing.push(blob);
      }
      const received = await this.fetchBlobs(store, repo, missing, call, emit);
      await store.setImage(name, top);
      await store.releaseClaims([top.digest, ...plan.manifests.map((m) => m.digest), ...plan.blobs.keys()]);
      const ms = Date.now() - started;
      emit({ type: 'done', image: name, digest: top.digest, bytesReceived: received, ms });
      return {
        name,
        descriptor: top,
        manifests: plan.manifests,
        blobs: plan.blobs.size,
        blobsFetched: missing.length,
        bytesReceived: received,
        upToDate: missing.length === 0 && via !== 'GET',
        ms,
      };
    } catch (err) {
      if (err instanceof PullError) throw err;
      // A manifest, claim or index.json write that found no room (a blob's says more, above).
      if (isNoSpace(err) && !(err instanceof StoreError && err.code === 'ErrStoreFull')) {
        throw new PullError(
          name,
          new StoreError(
            'ErrStoreFull',
            `no space left on the file system of the image store ${store.root}: ${(err as Error).message}; free space (kimg rmi, kimg gc) and pull again`,
            { store: store.root, cause: err },
          ),
        );
      }
      throw new PullError(name, err);
    }
  }

  /** The descriptor of a manifest already in the store, so a digest pull needs no request. */
  private async storedDescriptor(store: Store, digest: string): Promise<Descriptor | undefined> {
    if (!(await store.hasBlob(digest))) return undefined;
    const bytes = await store.readBlob(digest, MAX_MANIFEST_BYTES);
    const document = parseManifestDocument(bytes, { what: digest });
    return { mediaType: document.mediaType, digest, size: bytes.byteLength };
  }

  /** Reads a manifest from the store, or fetches, verifies and stores it. */
  private async manifest(
    store: Store,
    repo: { registry: string; path: string },
    name: string,
    descriptor: Descriptor,
    call: { signal?: AbortSignal },
  ): Promise<ManifestDocument> {
    const what = `${name} (${descriptor.digest})`;
    if (await store.hasBlob(descriptor.digest)) {
      const bytes = await store.readBlob(descriptor.digest, MAX_MANIFEST_BYTES);
      return parseManifestDocument(bytes, { what, descriptorMediaType: descriptor.mediaType });
    }
    const fetched = await this.client.getManifest(repo, descriptor.digest, { ...call, descriptor });
    await store.putBlob(descriptor, fetched.bytes);
    return fetched.document;
  }

  /**
   * The manifests and blobs of the image under `top`: one bounded walk (`walkImage`: each digest
   * once, the nesting and work limits gc and fsck apply too). With a platform, an index's best
   * child only (PlatformNotFoundError when none); without, every index or manifest child.
   */
  private async planManifest(
    store: Store,
    repo: { registry: string; path: string },
    name: string,
    top: Descriptor,
    platform: Platform | undefined,
    call: { signal?: AbortSignal },
    emit: PullEventSink,
  ): Promise<Plan> {
    const plan: Plan = { manifests: [], blobs: new Map() };
    const children: Children =
      platform === undefined
        ? (document) => childrenOf(document).filter((c) => isDocumentMediaType(c.mediaType))
        : forPlatform(childrenOf, platform);
    const visit = async (descriptor: Descriptor): Promise<readonly Descriptor[]> => {
      const document = await this.manifest(store, repo, name, descriptor, call);
      const platformText = descriptor.platform ? formatPlatform(descriptor.platform) : undefined;
      emit({
        type: 'manifest',
        image: name,
        digest: descriptor.digest,
        mediaType: document.mediaType,
        ...(platformText !== undefined && { platform: platformText }),
      });
      if (document.kind === 'manifest') {
        plan.manifests.push({
          digest: descriptor.digest,
          ...(platformText !== undefined && { platform: platformText }),
        });
        for (const blob of manifestBlobs(document.manifest)) plan.blobs.set(blob.digest, blob);
        return [];
      }
      const chosen = children(document);
      if (platform !== undefined && chosen.length === 0)
        throw new PlatformNotFoundError(name, platform, describeAvailable(document.index.manifests));
      return chosen;
    };
    try {
      await walkImage([top], visit);
    } catch (err) {
      if (err instanceof WalkLimitError) throw new WalkLimitError(err.limit, `${name}: ${err.message}`, err.digest);
      throw err;
    }
    return plan;
  }

  private async fetchBlobs(
    store: Store,
    repo: { registry: string; path: string },
    blobs: Descriptor[],
    call: CallOptions,
    emit: PullEventSink,
  ): Promise<number> {
    let received = 0;
    let next = 0;
    const failures: unknown[] = [];
    const commits: Promise<void>[] = [];
    const worker = async () => {
      while (next < blobs.length && failures.length === 0) {
        const blob = blobs[next++];
        if (blob === undefined) break;
        try {
          const { bytes, committed } = await this.fetchBlob(store, repo, blob, call, emit);
          received += bytes;
          commits.push(committed.catch((err: unknown) => void failures.push(err)));
        } catch (err) {
          failures.push(err);
        }
      }
    };
    for (const blob of blobs)
      emit({ type: 'blob-waiting', digest: blob.digest, size: blob.size, mediaType: blob.mediaType });
    await Promise.all(Array.from({ length: Math.min(this.concurrency, blobs.length) }, worker));
    await Promise.all(commits);
    if (failures.length > 0) throw failures[0];
    return received;
  }

  private async fetchBlob(
    store: Store,
    repo: { registry: string; path: string },
    blob: Descriptor,
    call: CallOptions,
    emit: PullEventSink,
  ): Promise<{ bytes: number; committed: Promise<void> }> {
    const started = Date.now();
    const ingest = await store
      .openIngest(blob, {
        source: `${repo.registry}/${repo.path}`,
        ...(call.signal !== undefined && { signal: call.signal }),
      })
      .catch((err: unknown) => {
        throw isNoSpace(err) ? storeFull(store, blob, 'nothing could be written', err) : err;
      });
    if (ingest.alreadyPresent) {
      emit({ type: 'blob-exists', digest: blob.digest, size: blob.size });
      return { bytes: 0, committed: Promise.resolve() };
    }
    if (ingest.offset > 0) emit({ type: 'blob-resumed', digest: blob.digest, size: blob.size, offset: ingest.offset });
    let bytesReceived = 0;
    let source = repo.registry;
    try {
      if (ingest.offset < blob.size) {
        const sink: BlobSink = {
          get offset() {
            return ingest.bytes;
          },
          write: (chunk) => ingest.write(chunk),
          take: (chunk) => ingest.take(chunk),
          reset: () => ingest.reset(),
        };
        const result = await this.client.fetchBlob(repo, blob, sink, {
          ...call,
          verify: false,
          ...(this.stallTimeoutMs !== undefined && { stallTimeoutMs: this.stallTimeoutMs }),
          onProgress: (p) => emit({ type: 'blob-progress', digest: blob.digest, size: blob.size, bytes: p.offset }),
        });
        bytesReceived = result.bytesReceived;
        source = new URL(result.endpoint).host || source;
      }
    } catch (err) {
      // A partial download is kept for the next pull to resume, unless nothing arrived.
      await ingest.abort({ keepPartial: ingest.bytes > 0 }).catch(() => undefined);
      if (isNoSpace(err)) throw await keptAfterNoSpace(store, blob, ingest, err);
      throw err;
    }
    // Verifying and syncing to disk take a while for a large blob: the download slot goes to
    // the next blob meanwhile.
    const committed = (async () => {
      emit({ type: 'blob-verifying', digest: blob.digest, size: blob.size });
      try {
        await ingest.commit();
      } catch (err) {
        if (isNoSpace(err)) throw await keptAfterNoSpace(store, blob, ingest, err);
        // A failed commit has already closed the ingest (and, but for ENOSPC, removed its bytes).
        if (err instanceof VerifyError) {
          const what = blob.mediaType.includes('config') ? 'config' : 'layer';
          throw new KimgError(
            err.code,
            `${what} ${blob.digest} from ${source}: ${err.message}; the downloaded bytes were discarded`,
            { cause: err },
          );
        }
        throw err;
      }
      emit({ type: 'blob-done', digest: blob.digest, size: blob.size, bytesReceived, ms: Date.now() - started });
    })();
    return { bytes: bytesReceived, committed };
  }
}

/** ErrStoreFull naming what reached the disk (less than what arrived) and stays for the next pull. */
async function keptAfterNoSpace(store: Store, blob: Descriptor, ingest: Ingest, err: unknown): Promise<StoreError> {
  const partial = ingest.partialPath;
  const kept = partial === undefined ? 0 : ((await stat(partial).catch(() => undefined))?.size ?? 0);
  return storeFull(store, blob, `${kept} of its ${blob.size} bytes are kept`, err);
}
