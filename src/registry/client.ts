/**
 * The registry client: ping, resolve, manifests and blobs over an ordered list of endpoints per
 * registry (mirrors first, as the hosts configuration says), with shared connections, tokens,
 * back-off and per-host concurrency across every operation of one client.
 */
import { DigestVerifier, VerifyError, isValidDigest } from '../digest/index.ts';
import { KimgError } from '../errors/index.ts';
import { MediaType, type Descriptor } from '../oci/index.ts';
import { Authenticator, type AuthOptions, type PingResult } from './auth.ts';
import { BlobTransfer, fetchBlobOnEndpoint, type FetchBlobOptions, type FetchBlobResult } from './blobs.ts';
import { MANIFEST_LIMIT } from './body.ts';
import { createContext, type OperationContext } from './context.ts';
import {
  checkReference,
  defaultEndpoints,
  normalizeRepository,
  prepareEndpoint,
  isValidRegistryName,
  type PreparedEndpoint,
} from './endpoints.ts';
import { RegistryError, factsOf } from './errors.ts';
import {
  getManifestOnEndpoint,
  resolveOnEndpoint,
  type ManifestDeps,
  type ManifestResult,
  type ResolveResult,
} from './manifests.ts';
import { systemClock } from './retry.ts';
import {
  listReferrersOnEndpoint,
  referrersOf,
  referrersTag,
  MAX_REFERRERS,
  type ListReferrersOptions,
  type ReferrerList,
} from './referrers.ts';
import { listTagsOnEndpoint, type ListTagsOptions, type TagList } from './tags.ts';
import { TokenCache } from './token.ts';
import {
  blobExistsOnEndpoint,
  pushBlobOnEndpoint,
  pushScope,
  putManifestOnEndpoint,
  type BlobSource,
  type PushBlobOptions,
  type PushBlobResult,
  type PutManifestResult,
  type UploadDeps,
} from './upload.ts';
import { Transport, type TransportOptions } from './transport.ts';
import type {
  BlobSink,
  CallOptions,
  Capability,
  Clock,
  Endpoint,
  EventSink,
  RegistryEvent,
  RepositoryRef,
} from './types.ts';

export type { CallOptions } from './types.ts';

export interface RegistryClientOptions extends TransportOptions, AuthOptions {
  /** Endpoints per registry name, in the order to try them; default `https://<registry>`
   * (`https://registry-1.docker.io` for Docker Hub). */
  readonly endpoints?: (
    registry: string,
    request: EndpointRequest,
  ) => readonly Endpoint[] | Promise<readonly Endpoint[]>;
  /** Largest manifest or index read; default 4 MiB. */
  readonly maxManifestBytes?: number;
  readonly onEvent?: EventSink;
}

/** What the endpoints are asked for: mirrors may depend on the repository (registries.conf
 * prefixes) and on whether content is addressed by digest (digest-only mirrors). */
export interface EndpointRequest {
  /** The repository path as the reference names it (`library/nginx`); empty for a ping. */
  readonly repository: string;
  /** Content addressed by digest: manifests and blobs by digest, and digest resolves. */
  readonly byDigest: boolean;
}

export interface GetManifestOptions extends CallOptions {
  /** The descriptor that pointed at the manifest: its size and mediaType must match. */
  readonly descriptor?: Descriptor;
}

/**
 * The registry client: one object per process (or per configuration) that resolves tags to
 * digests, fetches manifests and streams blobs from an ordered list of endpoints per registry
 * (mirrors first, as the hosts configuration says). It owns the connection pools, the
 * `Authenticator` (challenges and tokens), back-off and per-host concurrency, shared by every
 * call; each call may bring its own credentials. Every byte it returns is verified against the
 * digest and size that named it, and every failure is a typed `KimgError` naming the registry
 * and the image; it also uploads (`pushBlob`, `putManifest`). `close()` ends the pools; no call
 * may follow it.
 */
export class RegistryClient {
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly clock: Clock;
  private readonly endpointCache = new Map<string, Promise<PreparedEndpoint[]>>();
  private readonly warned = new Set<string>();
  private readonly manifestDeps: ManifestDeps;
  private readonly uploadDeps: UploadDeps;

  /** Who hears the client's events: `options.onEvent` and every {@link listen}er. */
  private readonly listeners = new Set<EventSink>();
  private readonly emit: EventSink = (event) => {
    for (const listener of this.listeners) listener(event);
  };

  constructor(private readonly options: RegistryClientOptions = {}) {
    if (options.onEvent !== undefined) this.listeners.add(options.onEvent);
    this.clock = options.clock ?? systemClock;
    this.transport = new Transport({ ...options, onEvent: this.emit });
    this.auth = new Authenticator(this.transport, new TokenCache(this.clock), this.clock, options, this.emit);
    this.manifestDeps = {
      auth: this.auth,
      maxManifestBytes: options.maxManifestBytes ?? MANIFEST_LIMIT,
      now: () => this.clock.now(),
      onWarning: (host, text) => this.warn(host, text),
    };
    this.uploadDeps = { auth: this.auth, transport: this.transport, clock: this.clock };
  }

  /** `GET /v2/` on the registry's first reachable endpoint; the result is cached per endpoint. */
  async ping(registry: string, options: CallOptions = {}): Promise<PingResult> {
    if (!isValidRegistryName(registry))
      throw new RegistryError(
        'ErrInvalidArgument',
        `registry name ${JSON.stringify(registry.slice(0, 100))} is not a valid host[:port]`,
      );
    const ctx = createContext(`ping ${registry}`, { registry }, options);
    return this.onEndpoints({ registry, path: '' }, false, undefined, ctx, (ep) => this.auth.ping(ep, ctx));
  }

  /**
   * What a tag (or digest) points at: HEAD with all four manifest types accepted, its answer used
   * only with a valid `Docker-Content-Digest`, `Content-Length` and `Content-Type`; otherwise GET
   * and hash (the bytes are then returned too).
   */
  async resolve(repo: RepositoryRef | string, tagOrDigest: string, options: CallOptions = {}): Promise<ResolveResult> {
    const ref = normalizeRepository(repo);
    const reference = checkReference(ref, tagOrDigest);
    const shown = `${ref.registry}/${ref.path}${reference.kind === 'tag' ? ':' : '@'}${reference.value}`;
    const ctx = createContext(
      `resolve ${shown}`,
      { registry: ref.registry, repository: ref.path, reference: reference.value },
      options,
    );
    // containerd: a digest needs only `pull` hosts, a tag needs `resolve`.
    const capability: Capability = reference.kind === 'tag' ? 'resolve' : 'pull';
    return this.onEndpoints(ref, reference.kind !== 'tag', capability, ctx, (ep, epRef) =>
      resolveOnEndpoint(ep, epRef, reference, ctx, this.manifestDeps),
    );
  }

  /**
   * The repository's tags (`GET /v2/<name>/tags/list`, following `Link` pages), from the first
   * endpoint that may resolve tags; bounded by `options` (the answer says when it was cut).
   */
  async listTags(repo: RepositoryRef | string, options: ListTagsOptions = {}): Promise<TagList> {
    const ref = normalizeRepository(repo);
    const ctx = createContext(
      `list tags of ${ref.registry}/${ref.path}`,
      { registry: ref.registry, repository: ref.path },
      options,
    );
    return this.onEndpoints(ref, false, 'resolve', ctx, (ep, epRef) =>
      listTagsOnEndpoint(ep, epRef, ctx, this.manifestDeps, options),
    );
  }

  /**
   * The referrers of `digest` in `repo` (OCI 1.1): the referrers API, every page, bounded by
   * `options`; on a registry without it (404), the fallback tag `sha256-<hex>`'s index, an absent
   * tag meaning none. A listing or tag that is not an image index is an error naming it.
   */
  async listReferrers(
    repo: RepositoryRef | string,
    digest: string,
    options: ListReferrersOptions = {},
  ): Promise<ReferrerList> {
    const ref = normalizeRepository(repo);
    checkReference(ref, digest);
    if (!isValidDigest(digest))
      throw new RegistryError('ErrInvalidArgument', `listReferrers needs a digest, got ${JSON.stringify(digest)}`);
    const ctx = createContext(
      `list referrers of ${ref.registry}/${ref.path}@${digest}`,
      { registry: ref.registry, repository: ref.path, reference: digest },
      options,
    );
    const listed = await this.onEndpoints(ref, true, 'pull', ctx, (ep, epRef) =>
      listReferrersOnEndpoint(ep, epRef, digest, ctx, this.manifestDeps, options),
    );
    if (listed !== undefined) return listed;
    const tag = referrersTag(digest);
    let found: ResolveResult;
    try {
      found = await this.resolve(ref, tag, options);
    } catch (err) {
      if (err instanceof KimgError && (err.code === 'ErrManifestUnknown' || err.code === 'ErrNameUnknown'))
        return { manifests: [], via: 'tag', truncated: false, endpoint: '' };
      throw err;
    }
    const manifest =
      found.manifest ??
      (await this.getManifest(ref, found.descriptor.digest, { ...options, descriptor: found.descriptor }));
    const all = referrersOf(manifest.bytes, ctx, ref.registry, `the referrers tag ${tag} (${found.descriptor.digest})`);
    const max = options.maxReferrers ?? MAX_REFERRERS;
    const unique = [...new Map(all.map((d) => [d.digest, d])).values()];
    return { manifests: unique.slice(0, max), via: 'tag', truncated: unique.length > max, endpoint: found.endpoint };
  }

  /**
   * Adds `referrer` to the fallback tag `sha256-<hex>` of `subject` in `repo` ("Pushing Manifests
   * with Subject" on a registry without the referrers API): the tag's index is read (none: a new
   * one), the descriptor appended unless its digest is listed, and the index `PUT` under the tag.
   * Returns whether the tag changed. Not atomic: two pushers at once may lose one's entry, as the
   * spec's schema allows.
   */
  async addToReferrersTag(
    repo: RepositoryRef | string,
    subject: string,
    referrer: Descriptor,
    options: CallOptions = {},
  ): Promise<boolean> {
    const ref = normalizeRepository(repo);
    const tag = referrersTag(subject);
    let index: { schemaVersion: number; mediaType?: string; manifests: Descriptor[] } = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [],
    };
    let found: ResolveResult | undefined;
    try {
      found = await this.resolve(ref, tag, options);
    } catch (err) {
      if (!(err instanceof KimgError && (err.code === 'ErrManifestUnknown' || err.code === 'ErrNameUnknown')))
        throw err;
    }
    if (found !== undefined) {
      const manifest =
        found.manifest ??
        (await this.getManifest(ref, found.descriptor.digest, { ...options, descriptor: found.descriptor }));
      const ctx = createContext(`update the referrers tag ${ref.registry}/${ref.path}:${tag}`, {}, options);
      const listed = referrersOf(manifest.bytes, ctx, ref.registry, `the referrers tag (${found.descriptor.digest})`);
      if (listed.some((d) => d.digest === referrer.digest)) return false;
      if (listed.length >= MAX_REFERRERS) {
        throw new RegistryError(
          'ErrUnsupported',
          `${ctx.description}: it lists ${listed.length} referrers already, the most kept is ${MAX_REFERRERS}`,
          { registry: ref.registry, repository: ref.path, reference: tag },
        );
      }
      // Whatever else the index carries (annotations) is kept.
      index = JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as typeof index;
    }
    index.manifests = [...index.manifests, referrer];
    const bytes = Buffer.from(JSON.stringify(index));
    await this.putManifest(ref, tag, bytes, index.mediaType ?? MediaType.OciIndex, options);
    return true;
  }

  /**
   * A manifest or index by digest: body capped while reading, bytes verified against the
   * digest, parsed strictly. A 404 falls back to `GET /blobs/<digest>`.
   */
  async getManifest(
    repo: RepositoryRef | string,
    digest: string,
    options: GetManifestOptions = {},
  ): Promise<ManifestResult> {
    const ref = normalizeRepository(repo);
    checkReference(ref, digest);
    if (!digest.includes(':'))
      throw new RegistryError(
        'ErrInvalidArgument',
        `getManifest needs a digest, got the tag ${JSON.stringify(digest)}`,
      );
    const descriptor = options.descriptor;
    const ctx = createContext(
      `fetch manifest ${ref.registry}/${ref.path}@${digest}`,
      { registry: ref.registry, repository: ref.path, reference: digest },
      options,
    );
    if (descriptor !== undefined) {
      if (descriptor.digest !== digest) {
        throw new RegistryError(
          'ErrInvalidArgument',
          `${ctx.description}: the descriptor is for ${descriptor.digest.slice(0, 200)}`,
          ctx.facts,
        );
      }
      if (descriptor.size > this.manifestDeps.maxManifestBytes) {
        throw new RegistryError(
          'ErrManifestTooLarge',
          `${ctx.description}: the descriptor declares ${descriptor.size} bytes, more than the limit of ${this.manifestDeps.maxManifestBytes}; not fetched`,
          { ...ctx.facts, expectedSize: descriptor.size },
        );
      }
    }
    return this.onEndpoints(ref, true, 'pull', ctx, (ep, epRef) =>
      getManifestOnEndpoint(ep, epRef, digest, descriptor, ctx, this.manifestDeps),
    );
  }

  /**
   * Streams a blob into `sink`, resuming from `sink.offset` with `Range`. The descriptor's
   * foreign `urls` are ignored; an embedded `data` field is used when it verifies.
   */
  async fetchBlob(
    repo: RepositoryRef | string,
    descriptor: Descriptor,
    sink: BlobSink,
    options: FetchBlobOptions = {},
  ): Promise<FetchBlobResult> {
    const ref = normalizeRepository(repo);
    if (typeof descriptor.digest !== 'string' || !isValidDigest(descriptor.digest)) {
      throw new RegistryError(
        'ErrInvalidArgument',
        `fetch blob from ${ref.registry}/${ref.path}: the descriptor's digest is not valid`,
        { registry: ref.registry, repository: ref.path },
      );
    }
    if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
      throw new RegistryError(
        'ErrInvalidArgument',
        `fetch blob ${descriptor.digest} from ${ref.registry}/${ref.path}: size ${String(descriptor.size)} is not a non-negative integer`,
      );
    }
    const ctx = createContext(
      `fetch blob ${descriptor.digest} (${descriptor.size} bytes) from ${ref.registry}/${ref.path}`,
      { registry: ref.registry, repository: ref.path, reference: descriptor.digest },
      options,
    );
    const transfer = new BlobTransfer(descriptor, sink, options);
    const result = (endpoint: string): FetchBlobResult => ({
      digest: descriptor.digest,
      size: descriptor.size,
      endpoint,
      resumes: transfer.resumes,
      bytesReceived: transfer.bytesReceived,
      verified: transfer.verify,
    });

    if (descriptor.data !== undefined && (await this.writeEmbedded(descriptor, transfer))) return result('data:');
    if (descriptor.size === 0) {
      await transfer.prepare();
      this.finishLocal(transfer, ctx);
      return result('data:');
    }
    const endpoint = await this.onEndpoints(ref, true, 'pull', ctx, async (ep, epRef) => {
      await fetchBlobOnEndpoint(ep, epRef, transfer, ctx, {
        auth: this.auth,
        clock: this.clock,
        onEvent: this.emit,
      });
      return ep.label;
    });
    return result(endpoint);
  }

  /**
   * Hears the client's events (retries, resumes, warnings, tokens) from now on, whichever caller
   * caused them: they belong to a host, not to one call. Returns the way to stop listening.
   */
  listen(sink: EventSink): () => void {
    const own = (event: RegistryEvent) => sink(event);
    this.listeners.add(own);
    return () => this.listeners.delete(own);
  }

  /** Whether `repo` holds the blob (`HEAD`, with push scope so one token serves an upload). */
  async hasBlob(repo: RepositoryRef | string, descriptor: Descriptor, options: CallOptions = {}): Promise<boolean> {
    const ref = normalizeRepository(repo);
    checkReference(ref, descriptor.digest);
    const ctx = createContext(
      `check blob ${descriptor.digest} in ${ref.registry}/${ref.path}`,
      { registry: ref.registry, repository: ref.path, reference: descriptor.digest },
      options,
    );
    const ep = await this.pushEndpoint(ref, ctx);
    return blobExistsOnEndpoint(ep, ref, descriptor, [pushScope(ref.path)], ctx, this.uploadDeps);
  }

  /**
   * Uploads a blob to `repo` unless it is there: `HEAD`, then a mount from `mountFrom` (same
   * registry) when given, else an upload that is hashed as it is sent and only committed when
   * the content matches. Pushes go to the registry itself, never to a mirror.
   */
  async pushBlob(
    repo: RepositoryRef | string,
    descriptor: Descriptor,
    source: BlobSource,
    options: PushBlobOptions = {},
  ): Promise<PushBlobResult> {
    const ref = normalizeRepository(repo);
    checkReference(ref, descriptor.digest);
    if (options.mountFrom !== undefined) checkReference({ registry: ref.registry, path: options.mountFrom }, 'latest');
    const ctx = createContext(
      `push blob ${descriptor.digest} (${descriptor.size} bytes) to ${ref.registry}/${ref.path}`,
      { registry: ref.registry, repository: ref.path, reference: descriptor.digest },
      options,
    );
    const ep = await this.pushEndpoint(ref, ctx);
    return pushBlobOnEndpoint(ep, ref, descriptor, source, ctx, this.uploadDeps, options);
  }

  /**
   * `PUT`s a manifest or index under a tag or its digest, with its exact bytes (so its digest
   * cannot change). The registry refuses it when something it references is missing.
   */
  async putManifest(
    repo: RepositoryRef | string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: CallOptions = {},
  ): Promise<PutManifestResult> {
    const ref = normalizeRepository(repo);
    const checked = checkReference(ref, reference);
    const shown = `${ref.registry}/${ref.path}${checked.kind === 'tag' ? ':' : '@'}${checked.value}`;
    const ctx = createContext(
      `push manifest ${shown}`,
      { registry: ref.registry, repository: ref.path, reference: checked.value },
      options,
    );
    const ep = await this.pushEndpoint(ref, ctx);
    return putManifestOnEndpoint(ep, ref, checked.value, bytes, mediaType, ctx, this.uploadDeps);
  }

  /** Where writes go: the registry's own endpoint (the first that is not a mirror). */
  private async pushEndpoint(ref: RepositoryRef, ctx: OperationContext): Promise<PreparedEndpoint> {
    const all = await this.endpointsFor(ref.registry, { repository: ref.path, byDigest: false });
    const ep = all.find((e) => !e.mirror);
    if (ep === undefined) {
      throw new RegistryError(
        'ErrNoEndpoint',
        `${ctx.description}: ${ref.registry} has only mirrors configured; pushes go to the registry itself`,
        ctx.facts,
      );
    }
    return ep;
  }

  /** Closes pooled connections; the client cannot be used afterwards. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  /** Writes a descriptor's embedded `data` when it decodes to exactly the declared content. */
  private async writeEmbedded(descriptor: Descriptor, transfer: BlobTransfer): Promise<boolean> {
    const data = descriptor.data ?? '';
    if (data.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return false;
    const bytes = Buffer.from(data, 'base64');
    if (bytes.byteLength !== descriptor.size) return false;
    const verifier = new DigestVerifier(descriptor.digest, descriptor.size);
    verifier.update(bytes);
    try {
      verifier.finish();
    } catch {
      return false;
    }
    await transfer.restart();
    if (bytes.byteLength > 0) await transfer.sink.write(bytes);
    return true;
  }

  private finishLocal(transfer: BlobTransfer, ctx: OperationContext): void {
    try {
      transfer.verifier?.finish();
    } catch (err) {
      if (err instanceof VerifyError)
        throw new RegistryError(err.code, `${ctx.description}: ${err.message}`, ctx.facts);
      throw err;
    }
  }

  private warn(host: string, text: string): void {
    const key = `${host}\u0000${text}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.emit({ type: 'warning', host, message: text });
  }

  private endpointsFor(registry: string, request: EndpointRequest): Promise<PreparedEndpoint[]> {
    const key = `${registry}\u0000${request.repository}\u0000${request.byDigest}`;
    let cached = this.endpointCache.get(key);
    if (cached === undefined) {
      cached = (async () => {
        const list = await (this.options.endpoints ?? defaultEndpoints)(registry, request);
        return list.map((e) => prepareEndpoint(registry, e));
      })();
      this.endpointCache.set(key, cached);
      cached.catch(() => this.endpointCache.delete(key));
    }
    return cached;
  }

  /**
   * Runs `op` on each endpoint with the capability in order until one succeeds. Any registry
   * failure moves on to the next endpoint; the last failure is thrown, naming the earlier ones.
   */
  private async onEndpoints<T>(
    ref: RepositoryRef,
    byDigest: boolean,
    capability: Capability | undefined,
    ctx: OperationContext,
    op: (ep: PreparedEndpoint, ref: RepositoryRef) => Promise<T>,
  ): Promise<T> {
    const { registry } = ref;
    const all = await this.endpointsFor(registry, { repository: ref.path, byDigest });
    const endpoints = capability === undefined ? all : all.filter((ep) => ep.capabilities.has(capability));
    if (endpoints.length === 0) {
      throw new RegistryError(
        'ErrNoEndpoint',
        `${ctx.description}: no endpoint of ${registry} is configured for ${capability ?? 'use'}`,
        ctx.facts,
      );
    }
    const failures: string[] = [];
    let last: unknown;
    for (const ep of endpoints) {
      try {
        // An endpoint may name the repository otherwise (a registries.conf location rewrite).
        return await op(ep, ep.endpoint.repository === undefined ? ref : { registry, path: ep.endpoint.repository });
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        if (!(err instanceof KimgError) || err.code === 'ErrInvalidArgument') throw err;
        last = err;
        failures.push(`${ep.label}: ${err.code}`);
        this.emit({ type: 'endpointFailed', endpoint: ep.label, code: err.code, message: err.message });
      }
    }
    if (failures.length > 1 && last instanceof RegistryError) {
      const previous = failures.slice(0, -1);
      throw new RegistryError(
        last.code,
        `${last.message}; tried before: ${previous.join(', ')}`,
        { ...factsOf(last), previousEndpoints: previous },
        { cause: last },
      );
    }
    throw last;
  }
}
