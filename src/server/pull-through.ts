/**
 * Pull-through: what the store lacks is fetched from the upstream registry with kimg's registry
 * client (the pull engine's endpoints, mirrors, credentials per host and TLS settings), verified,
 * stored, and streamed to the client as it arrives. Concurrent requests for one tag, manifest or
 * blob share one upstream request (one single-flight).
 *
 * Tags follow Distribution's proxy (registry/proxy/proxytagservice.go, v2.8): upstream is asked
 * on every request by default (`tagTtlMs` 0), and when upstream fails the stored tag is served
 * (and the staleness logged). A manifest that is an image (not an index) is recorded under its
 * tag only once its config and layers are all stored, so the store stays fsck-clean whatever
 * happens in between; indexes are recorded at once (their children are optional).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SingleFlight } from '../signals/index.ts';
import { KimgError } from '../errors/index.ts';
import { manifestBlobs, type Descriptor } from '../oci/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { BlobDownload } from './blob-download.ts';
import type { ContentReader, StoredManifest } from './content.ts';
import { DistributionError } from './errors.ts';
import { parseRange } from './http-utils.ts';
import type { ServerMetrics } from './metrics.ts';
import type { RepositoryName } from './names.ts';
import type { Upstream } from './read.ts';
import { API_VERSION_HEADER } from './respond.ts';

export interface PullThroughOptions {
  readonly store: Store;
  readonly content: ContentReader;
  /** The registry client upstream requests go through (a Puller's, with its hosts and credentials). */
  readonly client: RegistryClient;
  readonly metrics: ServerMetrics;
  /** Told after this class changed the store's index. */
  readonly onIndexChanged?: () => void;
  /** How long an answer from upstream about a tag is used before asking again; default 0. */
  readonly tagTtlMs?: number;
  /** A stored tag is served when upstream has not answered within this time (the answer still
   * updates the tag when it comes); default 2 s, so a node is not held up by a slow upstream. */
  readonly staleAfterMs?: number;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
}

const MAX_PENDING_MANIFESTS = 1000;

const NOT_FOUND = new Set(['ErrManifestUnknown', 'ErrBlobUnknown', 'ErrNameUnknown']);
const MAX_KNOWN_BLOBS = 200_000;

function isNotFound(err: unknown): boolean {
  return err instanceof KimgError && NOT_FOUND.has(err.code);
}

function describe(err: unknown): string {
  return err instanceof KimgError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
}

export class PullThrough implements Upstream {
  private readonly tagFlights = new SingleFlight<Descriptor | undefined>();
  private readonly manifestFlights = new SingleFlight<StoredManifest | undefined>();
  /** Upstream answers about tags: when asked and what they pointed at. */
  private readonly resolved = new Map<string, { at: number; descriptor: Descriptor }>();
  /** Blob descriptors from manifests served, so a blob request knows the size to expect. */
  private readonly knownBlobs = new Map<string, Descriptor>();
  /** Downloads in progress by digest. */
  private readonly downloads = new Map<string, BlobDownload>();
  /** Tags whose image (not an index) is not whole in the store yet: name → descriptor. */
  private readonly pendingTags = new Map<string, Descriptor>();
  /** Image manifests fetched whose config and layers are not all stored yet: held in memory
   * (and served from there), written to the store once whole, so that the store never holds a
   * manifest without its blobs, whenever the process dies. */
  private readonly pendingManifests = new Map<string, StoredManifest>();
  private readonly tagTtlMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;

  constructor(private readonly options: PullThroughOptions) {
    this.tagTtlMs = options.tagTtlMs ?? 0;
    this.staleAfterMs = options.staleAfterMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private count(kind: string, result: string): void {
    this.options.metrics.pullThrough.inc({ kind, result });
  }

  /** Remembers the blobs a manifest names (and records tags whose image is now complete). */
  learn(manifest: StoredManifest): void {
    if (manifest.document.kind !== 'manifest') return;
    for (const blob of manifestBlobs(manifest.document.manifest)) {
      if (this.knownBlobs.size >= MAX_KNOWN_BLOBS) {
        const oldest = this.knownBlobs.keys().next();
        if (oldest.done !== true) this.knownBlobs.delete(oldest.value);
      }
      this.knownBlobs.set(blob.digest, blob);
    }
  }

  async tag(
    repo: RepositoryName,
    tag: string,
    stored: Descriptor | undefined,
    signal: AbortSignal,
  ): Promise<Descriptor | undefined> {
    const key = `${repo.full}:${tag}`;
    const recent = this.resolved.get(key);
    if (recent !== undefined && this.now() - recent.at < this.tagTtlMs) {
      this.count('tag', 'hit');
      return recent.descriptor;
    }
    // The upstream request goes on when this client leaves: others may wait for it too.
    const asked = this.tagFlights.run(key, () => this.resolveTag(repo, tag, key, stored), signal).result;
    if (stored === undefined) return asked;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.staleAfterMs);
    });
    try {
      const answer = await Promise.race([asked, late]);
      if (answer !== 'late') return answer;
      asked.catch(() => undefined);
      this.count('tag', 'stale');
      this.log(
        `serving the stored ${key} (${stored.digest}): upstream has not answered within ${this.staleAfterMs} ms`,
      );
      return stored;
    } finally {
      clearTimeout(timer);
    }
  }

  private async resolveTag(
    repo: RepositoryName,
    tag: string,
    key: string,
    stored: Descriptor | undefined,
  ): Promise<Descriptor | undefined> {
    let found;
    try {
      found = await this.options.client.resolve({ registry: repo.domain, path: repo.path }, tag);
    } catch (err) {
      if (stored !== undefined) {
        this.count('tag', 'stale');
        this.log(`serving the stored ${key} (${stored.digest}): upstream could not be asked: ${describe(err)}`);
        return stored;
      }
      this.count('tag', isNotFound(err) ? 'absent' : 'error');
      if (!isNotFound(err)) this.log(`resolving ${key} upstream failed: ${describe(err)}`);
      return undefined;
    }
    const descriptor = found.descriptor;
    this.count('tag', stored?.digest === descriptor.digest ? 'hit' : 'miss');
    this.resolved.set(key, { at: this.now(), descriptor });
    if (found.manifest !== undefined) {
      const bytes = Buffer.from(found.manifest.bytes);
      await this.accept({
        digest: descriptor.digest,
        mediaType: descriptor.mediaType,
        bytes,
        document: found.manifest.document,
      });
    }
    if (stored?.digest !== descriptor.digest) await this.recordTag(key, descriptor, repo);
    return descriptor;
  }

  /** Keeps a verified manifest: an index goes to the store at once, an image once it is whole. */
  private async accept(manifest: StoredManifest): Promise<void> {
    this.keep(manifest);
    if (manifest.document.kind === 'manifest' && !(await this.whole(manifest))) {
      if (this.pendingManifests.size >= MAX_PENDING_MANIFESTS) {
        const oldest = this.pendingManifests.keys().next();
        if (oldest.done !== true) this.pendingManifests.delete(oldest.value);
      }
      this.pendingManifests.set(manifest.digest, manifest);
      return;
    }
    await this.persist(manifest);
  }

  private async persist(manifest: StoredManifest): Promise<void> {
    await this.options.store.putBlob(
      { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.byteLength },
      manifest.bytes,
    );
  }

  /** True when every blob an image manifest names is in the store. */
  private async whole(manifest: StoredManifest): Promise<boolean> {
    if (manifest.document.kind !== 'manifest') return true;
    for (const blob of manifestBlobs(manifest.document.manifest))
      if ((await this.options.content.blobSize(blob.digest)) === undefined) return false;
    return true;
  }

  /** Records `name` → descriptor in the store once the manifest it names is stored (an index at
   * once, an image when whole). */
  private async recordTag(name: string, descriptor: Descriptor, repo: RepositoryName): Promise<void> {
    const manifest = await this.manifest(repo, descriptor.digest, new AbortController().signal);
    if (manifest === undefined) return;
    this.pendingTags.set(name, descriptor);
    await this.recordComplete();
  }

  /** Stores the pending manifests that are now whole and records the tags that point at them. */
  private async recordComplete(): Promise<void> {
    for (const [digest, manifest] of this.pendingManifests) {
      if (!(await this.whole(manifest)) || this.pendingManifests.get(digest) !== manifest) continue;
      this.pendingManifests.delete(digest);
      await this.persist(manifest);
    }
    for (const [name, descriptor] of this.pendingTags) {
      if (!(await this.options.store.hasBlob(descriptor.digest)) || this.pendingTags.get(name) !== descriptor) continue;
      this.pendingTags.delete(name);
      await this.options.store.setImage(name, descriptor);
      this.options.onIndexChanged?.();
      await this.options.store.releaseClaims([descriptor.digest]);
    }
  }

  private keep(manifest: StoredManifest): void {
    this.options.content.remember(manifest);
    this.learn(manifest);
  }

  manifest(repo: RepositoryName, digest: string, signal: AbortSignal): Promise<StoredManifest | undefined> {
    const pending = this.pendingManifests.get(digest);
    if (pending !== undefined) return Promise.resolve(pending);
    const { result } = this.manifestFlights.run(
      digest,
      async () => {
        const stored = await this.options.content.manifest(digest);
        if (stored !== undefined) return stored;
        try {
          const fetched = await this.options.client.getManifest({ registry: repo.domain, path: repo.path }, digest);
          const bytes = Buffer.from(fetched.bytes);
          const manifest: StoredManifest = { digest, mediaType: fetched.mediaType, bytes, document: fetched.document };
          await this.accept(manifest);
          this.count('manifest', 'miss');
          return manifest;
        } catch (err) {
          this.count('manifest', isNotFound(err) ? 'absent' : 'error');
          if (!isNotFound(err)) this.log(`fetching manifest ${repo.full}@${digest} upstream failed: ${describe(err)}`);
          return undefined;
        }
      },
      signal,
    );
    return result;
  }

  async blob(repo: RepositoryName, digest: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const descriptor = this.knownBlobs.get(digest);
    if (descriptor === undefined) {
      // The size to expect comes from a manifest this server served; without one the client
      // is told 404 and goes to its next host.
      this.count('blob', 'unknown-size');
      return false;
    }
    if (req.method === 'HEAD') {
      // Known from a verified manifest; the bytes are fetched when a client GETs them.
      res.writeHead(200, {
        ...API_VERSION_HEADER,
        'content-type': 'application/octet-stream',
        'docker-content-digest': digest,
        'content-length': descriptor.size,
      });
      res.end();
      return true;
    }
    let download = this.downloads.get(digest);
    if (download === undefined) {
      const started = new BlobDownload(
        descriptor,
        this.options.store,
        this.options.client,
        { registry: repo.domain, path: repo.path },
        (n) => this.options.metrics.upstreamBytes.inc({}, n),
      );
      download = started;
      this.downloads.set(digest, started);
      this.count('blob', 'miss');
      void started.done.then(async () => {
        if (this.downloads.get(digest) === started) this.downloads.delete(digest);
        if (started.state === 'failed')
          this.log(`pulling blob ${digest} of ${repo.full} through failed: ${describe(started.error)}`);
        else await this.recordComplete().catch((err: unknown) => this.log(`recording tags failed: ${describe(err)}`));
      });
    } else this.count('blob', 'joined');
    await download.started();
    if (download.state === 'failed') {
      if (isNotFound(download.error)) return false;
      throw new DistributionError('BLOB_UNKNOWN', `blob ${digest} could not be fetched upstream`, {
        status: 502,
        detail: { digest },
      });
    }
    const size = descriptor.size;
    const range = parseRange(firstHeader(req.headers.range), size);
    if (range === 'unsatisfiable') {
      throw new DistributionError('RANGE_INVALID', `range is not within ${size} bytes`, {
        headers: { 'content-range': `bytes */${size}` },
      });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    res.writeHead(range === undefined ? 200 : 206, {
      ...API_VERSION_HEADER,
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      etag: `"${digest}"`,
      'accept-ranges': 'bytes',
      'content-length': size === 0 ? 0 : end - start + 1,
      ...(range !== undefined && { 'content-range': `bytes ${start}-${end}/${size}` }),
    });
    if (size === 0) {
      res.end();
      return true;
    }
    await download.follow(res, start, end, (n) => this.options.metrics.bytesServed.inc({}, n));
    return true;
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
