/**
 * The write side (`--allow-push`): blob uploads (monolithic, chunked with `Content-Range`, and
 * resumable: `GET` on the upload tells how far it got), cross-repository mounts, and manifest
 * `PUT` accepted only when every blob and child manifest it references is in the store
 * (opencontainers/distribution-spec spec.md, "Push"). Upload bytes go to a file of the server's
 * own under `ingest/uploads/`; on `PUT ?digest=` they pass through the store's verified ingest
 * into `blobs/`. Tags move in one `index.json` write.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { parseDigest } from '../digest/index.ts';
import { manifestBlobs, parseManifestDocument, type Descriptor, type ManifestDocument } from '../oci/index.ts';
import { readBody } from './body.ts';
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

interface Session {
  readonly id: string;
  readonly repo: string;
  readonly path: string;
  size: number;
  hash: Hash;
  touched: number;
  /** A request is writing to it: a second one at once is refused. */
  busy: boolean;
}

export interface UploadOptions {
  /** Largest blob accepted; default 16 GiB. */
  readonly maxBlobBytes?: number;
}

/** The write side, as the server's factory wants it. */
export function allowPush(options: UploadOptions = {}): WriteSideFactory {
  return (context) => new Uploads(context, options);
}

class Uploads implements WriteSide {
  private readonly sessions = new Map<string, Session>();
  private readonly dir: string;
  private readonly maxBlobBytes: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly context: WriteContext,
    options: UploadOptions,
  ) {
    this.dir = join(context.store.root, 'ingest', 'uploads');
    this.maxBlobBytes = options.maxBlobBytes ?? 16 * 1024 ** 3;
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
    if (this.sessions.size >= MAX_UPLOADS)
      throw new DistributionError('TOOMANYREQUESTS', `more than ${MAX_UPLOADS} uploads in progress`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const id = randomUUID();
    const session: Session = {
      id,
      repo: repo.full,
      path: join(this.dir, id),
      size: 0,
      hash: createHash('sha256'),
      touched: Date.now(),
      busy: false,
    };
    const handle = await open(session.path, 'wx', 0o600);
    await handle.close();
    this.sessions.set(id, session);
    // A POST may carry the first chunk (spec: "POST then PUT" with a body is allowed).
    if (Number(req.headers['content-length'] ?? 0) > 0) await this.append(session, req);
    else req.resume();
    return this.status(session, repo, res, 202);
  }

  private async status(session: Session, repo: RepositoryName, res: ServerResponse, status: number) {
    session.touched = Date.now();
    res.writeHead(status, {
      ...API_VERSION_HEADER,
      location: this.location(repo, `blobs/uploads/${session.id}`),
      range: `0-${Math.max(0, session.size - 1)}`,
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
      if (Number(match[1]) !== session.size) {
        throw new DistributionError('BLOB_UPLOAD_INVALID', `the upload is at byte ${session.size}, not ${match[1]}`, {
          status: 416,
          headers: {
            range: `0-${Math.max(0, session.size - 1)}`,
            location: this.location(repo, `blobs/uploads/${session.id}`),
          },
        });
      }
    }
    await this.append(session, req);
    return this.status(session, repo, res, 202);
  }

  /** Appends the request body to the upload, hashing as it goes. */
  private async append(session: Session, req: IncomingMessage): Promise<void> {
    if (session.busy) throw new DistributionError('BLOB_UPLOAD_INVALID', 'another request is writing this upload');
    session.busy = true;
    let handle: FileHandle | undefined;
    try {
      handle = await open(session.path, 'a');
      for await (const chunk of req as AsyncIterable<Buffer>) {
        if (session.size + chunk.byteLength > this.maxBlobBytes)
          throw new DistributionError('SIZE_INVALID', `the blob is larger than ${this.maxBlobBytes} bytes`, {
            status: 413,
          });
        await handle.write(chunk);
        session.hash.update(chunk);
        session.size += chunk.byteLength;
      }
    } finally {
      session.busy = false;
      session.touched = Date.now();
      await handle?.close();
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
    const parsed = parseDigest(digest);
    const actual =
      parsed.algorithm === 'sha256'
        ? `sha256:${session.hash.copy().digest('hex')}`
        : `${parsed.algorithm}:${await hashFile(session.path, parsed.algorithm)}`;
    if (actual !== digest) {
      await this.drop(session);
      this.context.metrics.uploads.inc({ result: 'digest-mismatch' });
      throw new DistributionError('DIGEST_INVALID', `the upload hashes to ${actual}, not ${digest}`, {
        detail: { digest },
      });
    }
    await this.ingest({ mediaType: 'application/octet-stream', digest, size: session.size }, session.path);
    await this.drop(session);
    this.context.metrics.uploads.inc({ result: 'ok' });
    return this.created(repo, digest, res);
  }

  /** Copies a verified upload into the store through its ingest (which verifies again). */
  private async ingest(descriptor: Descriptor, path: string): Promise<void> {
    const ingest = await this.context.store.openIngest(descriptor, { source: 'push' });
    if (ingest.alreadyPresent) return;
    try {
      if (ingest.offset > 0) await ingest.reset();
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await ingest.write(chunk as Buffer);
      await ingest.commit();
    } catch (err) {
      await ingest.abort().catch(() => undefined);
      throw err;
    }
  }

  /** `POST ?digest=`: the whole blob in one request, streamed into the store's ingest. */
  private async monolithic(repo: RepositoryName, digest: string, req: IncomingMessage, res: ServerResponse) {
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0)
      throw new DistributionError('SIZE_INVALID', 'a monolithic upload needs Content-Length', { status: 411 });
    if (length > this.maxBlobBytes)
      throw new DistributionError('SIZE_INVALID', `the blob is larger than ${this.maxBlobBytes} bytes`, {
        status: 413,
      });
    const ingest = await this.context.store.openIngest({ mediaType: 'application/octet-stream', digest, size: length });
    if (ingest.alreadyPresent) {
      req.resume();
      return this.created(repo, digest, res);
    }
    try {
      if (ingest.offset > 0) await ingest.reset();
      for await (const chunk of req as AsyncIterable<Buffer>) await ingest.write(chunk);
      await ingest.commit();
    } catch (err) {
      await ingest.abort().catch(() => undefined);
      this.context.metrics.uploads.inc({ result: 'digest-mismatch' });
      throw new DistributionError('DIGEST_INVALID', `the upload is not ${digest}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.context.metrics.uploads.inc({ result: 'ok' });
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

  private async drop(session: Session): Promise<void> {
    this.sessions.delete(session.id);
    await rm(session.path, { force: true });
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

async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
