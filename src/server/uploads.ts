/**
 * The write side (`--allow-push`): blob uploads (monolithic, chunked with `Content-Range`, and
 * resumable: `GET` on the upload tells how far it got), cross-repository mounts, and manifest
 * `PUT` accepted only when every blob and child manifest it references is in the store
 * (opencontainers/distribution-spec spec.md, "Push"). Upload bytes go to a store upload
 * (`Store.openUpload`), hashed once as they are written and verified by the store when
 * `PUT ?digest=` (or `POST ?digest=` with the whole blob) commits them into `blobs/`; no digest
 * lock is held while a body arrives, so a client that trickles or stalls blocks no one. Every
 * upload in progress counts against a total cap on disk. Tags move in one `index.json` write.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VerifyError, parseDigest } from '../digest/index.ts';
import { manifestBlobs, parseManifestDocument, type Descriptor, type ManifestDocument } from '../oci/index.ts';
import type { BlobUpload } from '../store/index.ts';
import { clientGone, readBody } from './body.ts';
import type { StoredManifest } from './content.ts';
import { DistributionError } from './errors.ts';
import { isValidTag, type RepositoryName } from './names.ts';
import { ReadHandler } from './read.ts';
import { API_VERSION_HEADER } from './respond.ts';
import type { Route } from './routes.ts';
import type { WriteContext, WriteSide, WriteSideFactory } from './server.ts';

/** An upload left alone this long is dropped (Distribution purges after 7 days; a node needs less). */
const UPLOAD_IDLE_MS = 60 * 60 * 1000;
const MAX_UPLOADS = 1000;
const DEFAULT_MAX_BLOB_BYTES = 16 * 1024 ** 3;
/**
 * The default total cap, in largest blobs: a push sends a few layers at once (skopeo and
 * containerd upload layers in parallel), so four blobs of the largest size accepted at once
 * still go through, while sessions opened and abandoned (up to MAX_UPLOADS of them) cannot
 * fill the node's disk beyond this.
 */
const DEFAULT_TOTAL_IN_BLOBS = 4;

interface Session {
  readonly id: string;
  readonly repo: string;
  readonly upload: BlobUpload;
  touched: number;
  /** A request is writing to it: a second one at once is refused. */
  busy: boolean;
  /** Bytes this session counts in `Uploads.held`: what it wrote, plus what a running request
   * let through and has not written yet. */
  held: number;
  /** Dropped or committed: it holds nothing any more, and a running request stops. */
  closed: boolean;
}

/** Limits of the write side (`allowPush`). */
export interface UploadOptions {
  /** Largest blob accepted (SIZE_INVALID, 413, past it); default 16 GiB. */
  readonly maxBlobBytes?: number;
  /**
   * Most bytes all uploads in progress may hold on disk together: chunked uploads not yet
   * committed and monolithic bodies being received (a monolithic one counts its whole
   * `Content-Length` from the start). An upload that would pass it is refused with DENIED.
   * Default 4 × `maxBlobBytes` (64 GiB with the default blob cap).
   */
  readonly maxUploadBytes?: number;
}

/** The write side, as the server's factory wants it. */
export function allowPush(options: UploadOptions = {}): WriteSideFactory {
  return (context) => new Uploads(context, options);
}

/** BLOB_UPLOAD_UNKNOWN for a session dropped (DELETE, swept, server closing) while in use. */
function cancelled(session: Session): DistributionError {
  return new DistributionError('BLOB_UPLOAD_UNKNOWN', `the upload ${session.id} was cancelled`);
}

class Uploads implements WriteSide {
  private readonly sessions = new Map<string, Session>();
  private readonly maxBlobBytes: number;
  private readonly maxUploadBytes: number;
  /** Bytes all uploads in progress hold (see UploadOptions.maxUploadBytes). */
  private held = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly context: WriteContext,
    options: UploadOptions,
  ) {
    this.maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
    this.maxUploadBytes = options.maxUploadBytes ?? DEFAULT_TOTAL_IN_BLOBS * this.maxBlobBytes;
    this.sweeper = setInterval(() => void this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async handle(
    route: Route,
    repo: RepositoryName,
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
  ): Promise<void> {
    const method = req.method ?? '';
    if (route.kind === 'manifest') {
      if (method === 'PUT') return this.putManifest(repo, route.reference, req, res);
      throw new DistributionError('UNSUPPORTED', `${method} on a manifest is not supported`);
    }
    if (route.kind === 'uploads' && method === 'POST') return this.start(repo, req, res, query);
    if (route.kind === 'upload') {
      const session = this.session(route.id, repo);
      if (method === 'PATCH') return this.patch(session, repo, req, res);
      if (method === 'PUT') return this.finish(session, repo, req, res, query);
      if (method === 'GET') return this.status(session, repo, res, 204);
      if (method === 'DELETE') {
        await this.drop(session);
        res.writeHead(204, API_VERSION_HEADER);
        res.end();
        return;
      }
    }
    throw new DistributionError('UNSUPPORTED', `${method} is not supported here`);
  }

  /** Stops the sweeper and removes every upload in progress (they cannot be resumed once the
   * server is gone). Requests still writing fail. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.sessions.values()].map((session) => this.drop(session).catch(() => undefined)));
  }

  private location(repo: RepositoryName, suffix: string): string {
    const ns = repo.ns === undefined ? '' : `?ns=${encodeURIComponent(repo.ns)}`;
    return `/v2/${repo.requested}/${suffix}${ns}`;
  }

  private session(id: string, repo: RepositoryName): Session {
    const session = /^[0-9a-f-]{36}$/.test(id) ? this.sessions.get(id) : undefined;
    if (session === undefined || session.repo !== repo.full)
      throw new DistributionError('BLOB_UPLOAD_UNKNOWN', `no upload ${id.slice(0, 64)} for ${repo.requested}`);
    return session;
  }

  private async start(repo: RepositoryName, req: IncomingMessage, res: ServerResponse, query: URLSearchParams) {
    const mount = query.get('mount');
    if (mount !== null) {
      const digest = ReadHandler.digest(mount);
      if ((await this.context.content.blobSize(digest)) !== undefined) {
        req.resume();
        return this.created(repo, digest, res);
      }
    }
    const digest = query.get('digest');
    if (digest !== null) return this.monolithic(repo, ReadHandler.digest(digest), req, res);
    const tooMany = () => new DistributionError('TOOMANYREQUESTS', `more than ${MAX_UPLOADS} uploads in progress`);
    if (this.sessions.size >= MAX_UPLOADS) throw tooMany();
    const id = randomUUID();
    const upload = await this.context.store.openUpload();
    // Others may have opened theirs while this one was being opened.
    if (this.sessions.size >= MAX_UPLOADS) {
      await upload.abort();
      throw tooMany();
    }
    const session: Session = { id, repo: repo.full, upload, touched: Date.now(), busy: false, held: 0, closed: false };
    this.sessions.set(id, session);
    // A POST may carry the first chunk (spec: "POST then PUT" with a body is allowed), with a
    // Content-Length or chunked: an empty body appends nothing. Refused, the session goes: its
    // client never learns where it is.
    try {
      await this.append(session, req);
    } catch (err) {
      await this.drop(session).catch(() => undefined);
      throw err;
    }
    return this.status(session, repo, res, 202);
  }

  private async status(session: Session, repo: RepositoryName, res: ServerResponse, status: number) {
    session.touched = Date.now();
    res.writeHead(status, {
      ...API_VERSION_HEADER,
      location: this.location(repo, `blobs/uploads/${session.id}`),
      range: `0-${Math.max(0, session.upload.size - 1)}`,
      'docker-upload-uuid': session.id,
      'content-length': 0,
    });
    res.end();
  }

  private async patch(session: Session, repo: RepositoryName, req: IncomingMessage, res: ServerResponse) {
    const range = req.headers['content-range'];
    if (range !== undefined) {
      const match = /^(?:bytes )?(\d+)-(\d+)$/.exec(range.trim());
      if (match === null)
        throw new DistributionError('BLOB_UPLOAD_INVALID', `invalid Content-Range ${range.slice(0, 64)}`);
      if (Number(match[1]) !== session.upload.size) {
        throw new DistributionError(
          'BLOB_UPLOAD_INVALID',
          `the upload is at byte ${session.upload.size}, not ${match[1]}`,
          {
            status: 416,
            headers: {
              range: `0-${Math.max(0, session.upload.size - 1)}`,
              location: this.location(repo, `blobs/uploads/${session.id}`),
            },
          },
        );
      }
    }
    await this.append(session, req);
    return this.status(session, repo, res, 202);
  }

  /** SIZE_INVALID (413) for a blob past `maxBlobBytes`. */
  private tooLarge(): DistributionError {
    return new DistributionError('SIZE_INVALID', `the blob is larger than ${this.maxBlobBytes} bytes`, { status: 413 });
  }

  /** Counts `bytes` more in `held`, or refuses them (DENIED) when all uploads would pass the cap. */
  private reserve(bytes: number): void {
    if (this.held + bytes > this.maxUploadBytes) {
      throw new DistributionError(
        'DENIED',
        `uploads in progress hold ${this.held} bytes and this one needs ${bytes} more, past the server's limit of ${this.maxUploadBytes} bytes for all uploads together; finish or cancel uploads, or try again later`,
      );
    }
    this.held += bytes;
  }

  /** The request body's chunks, each counted in the session's and the server's `held` before it
   * is let through; the blob cap and the total cap refuse a chunk that would pass them. */
  private async *metered(session: Session, req: IncomingMessage): AsyncGenerator<Buffer> {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      if (session.closed) throw cancelled(session);
      if (session.held + chunk.byteLength > this.maxBlobBytes) throw this.tooLarge();
      this.reserve(chunk.byteLength);
      session.held += chunk.byteLength;
      yield chunk;
    }
  }

  /** Appends the request body to the upload (hashed once, by the store, as it is written). */
  private async append(session: Session, req: IncomingMessage): Promise<void> {
    if (session.busy) throw new DistributionError('BLOB_UPLOAD_INVALID', 'another request is writing this upload');
    session.busy = true;
    try {
      await session.upload.append(this.metered(session, req));
    } catch (err) {
      throw session.closed ? cancelled(session) : err;
    } finally {
      session.busy = false;
      session.touched = Date.now();
      // What was let through but not written (the write or the client failed) is given back.
      if (!session.closed) {
        this.held -= session.held - session.upload.size;
        session.held = session.upload.size;
      }
    }
  }

  private async finish(
    session: Session,
    repo: RepositoryName,
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
  ): Promise<void> {
    const digestText = query.get('digest');
    if (digestText === null) throw new DistributionError('DIGEST_INVALID', 'PUT needs ?digest=');
    const digest = ReadHandler.digest(digestText);
    await this.append(session, req);
    // Cancelled (DELETE) or swept while the body arrived.
    if (session.closed) throw cancelled(session);
    // The upload ends here whatever the outcome (Distribution cancels it on a failed commit).
    this.forget(session);
    await this.commit(session.upload, digest);
    return this.created(repo, digest, res);
  }

  /** Commits an upload into the store under `digest`; a mismatch is answered as the spec says. */
  private async commit(upload: BlobUpload, digest: string, size?: number): Promise<void> {
    try {
      await upload.commit(digest, size === undefined ? {} : { size });
    } catch (err) {
      if (!(err instanceof VerifyError)) {
        this.context.metrics.uploads.inc({ result: 'error' });
        throw err;
      }
      if (err.code === 'ErrSizeMismatch') {
        this.context.metrics.uploads.inc({ result: 'size-mismatch' });
        throw new DistributionError('SIZE_INVALID', `${err.actualSize} bytes arrived, not ${err.expectedSize}`, {
          cause: err,
        });
      }
      this.context.metrics.uploads.inc({ result: 'digest-mismatch' });
      throw new DistributionError('DIGEST_INVALID', `the upload hashes to ${err.actualDigest}, not ${digest}`, {
        detail: { digest },
        cause: err,
      });
    }
    this.context.metrics.uploads.inc({ result: 'ok' });
  }

  /** `POST ?digest=`: the whole blob in one request, into an upload of its own, committed when
   * the body is complete. The whole `Content-Length` counts against the total cap from the start. */
  private async monolithic(repo: RepositoryName, digest: string, req: IncomingMessage, res: ServerResponse) {
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0)
      throw new DistributionError('SIZE_INVALID', 'a monolithic upload needs Content-Length', { status: 411 });
    if (length > this.maxBlobBytes) throw this.tooLarge();
    // Already stored (a re-push): nothing to write or to make room for, as for a mount.
    if ((await this.context.content.blobSize(digest)) === length) {
      req.resume();
      return this.created(repo, digest, res);
    }
    this.reserve(length);
    let upload: BlobUpload | undefined;
    try {
      upload = await this.context.store.openUpload();
      try {
        await upload.append(req as AsyncIterable<Buffer>);
      } catch (err) {
        // The client went away (or the server cut its socket): nothing to answer. Otherwise a
        // read or write failed: not the content's fault either.
        this.context.metrics.uploads.inc({ result: clientGone(req) ? 'aborted' : 'error' });
        throw err;
      }
      await this.commit(upload, digest, length);
    } finally {
      // The file is gone after a commit, whatever its outcome; this removes it otherwise.
      await upload?.abort().catch(() => undefined);
      this.held -= length;
    }
    return this.created(repo, digest, res);
  }

  private created(repo: RepositoryName, digest: string, res: ServerResponse): void {
    res.writeHead(201, {
      ...API_VERSION_HEADER,
      location: this.location(repo, `blobs/${digest}`),
      'docker-content-digest': digest,
      'content-length': 0,
    });
    res.end();
  }

  /** Ends a session's life in the server: forgotten, its bytes no longer counted. */
  private forget(session: Session): void {
    this.sessions.delete(session.id);
    if (session.closed) return;
    session.closed = true;
    this.held -= session.held;
    session.held = 0;
  }

  private async drop(session: Session): Promise<void> {
    this.forget(session);
    await session.upload.abort();
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const session of this.sessions.values())
      if (!session.busy && now - session.touched > UPLOAD_IDLE_MS) await this.drop(session).catch(() => undefined);
  }

  private async putManifest(repo: RepositoryName, reference: string, req: IncomingMessage, res: ServerResponse) {
    const bytes = await readBody(req, this.context.maxManifestBytes, 'the manifest');
    const contentType = req.headers['content-type'];
    let document: ManifestDocument;
    try {
      document = parseManifestDocument(bytes, {
        what: 'the manifest',
        ...(contentType !== undefined && { contentType }),
      });
    } catch (err) {
      throw new DistributionError('MANIFEST_INVALID', err instanceof Error ? err.message : 'manifest invalid', {
        cause: err,
      });
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const byDigest = reference.includes(':');
    if (byDigest) {
      const wanted = ReadHandler.digest(reference);
      const algorithm = parseDigest(wanted).algorithm;
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      if (actual !== wanted)
        throw new DistributionError('DIGEST_INVALID', `the manifest hashes to ${actual}, not ${wanted}`);
    } else if (!isValidTag(reference)) {
      throw new DistributionError('MANIFEST_INVALID', `invalid tag ${JSON.stringify(reference.slice(0, 200))}`);
    }
    const stored = byDigest ? reference : digest;
    // Every blob (image) or child manifest (index) must be here first.
    const needed = document.kind === 'manifest' ? manifestBlobs(document.manifest) : document.index.manifests;
    for (const child of needed) {
      const size = await this.context.content.blobSize(child.digest);
      if (size === undefined || size !== child.size) {
        throw new DistributionError('MANIFEST_BLOB_UNKNOWN', `${child.digest} is not in the registry`, {
          detail: { digest: child.digest },
        });
      }
    }
    const descriptor: Descriptor = { mediaType: document.mediaType, digest: stored, size: bytes.byteLength };
    await this.context.store.putBlob(descriptor, bytes);
    await this.context.store.setImage(`${repo.full}${byDigest ? '@' : ':'}${reference}`, descriptor);
    this.context.view.invalidate();
    await this.context.store.releaseClaims([stored]);
    const manifest: StoredManifest = { digest: stored, mediaType: document.mediaType, bytes, document };
    this.context.content.remember(manifest);
    this.context.referrers.learn(stored);
    const subject = document.kind === 'manifest' ? document.manifest.subject : document.index.subject;
    res.writeHead(201, {
      ...API_VERSION_HEADER,
      location: this.location(repo, `manifests/${stored}`),
      'docker-content-digest': stored,
      'content-length': 0,
      ...(subject !== undefined && { 'oci-subject': subject.digest }),
    });
    res.end();
  }
}
