import { createHash, type Hash } from 'node:crypto';
import { constants, writeSync } from 'node:fs';
import { lstat, lutimes, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VerifyError, type ParsedDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { StoreError, errnoCode } from './errors.ts';
import { isNoSpace } from './reserve.ts';
import {
  NotRegularError,
  ensureRealDir,
  fsyncDir,
  openRegular,
  readBounded,
  unlinkIfPresent,
  writeTemp,
} from './fs-utils.ts';
import type { FileLock } from './lock.ts';
import { DirectWriter } from './direct-write.ts';

const { O_RDWR, O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = constants;

/** One fdatasync at commit: measured here, background fdatasyncs during the download made the
 * whole ingest slower (≈ 430 vs 650 MiB/s for 512 MiB), not faster. */
const REHASH_BUFFER = 1 << 20;

/**
 * A download in progress into `ingest/`, committed into `blobs/` only once verified. Calls are
 * sequential: await each `write` before the next. Contract: every opened ingest ends with
 * exactly one `commit()` or `abort()` (usually `abort()` in a `finally`; it does nothing after a
 * commit). The ingest holds the digest's ingest lock until then, so a forgotten one blocks every
 * other download of that blob; nothing reaches `blobs/` or a reader without a verified commit.
 */
export interface Ingest {
  readonly descriptor: Descriptor;
  /** Bytes already present when the ingest was opened (a resumed partial), 0 for a new one, and
   * `descriptor.size` when the blob was already present. Ask the server for `Range: bytes=<offset>-`;
   * when `offset === descriptor.size` nothing is left to fetch: call `commit()`. */
  readonly offset: number;
  readonly resumed: boolean;
  /** The blob was already in the store (or another process committed it while we waited):
   * nothing to download; `commit()` and `abort()` do nothing, `write()` throws. */
  readonly alreadyPresent: boolean;
  /** Bytes received so far, `offset` included. */
  readonly bytes: number;
  /** The partial file the bytes go to (undefined when the blob was already present, or gathered
   * in memory). Opened with `partialFile`, every `write` is in it (in the page cache) when it
   * returns, so a reader may follow the file to pass the bytes on while they arrive; otherwise a
   * large blob's bytes reach it with O_DIRECT up to ≈ 2 MiB later. Renamed into `blobs/` at commit. */
  readonly partialPath: string | undefined;
  /** The partial file opened for reading (never through a symlink), for a reader following it;
   * it stays readable after the rename at commit. Undefined without a partial; ENOENT once it
   * was renamed or removed. The caller closes the handle. */
  openPartial(): Promise<FileHandle | undefined>;
  /** Hashes and writes; throws VerifyError ErrSizeMismatch the moment the total exceeds the
   * descriptor's size (the partial is then discarded and the ingest closed). */
  write(chunk: Uint8Array): Promise<void>;
  /** `write` for a caller that reuses the chunk's memory: the chunk is hashed, and written or
   * copied, before this returns. A returned promise is a failure, or (O_DIRECT) a wait for the
   * disk: await it before the next call. A write error may surface at a later call or at commit. */
  take(chunk: Uint8Array): Promise<void> | undefined;
  /** Discards what is there (a server that ignored `Range`) and starts again from 0. */
  reset(): Promise<void>;
  /** Verifies size and digest (VerifyError on a mismatch: the partial is removed and nothing
   * reaches `blobs/`), fsyncs, renames into `blobs/<alg>/<hex>` and fsyncs the directory.
   * `onVerified` is called once the content is known good, before the syncs (a server passing
   * the bytes on lets its clients finish then). When the disk fills up under the last writes
   * (ENOSPC), what reached it is kept for a later resume and the error is thrown. */
  commit(options?: { onVerified?: () => void }): Promise<void>;
  /** Closes without committing: `keepPartial` leaves the bytes for a later resume, otherwise
   * they are deleted. Idempotent; does nothing after commit. */
  abort(options?: { keepPartial?: boolean }): Promise<void>;
}

export interface IngestMetadata {
  readonly digest: string;
  readonly size: number;
  readonly source?: string;
  readonly startedAt: string;
  readonly updatedAt: string;
}

export interface IngestPaths {
  readonly store: string;
  readonly data: string;
  readonly meta: string;
  readonly blobDir: string;
  readonly blobFile: string;
}

/** Where a registry URL is written down, it loses its query (presigned signatures) and user info. */
export function redactSource(source: string | undefined): string | undefined {
  if (source === undefined) return undefined;
  try {
    const url = new URL(source);
    url.search = '';
    url.hash = '';
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return source.replace(/[?#].*$/s, '');
  }
}

export class PresentIngest implements Ingest {
  readonly descriptor: Descriptor;
  readonly offset: number;
  readonly resumed = false;
  readonly alreadyPresent = true;
  readonly bytes: number;
  readonly partialPath = undefined;
  private readonly blobFile: string;
  private readonly store: string;

  constructor(descriptor: Descriptor, store: string, blobFile: string) {
    this.descriptor = descriptor;
    this.store = store;
    this.offset = descriptor.size;
    this.bytes = descriptor.size;
    this.blobFile = blobFile;
  }

  async openPartial(): Promise<undefined> {
    return undefined;
  }

  write(): Promise<void> {
    return Promise.reject(this.closed('write'));
  }

  take(): Promise<void> {
    return this.write();
  }

  reset(): Promise<void> {
    return Promise.reject(this.closed('reset'));
  }

  private closed(what: string): StoreError {
    const digest = this.descriptor.digest;
    return new StoreError('ErrIngestClosed', `cannot ${what}: blob ${digest} is already present at ${this.blobFile}`, {
      store: this.store,
      digest,
      path: this.blobFile,
    });
  }

  async commit(): Promise<void> {}

  async abort(): Promise<void> {}
}

/** Where an ingest is: taking bytes, committed, or closed without committing. */
export type IngestState = 'open' | 'committed' | 'closed';

/** ErrIngestClosed: `what` was asked of the ingest of `digest` in `store` after it ended. */
export function ingestClosed(what: string, digest: string, store: string, state: IngestState): StoreError {
  return new StoreError('ErrIngestClosed', `cannot ${what}: the ingest of ${digest} in ${store} is ${state}`, {
    store,
    digest,
  });
}

/** `Ingest.write` of an ingest whose `take` copies the chunk: take it, then wait for what take returned. */
export async function writeByTaking(ingest: Pick<Ingest, 'take'>, chunk: Uint8Array): Promise<void> {
  const wait = ingest.take(chunk);
  if (wait !== undefined) await wait;
}

/** ErrSizeMismatch: the blob of `expected` came to `actualSize` bytes. */
export function sizeMismatch(
  expected: { readonly digest: string; readonly size: number },
  actualSize: number,
): VerifyError {
  return new VerifyError('ErrSizeMismatch', {
    expectedDigest: expected.digest,
    expectedSize: expected.size,
    actualSize,
  });
}

/** ErrDigestMismatch when `actualDigest` is not `expected`'s (its size checked already), else undefined. */
export function digestMismatch(
  expected: { readonly digest: string; readonly size: number },
  actualDigest: string,
): VerifyError | undefined {
  if (actualDigest === expected.digest) return undefined;
  return new VerifyError('ErrDigestMismatch', {
    expectedDigest: expected.digest,
    actualDigest,
    expectedSize: expected.size,
    actualSize: expected.size,
  });
}

/**
 * Chunks smaller than this are gathered into one write. A TLS socket hands over one record
 * (≤ 16 KiB) at a time, and a write system call per record cost ≈ 1 CPU s per GiB on a pull
 * over TLS, more than the sha256 of the same bytes; gathering costs a copy (≈ 0.05 s per GiB).
 */
const WRITE_BATCH = 256 * 1024;

export class FileIngest implements Ingest {
  readonly descriptor: Descriptor;
  readonly alreadyPresent = false;
  private startOffset: number;
  private wasResumed: boolean;
  private received: number;
  private hash: Hash;
  private state: IngestState = 'open';
  private filePosition: number;
  /** A write failed: what is on disk past the last good write is unknown. */
  private writeError: unknown;
  /** Small chunks gathered for one write (see {@link WRITE_BATCH}); `stagedBytes` of it are taken. */
  private staged: Buffer | undefined;
  private stagedBytes = 0;
  /** Writes with O_DIRECT (a new partial nobody reads while it grows), until settled. */
  private direct: DirectWriter | undefined;

  private constructor(
    descriptor: Descriptor,
    private readonly parsed: ParsedDigest,
    private readonly paths: IngestPaths,
    private readonly lock: FileLock,
    private readonly handle: FileHandle,
    private readonly metadata: IngestMetadata,
    private readonly beforePublish: () => Promise<void>,
    private readonly replaceExisting: boolean,
    hash: Hash,
    present: number,
    direct: DirectWriter | undefined,
  ) {
    this.direct = direct;
    this.descriptor = descriptor;
    this.hash = hash;
    this.startOffset = present;
    this.wasResumed = present > 0;
    this.received = present;
    this.filePosition = present;
  }

  /** Opens (or resumes) the partial of a digest; the caller holds the digest's ingest lock. */
  static async open(
    descriptor: Descriptor,
    parsed: ParsedDigest,
    paths: IngestPaths,
    lock: FileLock,
    source: string | undefined,
    beforePublish: () => Promise<void>,
    replaceExisting = false,
    allowDirect = false,
  ): Promise<FileIngest> {
    const handle = await open(paths.data, O_RDWR | O_CREAT | O_NOFOLLOW, 0o644);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new Error(`${paths.data} is not a regular file`);
      const hash = createHash(parsed.algorithm);
      let present = stat.size;
      // A partial longer than the blob cannot be a prefix of it.
      if (present > descriptor.size) {
        await handle.truncate(0);
        present = 0;
      }
      if (present > 0) present = await rehash(handle, hash, present);
      const previous = present > 0 ? await readMetadata(paths.meta) : undefined;
      const now = new Date().toISOString();
      const redacted = redactSource(source) ?? previous?.source;
      const metadata: IngestMetadata = {
        digest: descriptor.digest,
        size: descriptor.size,
        ...(redacted !== undefined && { source: redacted }),
        startedAt: previous?.startedAt ?? now,
        updatedAt: now,
      };
      await writeMetadata(paths.meta, metadata);
      const direct = allowDirect && present === 0 ? await DirectWriter.open(paths.data, handle.fd) : undefined;
      return new FileIngest(
        descriptor,
        parsed,
        paths,
        lock,
        handle,
        metadata,
        beforePublish,
        replaceExisting,
        hash,
        present,
        direct,
      );
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  get offset(): number {
    return this.startOffset;
  }

  get resumed(): boolean {
    return this.wasResumed;
  }

  get bytes(): number {
    return this.received;
  }

  get partialPath(): string {
    return this.paths.data;
  }

  async openPartial(): Promise<FileHandle> {
    return (await openRegular(this.paths.data)).handle;
  }

  write(chunk: Uint8Array): Promise<void> {
    return writeByTaking(this, chunk);
  }

  /**
   * Hashes the chunk and, before returning (so the caller may reuse its memory at once), either
   * copies it into the direct writer's buffer (O_DIRECT, see direct-write.ts: the promise it may
   * return is a wait for the disk) or writes it to the partial file through the page cache (a
   * small chunk: copies it into the write batch). The page-cache write is synchronous: measured
   * on a 1 GiB pull, queueing copies of the chunks for the thread pool cost ≈ 25 % more CPU and
   * 15 % of the throughput, for the sake of a write that takes ≈ 40 µs per 256 KiB. Returns a
   * rejected promise when the blob grew too large or a write failed.
   */
  take(chunk: Uint8Array): Promise<void> | undefined {
    this.assertOpen('write');
    const total = this.received + chunk.byteLength;
    if (total > this.descriptor.size) {
      return this.fail(sizeMismatch(this.descriptor, total));
    }
    if (this.writeError !== undefined) return Promise.reject(this.writeError);
    let wait: Promise<void> | undefined;
    try {
      wait = this.direct !== undefined ? this.direct.take(chunk) : this.stageOrWrite(chunk);
    } catch (err) {
      // Nothing of the chunk was taken: nothing of it is counted or hashed.
      this.writeError = err;
      return Promise.reject(err);
    }
    this.hash.update(chunk);
    this.received = total;
    return wait;
  }

  /** The page-cache path of `take`: a small chunk into the write batch, a large one written. */
  private stageOrWrite(chunk: Uint8Array): undefined {
    if (this.stagedBytes + chunk.byteLength > WRITE_BATCH) this.flushStaged();
    if (chunk.byteLength >= WRITE_BATCH) {
      this.writeAt(chunk);
    } else {
      this.staged ??= Buffer.allocUnsafeSlow(WRITE_BATCH);
      this.staged.set(chunk, this.stagedBytes);
      this.stagedBytes += chunk.byteLength;
    }
    return undefined;
  }

  /** Writes what is staged; a failure is remembered, as any write's. */
  private flushStaged(): void {
    if (this.stagedBytes === 0 || this.staged === undefined) return;
    const bytes = this.staged.subarray(0, this.stagedBytes);
    this.stagedBytes = 0;
    this.writeAt(bytes);
  }

  private writeAt(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.byteLength;) {
      done += writeSync(this.handle.fd, bytes, done, bytes.byteLength - done, this.filePosition + done);
    }
    this.filePosition += bytes.byteLength;
  }

  /** Writes what is staged or in flight before a sync; returns the write error, if any write
   * failed (the file then holds good bytes up to `filePosition`). */
  private async settleWrites(): Promise<unknown> {
    const direct = this.direct;
    if (direct !== undefined) {
      const { good, failure } = await direct.finish();
      if (this.direct === direct) this.direct = undefined;
      this.filePosition = good;
      this.writeError ??= failure;
    }
    if (this.writeError === undefined) {
      try {
        this.flushStaged();
      } catch (err) {
        this.writeError = err;
      }
    }
    return this.writeError;
  }

  async reset(): Promise<void> {
    this.assertOpen('reset');
    // What is staged is about to be truncated away: not written first.
    this.stagedBytes = 0;
    await this.settleWrites();
    this.writeError = undefined;
    await this.handle.truncate(0);
    this.hash = createHash(this.parsed.algorithm);
    this.received = 0;
    this.filePosition = 0;
    this.startOffset = 0;
    this.wasResumed = false;
  }

  async commit(options?: { onVerified?: () => void }): Promise<void> {
    this.assertOpen('commit');
    const writeError = await this.settleWrites();
    if (writeError !== undefined) {
      // The disk filled up under the last writes: what reached it stays for the next pull.
      if (isNoSpace(writeError)) {
        await this.abort({ keepPartial: true });
        throw writeError;
      }
      await this.fail(writeError);
    }
    const { digest, size } = this.descriptor;
    if (this.received !== size) await this.fail(sizeMismatch(this.descriptor, this.received));
    // What was hashed is what reached the file, or nothing is published.
    if (this.filePosition !== this.received)
      await this.fail(new Error(`${this.filePosition} of the ${this.received} bytes taken reached ${this.paths.data}`));
    const mismatch = digestMismatch(this.descriptor, `${this.parsed.algorithm}:${this.hash.digest('hex')}`);
    if (mismatch !== undefined) await this.fail(mismatch);
    this.state = 'committed';
    try {
      options?.onVerified?.();
      await this.handle.datasync();
      await this.handle.close();
      await this.beforePublish();
      await publish(this.paths.data, this.paths, size, this.replaceExisting);
      await unlinkIfPresent(this.paths.meta);
    } catch (err) {
      await this.handle.close().catch(() => undefined);
      // Verified bytes that found no room to be published stay for the next pull.
      if (isNoSpace(err)) throw err;
      await unlinkIfPresent(this.paths.data).catch(() => undefined);
      await unlinkIfPresent(this.paths.meta).catch(() => undefined);
      if (err instanceof NotRegularError) {
        throw new StoreError(
          'ErrStoreCorrupt',
          `image store ${this.paths.store}: cannot commit ${digest}: ${err.message}`,
          {
            store: this.paths.store,
            digest,
            path: err.path,
            cause: err,
          },
        );
      }
      throw err;
    } finally {
      await this.lock.release();
    }
  }

  async abort(options?: { keepPartial?: boolean }): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closed';
    try {
      if (options?.keepPartial === true) {
        // What was written is what the next run re-hashes; a failed write may have left a torn
        // tail, so keep only what is known to be on disk. A write refused for lack of space is not
        // torn: writes are sequential and stop at the first failure, so the file is a prefix.
        try {
          const error = await this.settleWrites();
          if (error !== undefined) await this.handle.truncate(isNoSpace(error) ? this.filePosition : 0);
          await this.handle.datasync();
        } finally {
          await this.handle.close();
        }
        // The metadata written when the ingest opened stays when there is no room to update it.
        await writeMetadata(this.paths.meta, { ...this.metadata, updatedAt: new Date().toISOString() }).catch(
          (err: unknown) => {
            if (!isNoSpace(err)) throw err;
          },
        );
      } else {
        // The file goes: what is staged is not written, only writes in flight are waited for.
        this.stagedBytes = 0;
        await this.settleWrites().catch(() => undefined);
        await this.handle.close().catch(() => undefined);
        await unlinkIfPresent(this.paths.data);
        await unlinkIfPresent(this.paths.meta);
      }
    } finally {
      await this.lock.release();
    }
  }

  private assertOpen(what: string): void {
    if (this.state !== 'open') throw ingestClosed(what, this.descriptor.digest, this.paths.store, this.state);
  }

  /** Closes, removes the partial and its metadata, releases the lock, then throws `err`. */
  private async fail(err: unknown): Promise<never> {
    this.state = 'closed';
    try {
      await this.settleWrites().catch(() => undefined);
      await this.handle.close().catch(() => undefined);
      await unlinkIfPresent(this.paths.data).catch(() => undefined);
      await unlinkIfPresent(this.paths.meta).catch(() => undefined);
    } finally {
      await this.lock.release();
    }
    throw err;
  }
}

/** The hex digest of a file's content, read without following a symlink. */
export async function hashFile(path: string, algorithm: string): Promise<{ hex: string; bytes: number }> {
  const handle = await open(path, constants.O_RDONLY | O_NOFOLLOW);
  try {
    const hash = createHash(algorithm);
    const bytes = await rehash(handle, hash, Number.MAX_SAFE_INTEGER);
    return { hex: hash.digest('hex'), bytes };
  } finally {
    await handle.close();
  }
}

/** Feeds the first `size` bytes of the partial to `hash`; returns how many were there. */
async function rehash(handle: FileHandle, hash: Hash, size: number): Promise<number> {
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(REHASH_BUFFER, size)));
  let position = 0;
  while (position < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) break;
    hash.update(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return position;
}

async function readMetadata(path: string): Promise<Partial<IngestMetadata> | undefined> {
  try {
    const value = JSON.parse((await readBounded(path, 64 * 1024)).toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { startedAt, source } = value as Record<string, unknown>;
    return {
      ...(typeof startedAt === 'string' && { startedAt }),
      ...(typeof source === 'string' && { source }),
    };
  } catch {
    return undefined;
  }
}

async function writeMetadata(path: string, metadata: IngestMetadata): Promise<void> {
  const handle = await open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(metadata)}\n`);
  } finally {
    await handle.close();
  }
}

/**
 * Writes verified bytes to a new temp file in `ingestDir`, fdatasyncs it and publishes it at
 * `paths.blobFile` (see {@link publish}). The temp file is removed on failure.
 */
export async function writeVerifiedBlob(
  ingestDir: string,
  bytes: Uint8Array,
  paths: IngestPaths,
  size: number,
  replace = false,
): Promise<void> {
  const temp = await writeTemp(ingestDir, 'blob', bytes);
  try {
    await publish(temp, paths, size, replace);
  } catch (err) {
    await unlinkIfPresent(temp).catch(() => undefined);
    throw err;
  }
}

/**
 * Moves a verified file to its blob path and fsyncs the directory. A regular file of the right
 * size already there (another process, same content) wins and ours is dropped, unless `replace`
 * (it was found corrupt); anything else there (a planted symlink, a truncated file) is replaced,
 * since rename(2) never follows it.
 */
export async function publish(verifiedFile: string, paths: IngestPaths, size: number, replace = false): Promise<void> {
  const blobsDir = join(paths.blobDir, '..');
  if (await ensureRealDir(paths.blobDir)) await fsyncDir(blobsDir);
  const existing = await lstat(paths.blobFile).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  if (!replace && existing?.isFile() && existing.size === size) {
    await unlink(verifiedFile);
    return;
  }
  await rename(verifiedFile, paths.blobFile);
  await fsyncDir(paths.blobDir);
}

/** Marks a present blob as recently used, so that a concurrent `gc` within its grace keeps it. */
export async function touch(path: string): Promise<void> {
  const now = new Date();
  await lutimes(path, now, now).catch(() => undefined);
}
