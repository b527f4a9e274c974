/**
 * The read side of the distribution API over the store: manifests by tag or digest (the exact
 * stored bytes), blobs with one `Range`, tags, the catalog and referrers. What the store lacks
 * is asked of the pull-through upstream when there is one, else answered 404 quickly, so that
 * containerd goes on to its next host.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tryParseDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { ContentReader, StoredManifest } from './content.ts';
import { DistributionError } from './errors.ts';
import { sendFileRange } from './chunk-sender.ts';
import { acceptedTypes, parseRange, queryNumber } from './http-utils.ts';
import { catalogName, isValidTag, type RepositoryName } from './names.ts';
import type { ReferrersIndex } from './referrers.ts';
import { send, sendError, API_VERSION_HEADER } from './respond.ts';
import type { IndexView } from './view.ts';

/** Where misses go: the pull-through cache (see pull-through.ts). */
export interface Upstream {
  /**
   * What `tag` points at now: asked upstream when `stored` is absent or due for a re-check, else
   * `stored`. Undefined when upstream has no such tag (and nothing is stored).
   */
  tag(
    repo: RepositoryName,
    tag: string,
    stored: Descriptor | undefined,
    signal: AbortSignal,
  ): Promise<Descriptor | undefined>;
  /** A manifest fetched by digest, verified and stored; undefined when upstream has none. */
  manifest(repo: RepositoryName, digest: string, signal: AbortSignal): Promise<StoredManifest | undefined>;
  /** A blob fetched from upstream and written to the store while streaming to `res`; false when
   * upstream has none (nothing was sent). */
  blob(repo: RepositoryName, digest: string, req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Sees every manifest served, so that the blobs it names can be fetched (their sizes known). */
  learn(manifest: StoredManifest): void;
}

/** Counts for /metrics. */
export interface ReadCounters {
  bytesServed(bytes: number): void;
}

const MAX_PAGE = 10_000;

export class ReadHandler {
  constructor(
    private readonly view: IndexView,
    private readonly content: ContentReader,
    private readonly referrersIndex: ReferrersIndex,
    private readonly defaultUpstream: string,
    private readonly counters: ReadCounters,
    private readonly upstream: Upstream | undefined,
  ) {}

  /** Parses a digest from a path; DIGEST_INVALID otherwise. */
  static digest(text: string): string {
    const parsed = tryParseDigest(text);
    if (!parsed.ok)
      throw new DistributionError('DIGEST_INVALID', `invalid digest ${JSON.stringify(text.slice(0, 200))}`, {
        detail: { digest: text.slice(0, 200) },
      });
    return text;
  }

  /** The manifest `reference` (a tag or a digest) names, or an error (after pull-through). */
  async findManifest(
    repo: RepositoryName,
    reference: string,
    signal: AbortSignal,
  ): Promise<{ manifest: StoredManifest; mediaType: string }> {
    const shown = `${repo.full}${reference.includes(':') ? '@' : ':'}${reference}`;
    if (reference.includes(':')) {
      const digest = ReadHandler.digest(reference);
      const stored = await this.content.manifest(digest);
      if (stored !== undefined) return { manifest: stored, mediaType: stored.mediaType };
      const fetched = await this.upstream?.manifest(repo, digest, signal);
      if (fetched !== undefined) return { manifest: fetched, mediaType: fetched.mediaType };
      throw new DistributionError('MANIFEST_UNKNOWN', `manifest unknown: ${shown}`, { detail: { reference: shown } });
    }
    if (!isValidTag(reference))
      throw new DistributionError('MANIFEST_UNKNOWN', `invalid tag ${JSON.stringify(reference.slice(0, 200))}`);
    const snapshot = await this.view.snapshot();
    const repository = snapshot.repositories.get(repo.full);
    let descriptor = repository?.tags.get(reference);
    if (this.upstream !== undefined) descriptor = await this.upstream.tag(repo, reference, descriptor, signal);
    if (descriptor === undefined) {
      if (repository === undefined && this.upstream === undefined)
        throw new DistributionError('NAME_UNKNOWN', `repository ${repo.full} is not in the store`, {
          detail: { name: repo.requested },
        });
      throw new DistributionError('MANIFEST_UNKNOWN', `manifest unknown: ${shown}`, { detail: { reference: shown } });
    }
    const manifest =
      (await this.content.manifest(descriptor.digest)) ??
      (await this.upstream?.manifest(repo, descriptor.digest, signal));
    if (manifest === undefined)
      throw new DistributionError('MANIFEST_UNKNOWN', `manifest ${descriptor.digest} of ${shown} is not in the store`);
    return { manifest, mediaType: descriptor.mediaType };
  }

  async getManifest(
    repo: RepositoryName,
    reference: string,
    req: IncomingMessage,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const head = req.method === 'HEAD';
    const { manifest, mediaType } = await this.findManifest(repo, reference, signal);
    this.upstream?.learn(manifest);
    const accepted = acceptedTypes(req.headers.accept);
    if (accepted !== undefined && !accepted.has(mediaType)) {
      throw new DistributionError(
        'MANIFEST_UNKNOWN',
        `manifest ${manifest.digest} is ${mediaType}, which the request's Accept header does not list`,
        { detail: { mediaType } },
      );
    }
    send(
      res,
      200,
      manifest.bytes,
      { 'content-type': mediaType, 'docker-content-digest': manifest.digest, etag: `"${manifest.digest}"` },
      head,
    );
    if (!head) this.counters.bytesServed(manifest.bytes.byteLength);
  }

  async getBlob(repo: RepositoryName, digestText: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const digest = ReadHandler.digest(digestText);
    const head = req.method === 'HEAD';
    // A GET opens the blob at once (then fstat): it is read from this handle even if a gc
    // removes the file meanwhile.
    const opened = head ? undefined : await this.content.openBlob(digest);
    try {
      const size = head ? await this.content.blobSize(digest) : opened?.size;
      if (size === undefined) {
        if (this.upstream !== undefined && (await this.upstream.blob(repo, digest, req, res))) return;
        throw new DistributionError('BLOB_UNKNOWN', `blob ${digest} is not in the store`, { detail: { digest } });
      }
      const common = {
        ...API_VERSION_HEADER,
        'content-type': 'application/octet-stream',
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        'accept-ranges': 'bytes',
        'cache-control': 'max-age=31536000',
      };
      const range = head ? undefined : parseRange(firstHeader(req.headers.range), size);
      if (range === 'unsatisfiable') {
        throw new DistributionError(
          'RANGE_INVALID',
          `range ${firstHeader(req.headers.range) ?? ''} is not within ${size} bytes`,
          {
            headers: { 'content-range': `bytes */${size}` },
          },
        );
      }
      if (opened === undefined) {
        res.writeHead(200, { ...common, 'content-length': size });
        res.end();
        return;
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      const length = size === 0 ? 0 : end - start + 1;
      res.writeHead(range === undefined ? 200 : 206, {
        ...common,
        'content-length': length,
        ...(range !== undefined && { 'content-range': `bytes ${start}-${end}/${size}` }),
      });
      await sendFileRange(res, opened.handle, start, length, (n) => this.counters.bytesServed(n));
    } finally {
      await opened?.handle.close().catch(() => undefined);
    }
  }

  async listTags(repo: RepositoryName, query: URLSearchParams, res: ServerResponse): Promise<void> {
    const snapshot = await this.view.snapshot();
    const repository = snapshot.repositories.get(repo.full);
    if (repository === undefined)
      throw new DistributionError('NAME_UNKNOWN', `repository ${repo.full} is not in the store`, {
        detail: { name: repo.requested },
      });
    const all = [...repository.tags.keys()].sort();
    const page = paginate(all, query);
    const headers: Record<string, string> = {};
    if (page.next !== undefined) {
      const params = new URLSearchParams({ n: String(page.n), last: page.next });
      if (repo.ns !== undefined) params.set('ns', repo.ns);
      headers.link = `</v2/${repo.requested}/tags/list?${params.toString()}>; rel="next"`;
    }
    send(res, 200, JSON.stringify({ name: repo.requested, tags: page.items }), headers);
  }

  async catalog(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const snapshot = await this.view.snapshot();
    const all = [
      ...new Set([...snapshot.repositories.keys()].map((full) => catalogName(full, this.defaultUpstream))),
    ].sort();
    const page = paginate(all, query);
    const headers: Record<string, string> = {};
    if (page.next !== undefined) {
      const params = new URLSearchParams({ n: String(page.n), last: page.next });
      headers.link = `</v2/_catalog?${params.toString()}>; rel="next"`;
    }
    send(res, 200, JSON.stringify({ repositories: page.items }), headers);
  }

  async referrers(
    repo: RepositoryName,
    digestText: string,
    query: URLSearchParams,
    res: ServerResponse,
  ): Promise<void> {
    void repo;
    const digest = ReadHandler.digest(digestText);
    const artifactType = query.get('artifactType') ?? undefined;
    const index = await this.referrersIndex.referrers(digest, artifactType);
    send(res, 200, JSON.stringify(index), {
      'content-type': 'application/vnd.oci.image.index.v1+json',
      ...(artifactType !== undefined && { 'oci-filters-applied': 'artifactType' }),
    });
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A page of a sorted list: items after `last`, at most `n`; `next` is the last item when more remain. */
function paginate(all: readonly string[], query: URLSearchParams): { items: string[]; n: number; next?: string } {
  const n = queryNumber(query.get('n'), MAX_PAGE);
  if (n !== undefined && Number.isNaN(n))
    throw new DistributionError('UNSUPPORTED', `n must be a whole number`, { status: 400 });
  const last = query.get('last');
  let from = 0;
  if (last !== null && last !== '') {
    from = all.findIndex((item) => item > last);
    if (from < 0) from = all.length;
  }
  const limit = n ?? MAX_PAGE;
  const items = all.slice(from, from + limit);
  const more = from + limit < all.length;
  return { items, n: limit, ...(more && items.length > 0 && { next: items[items.length - 1] }) };
}

export { sendError };
