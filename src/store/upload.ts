import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { parseDigest } from '../digest/index.ts';
import { StoreError } from './errors.ts';
import { NotRegularError, unlinkIfPresent } from './fs-utils.ts';
import { digestMismatch, hashFile, publish, sizeMismatch, type IngestPaths } from './ingest.ts';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/**
 * Received chunks are gathered (by reference, not copied) into one vectored write of about this
 * size: a socket hands over 16–64 KiB at a time, and a write call per chunk costs more than the
 * hashing (see ingest.ts). Memory held is what a client sent, never a buffer per request.
 */
const WRITE_BATCH = 256 * 1024;
/** A client trickling tiny chunks is written every so many of them (IOV_MAX on Linux). */
const WRITE_BATCH_CHUNKS = 1024;

/**
 * A blob whose digest is not known until the end (a registry push: `POST`, `PATCH`es, then
 * `PUT ?digest=`). The bytes go to a file of its own in `ingest/` and are hashed once, by the
 * store, as they are written; `commit` checks that hash against the digest the pusher names
 * before anything reaches `blobs/`. No digest lock is held while bytes arrive, so a slow
 * pusher blocks no one else's push or pull of the same blob. Calls are sequential: one `append`
 * at a time. Contract: every upload ends with `commit()` or `abort()`; a process that dies first
 * leaves a temporary file that `gc` removes.
 */
export interface BlobUpload {
  /** Bytes received and written so far. */
  readonly size: number;
  /** The file the bytes go to (removed at abort, renamed into `blobs/` at commit). */
  readonly path: string;
  /**
   * Writes `chunks` after what is there, hashing each byte once. When the source fails (a
   * client that went away), what was received before the failure is kept, so the upload can be
   * resumed from `size`; a write that failed half-way is overwritten by the next `append` or cut
   * at `commit`. The file is open only while this runs. A chunk must not change once yielded
   * (it may be written after the next one arrives).
   */
  append(chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * Checks the bytes are `digest` (and `size` bytes, when given) by the hash taken while they
   * were written (another algorithm than sha256 re-reads the file), fsyncs, renames the file
   * into `blobs/<alg>/<hex>` and fsyncs the directory; a blob already there stays and the upload
   * is dropped. VerifyError on a mismatch. The upload is closed and its file gone afterwards,
   * whatever the outcome.
   */
  commit(digest: string, options?: { readonly size?: number }): Promise<void>;
  /** Removes the file, also while an `append` runs (it then fails). Idempotent; does nothing
   * after commit. */
  abort(): Promise<void>;
}

type State = 'open' | 'busy' | 'done';

/** The store's BlobUpload: `ingest/tmp-<pid>-<random>-upload`, hashed with sha256 as written. */
export class FileUpload implements BlobUpload {
  readonly path: string;
  private written = 0;
  private readonly hash: Hash = createHash('sha256');
  private state: State = 'open';

  private constructor(
    path: string,
    private readonly store: string,
    private readonly pathsOf: (digest: string) => IngestPaths,
    private readonly claim: (digest: string) => Promise<void>,
  ) {
    this.path = path;
  }

  /** Creates the (empty) file at `path`, which must not exist. */
  static async create(
    path: string,
    store: string,
    pathsOf: (digest: string) => IngestPaths,
    claim: (digest: string) => Promise<void>,
  ): Promise<FileUpload> {
    const handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    await handle.close();
    return new FileUpload(path, store, pathsOf, claim);
  }

  get size(): number {
    return this.written;
  }

  async append(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    this.enter('append');
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.path, O_WRONLY | O_NOFOLLOW);
      const file = handle;
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      // Written at explicit positions: what a failed write left past `written` is overwritten.
      const flush = async (): Promise<void> => {
        if (this.state !== 'busy') throw this.closed('append');
        const batch = pending;
        const bytes = pendingBytes;
        pending = [];
        pendingBytes = 0;
        const { bytesWritten } = await file.writev(batch, this.written);
        if (bytesWritten < bytes) {
          const rest = Buffer.concat(batch).subarray(bytesWritten);
          for (let done = 0; done < rest.byteLength;) {
            const written = await file.write(rest, done, rest.byteLength - done, this.written + bytesWritten + done);
            done += written.bytesWritten;
          }
        }
        // Hashed only once written, so the hash always covers exactly the first `written` bytes.
        for (const chunk of batch) this.hash.update(chunk);
        this.written += bytes;
      };
      let failure: unknown;
      try {
        for await (const chunk of chunks) {
          pending.push(chunk);
          pendingBytes += chunk.byteLength;
          if (pendingBytes >= WRITE_BATCH || pending.length >= WRITE_BATCH_CHUNKS) await flush();
        }
      } catch (err) {
        failure = err;
      }
      // What arrived before a source failure is kept for a resume (a failed write emptied the batch).
      if (pendingBytes > 0) await flush();
      if (failure !== undefined) throw failure;
    } finally {
      await handle?.close().catch(() => undefined);
      if (this.state === 'busy') this.state = 'open';
    }
  }

  async commit(digest: string, options: { readonly size?: number } = {}): Promise<void> {
    this.enter('commit');
    this.state = 'done';
    try {
      const parsed = parseDigest(digest);
      const expectedSize = options.size ?? this.written;
      if (this.written !== expectedSize) throw sizeMismatch({ digest, size: expectedSize }, this.written);
      const handle = await open(this.path, O_WRONLY | O_NOFOLLOW);
      try {
        // A write that failed half-way may have left bytes past the last whole one.
        await handle.truncate(this.written);
        const actual =
          parsed.algorithm === 'sha256'
            ? `sha256:${this.hash.digest('hex')}`
            : `${parsed.algorithm}:${(await hashFile(this.path, parsed.algorithm)).hex}`;
        const mismatch = digestMismatch({ digest, size: expectedSize }, actual);
        if (mismatch !== undefined) throw mismatch;
        await handle.datasync();
      } finally {
        await handle.close();
      }
      // Claimed before publishing, so that a concurrent gc keeps it until a manifest reaches it.
      await this.claim(digest);
      await publish(this.path, this.pathsOf(digest), this.written);
    } catch (err) {
      await unlinkIfPresent(this.path).catch(() => undefined);
      if (err instanceof NotRegularError) {
        throw new StoreError('ErrStoreCorrupt', `image store ${this.store}: cannot commit ${digest}: ${err.message}`, {
          store: this.store,
          digest,
          path: err.path,
          cause: err,
        });
      }
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.state === 'done') return;
    // An append still running fails at its next write (ErrIngestClosed).
    this.state = 'done';
    await unlinkIfPresent(this.path);
  }

  private enter(what: string): void {
    if (this.state === 'open') {
      this.state = 'busy';
      return;
    }
    throw this.state === 'busy' ? this.busy(what) : this.closed(what);
  }

  private closed(what: string): StoreError {
    return new StoreError('ErrIngestClosed', `cannot ${what}: the upload ${this.path} is closed`, {
      store: this.store,
      path: this.path,
    });
  }

  private busy(what: string): StoreError {
    return new StoreError('ErrIngestClosed', `cannot ${what}: the upload ${this.path} is being written`, {
      store: this.store,
      path: this.path,
    });
  }
}
