import { AsyncLocalStorage } from 'node:async_hooks';
import { lstat, mkdir, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DigestVerifier, digestOf, parseDigest, type ParsedDigest } from '../digest/index.ts';
import { KeyedMutex } from '../signals/index.ts';
import { parseDescriptor, type Descriptor, type ImageIndex } from '../oci/index.ts';
import { BlobReadStream, readBlobChunks } from './blob-stream.ts';
import { ClaimLog } from './claims.ts';
import { StoreError, errnoCode } from './errors.ts';
import { fsck, type FsckReport } from './fsck.ts';
import {
  FileTooLargeError,
  NotRegularError,
  createExclusive,
  ensureRealDir,
  openRegular,
  readBounded,
  tempName,
  writeFileAtomic,
} from './fs-utils.ts';
import { gc, type GcOptions, type GcResult } from './gc.ts';
import { splitImageName } from './image-name.ts';
import {
  FileIngest,
  PresentIngest,
  hashFile,
  touch,
  writeVerifiedBlob,
  type Ingest,
  type IngestPaths,
} from './ingest.ts';
import { FileUpload, type BlobUpload } from './upload.ts';
import {
  emptyLayoutIndex,
  findEntries,
  parseLayoutIndex,
  serializeLayoutIndex,
  toRecord,
  withFullRefNames,
  withImage,
  withoutImage,
  type ImageRecord,
} from './layout-index.ts';
import type { LayoutReader } from './layout-reader.ts';
import { LockTimeoutError, acquireInProcess, acquireLock, type FileLock } from './lock.ts';
import { SpaceReserve } from './reserve.ts';
import { SMALL_INGEST_BYTES, SmallIngest } from './small-ingest.ts';
import {
  BLOBS_DIR,
  INDEX_FILE,
  INDEX_LOCK,
  INGEST_DIR,
  OCI_LAYOUT_CONTENT,
  OCI_LAYOUT_FILE,
  blobRelativePath,
  defaultStorePath,
  ingestBaseName,
} from './paths.ts';

export interface StoreOptions {
  /** Create the layout when absent (default true). With false a missing store is ErrStoreNotFound. */
  readonly create?: boolean;
  /** Open an existing layout to read only (a copy's source, a layout another tool wrote): nothing
   * is created and `index.json` is not migrated, so the layout stays byte for byte as it was. */
  readonly readOnly?: boolean;
  /** How long `lock` (and so setImage, removeImage, gc) waits for another process; default 120 s. */
  readonly lockTimeoutMs?: number;
  /** Cap on `index.json` read from disk (S10); default 16 MiB. */
  readonly maxIndexBytes?: number;
  /** Cap on a manifest or index blob read from disk by gc and fsck; default 4 MiB. */
  readonly maxManifestBytes?: number;
}

export interface OpenIngestOptions {
  /** Where the bytes come from, kept in the ingest metadata (query string and user info dropped). */
  readonly source?: string;
  /** Ends a wait for another process ingesting the same digest. */
  readonly signal?: AbortSignal;
  /** Gives up waiting for another process with ErrStoreLocked; default: wait (the signal decides). */
  readonly timeoutMs?: number;
  /** Re-hash a blob already present instead of trusting it; a corrupt one is downloaded again
   * and replaced. */
  readonly verifyExisting?: boolean;
  /** Keep the bytes in a partial file under `ingest/` (`Ingest.partialPath`) even for a small
   * blob, which is otherwise gathered in memory (a reader follows the file while it grows). */
  readonly partialFile?: boolean;
}

export interface OpenBlobStreamOptions {
  /** Hash while reading and fail at the end (ErrStoreCorrupt) when the content is not the digest's. */
  readonly verify?: boolean;
  /** First byte to read (default 0); with `verify` only 0, since a part cannot be verified. */
  readonly start?: number;
  /** Last byte to read, inclusive (an HTTP `Range`); default the end of the blob. */
  readonly end?: number;
}

/** An OCI image layout: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`, plus `ingest/`. */
export interface Store {
  readonly root: string;
  /** True when `blobs/<alg>/<hex>` is a regular file (a symlink there is not a blob). Throws a
   * DigestError for an invalid digest. */
  hasBlob(digest: string): Promise<boolean>;
  /** The size of a blob, or undefined when it is absent (as for `hasBlob`). */
  blobSize(digest: string): Promise<number | undefined>;
  /** A blob opened for reading at random offsets, with its size; the caller closes the handle.
   * It reads the same content if a gc removes the file meanwhile. ErrBlobUnknown when absent,
   * ErrStoreCorrupt for a symlink or anything but a regular file. */
  openBlobFile(digest: string): Promise<{ handle: FileHandle; size: number }>;
  /** The path of a blob; throws a DigestError for an invalid digest (S8, S11). */
  blobPath(digest: string): string;
  /** The whole blob, at most `maxBytes` (ErrBlobTooLarge beyond), verified against its digest
   * (ErrStoreCorrupt otherwise). ErrBlobUnknown when absent. */
  readBlob(digest: string, maxBytes: number): Promise<Buffer>;
  /** Streams a blob; errors (ErrBlobUnknown, ErrStoreCorrupt) arrive as stream errors. */
  openBlobStream(digest: string, options?: OpenBlobStreamOptions): Readable;
  /**
   * A blob from byte `start` as openBlobStream reads it (same checks, same errors), but every
   * chunk read into one buffer again once the next is asked for: for a caller that is done with
   * each chunk by then (a push of a large blob), which a stream cannot promise.
   */
  readBlobChunks(digest: string, start?: number): AsyncIterable<Buffer>;
  /** Stores small content held in memory (manifests, configs): verified, then written through a
   * temporary file renamed into place. VerifyError when the bytes are not the descriptor's. */
  putBlob(descriptor: Descriptor, bytes: Uint8Array): Promise<void>;
  /** Starts or resumes the download of a blob. When another process (or call) ingests the same
   * digest, waits until it committed (then `alreadyPresent`) or gave up (then takes over). */
  openIngest(descriptor: Descriptor, options?: OpenIngestOptions): Promise<Ingest>;
  /** Starts the upload of a blob whose digest is told only at its commit (a registry push):
   * hashed once as it is written, verified at commit, no digest lock held meanwhile. */
  openUpload(): Promise<BlobUpload>;
  /** Points a full normalized reference (`docker.io/library/busybox:1.36`, or `…@sha256:…`) at a
   * top-level descriptor, replacing that reference's entry. */
  setImage(name: string, descriptor: Descriptor): Promise<void>;
  /** The entry for a full reference; also finds entries written by skopeo (ref.name = tag) and
   * crane (ref.name = full reference). */
  getImage(name: string): Promise<ImageRecord | undefined>;
  /** As getImage, but ErrImageUnknown (naming the image and the store) when absent. */
  requireImage(name: string): Promise<ImageRecord>;
  listImages(): Promise<ImageRecord[]>;
  /** Removes the entry `getImage` would return (and duplicates of the same full name). */
  removeImage(name: string): Promise<boolean>;
  /** Removes blobs no image reaches and stale ingests. */
  gc(options?: GcOptions): Promise<GcResult>;
  /** Re-hashes every blob and checks every image's blobs are there; reports, never throws on a problem. */
  fsck(): Promise<FsckReport>;
  /** Runs `fn` holding the store's cross-process lock on `index.json` (re-entrant). */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Ends this store instance's claims on blobs that an image now reaches (call after
   * `setImage`), so that a `gc` in this very process may collect them once the image goes.
   */
  releaseClaims(digests: readonly string[]): Promise<void>;
}

const DEFAULT_LOCK_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_INDEX_BYTES = 16 << 20;
const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;

/** Index locks this async context holds, for re-entrant `lock`. */
const heldIndexLocks = new AsyncLocalStorage<ReadonlySet<string>>();

/** Opens (by default creating) the layout at `dir`, or at `defaultStorePath()`. */
export async function openStore(dir?: string, options: StoreOptions = {}): Promise<Store> {
  const given = resolve(dir ?? defaultStorePath());
  const create = options.readOnly !== true && (options.create ?? true);
  await new LayoutStore(given, options).init(create, false);
  // One spelling per store, so that locks taken through two paths to it are one lock.
  const store = new LayoutStore(await realpath(given), options);
  await store.init(create, true);
  if (options.readOnly !== true) await store.migrateIndex();
  return store;
}

/**
 * The OCI image-layout store on disk (`openStore` returns one): blobs by digest, names in
 * `index.json`, partial downloads in `ingest/`. Contract: a blob is readable only after an
 * `Ingest` committed it verified (size and digest), `index.json` is replaced atomically under the
 * store lock, and a crash at any point leaves a layout that `fsck` accepts, never a half-written
 * blob or name. Processes sharing a store coordinate through its file lock.
 */
export class LayoutStore implements Store, LayoutReader {
  readonly root: string;
  readonly ingestDir: string;
  readonly indexPath: string;
  readonly maxManifestBytes: number;
  private readonly maxIndexBytes: number;
  private readonly lockTimeoutMs: number;
  private prepared: Promise<void> | undefined;
  private readonly claims: ClaimLog;
  private readonly reserve: SpaceReserve;

  constructor(root: string, options: StoreOptions) {
    this.root = root;
    this.ingestDir = join(root, INGEST_DIR);
    this.indexPath = join(root, INDEX_FILE);
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.maxIndexBytes = options.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.claims = new ClaimLog(this.ingestDir);
    this.reserve = new SpaceReserve(root, this.ingestDir);
  }

  /** @internal Checks (and with `create` makes) the layout; `prepare` also creates its parts. */
  async init(create: boolean, prepare: boolean, recheck = true): Promise<void> {
    const rootStat = await lstat(this.root).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (rootStat === undefined) {
      if (!create) throw this.error('ErrStoreNotFound', `no image store at ${this.root}`);
      await mkdir(this.root, { recursive: true, mode: 0o755 });
    }
    const layoutPath = join(this.root, OCI_LAYOUT_FILE);
    let layout: Buffer | undefined;
    try {
      layout = await readBounded(layoutPath, 64 * 1024);
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR')
        throw this.error('ErrStoreCorrupt', `image store ${this.root} is not a directory`, { cause: err });
      if (errnoCode(err) !== 'ENOENT') throw this.corrupt(`cannot read ${layoutPath}: ${(err as Error).message}`, err);
    }
    if (layout === undefined) {
      if (!create)
        throw this.error('ErrStoreNotFound', `${this.root} is not an OCI image layout (no ${OCI_LAYOUT_FILE})`);
      const entries = await readdir(this.root);
      // Another process creating the same store wrote its oci-layout since we looked: check that.
      if (entries.includes(OCI_LAYOUT_FILE) && recheck) return this.init(create, prepare, false);
      // A fresh file system mounted here has lost+found; dot files are not content either.
      const foreign = entries.filter(
        (e) => ![INGEST_DIR, BLOBS_DIR, INDEX_FILE, 'lost+found'].includes(e) && !e.startsWith('.'),
      );
      if (foreign.length > 0) {
        throw this.corrupt(
          `${this.root} is not empty and not an OCI image layout (no ${OCI_LAYOUT_FILE}); refusing to write into it`,
        );
      }
    } else {
      checkLayoutFile(layout, layoutPath, (message) => this.corrupt(message));
    }
    if (create && prepare) await this.prepareWrite();
  }

  /** Makes sure `blobs/`, `ingest/`, `oci-layout` and `index.json` exist, none of them a symlink. */
  private prepareWrite(): Promise<void> {
    this.prepared ??= (async () => {
      try {
        await ensureRealDir(join(this.root, BLOBS_DIR));
        await ensureRealDir(join(this.root, BLOBS_DIR, 'sha256'));
        await ensureRealDir(this.ingestDir);
        await createExclusive(this.ingestDir, join(this.root, OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
        await createExclusive(this.ingestDir, this.indexPath, serializeLayoutIndex(emptyLayoutIndex()));
        await this.reserve.ensure();
      } catch (err) {
        this.prepared = undefined;
        if (err instanceof NotRegularError) throw this.corrupt(err.message, err);
        throw err;
      }
    })();
    return this.prepared;
  }

  error(
    code: StoreError['code'],
    message: string,
    facts: { digest?: string; image?: string; path?: string; cause?: unknown; holderPid?: number } = {},
  ): StoreError {
    return new StoreError(code, message, { store: this.root, ...facts });
  }

  corrupt(
    message: string,
    cause?: unknown,
    facts: { digest?: string; image?: string; path?: string } = {},
  ): StoreError {
    return this.error('ErrStoreCorrupt', `image store ${this.root}: ${message}`, { ...facts, cause });
  }

  blobPath(digest: string): string {
    return join(this.root, blobRelativePath(digest).file);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.blobSize(digest)) !== undefined;
  }

  async blobSize(digest: string): Promise<number | undefined> {
    const path = this.blobPath(digest);
    try {
      const info = await lstat(path);
      return info.isFile() ? info.size : undefined;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async openBlobFile(digest: string): Promise<{ handle: FileHandle; size: number }> {
    try {
      return await openRegular(this.blobPath(digest));
    } catch (err) {
      throw this.blobError(err, digest);
    }
  }

  /** Maps a file-system error about a blob to the store's errors. */
  blobError(err: unknown, digest: string): unknown {
    const path = this.blobPath(digest);
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
      return this.error('ErrBlobUnknown', `blob ${digest} is not in the image store ${this.root}`, {
        digest,
        path,
        cause: err,
      });
    }
    if (err instanceof NotRegularError || errnoCode(err) === 'ELOOP') {
      return this.corrupt(`blob ${digest} at ${path} is a symlink or not a regular file (refused)`, err, {
        digest,
        path,
      });
    }
    if (err instanceof FileTooLargeError) {
      return this.error(
        'ErrBlobTooLarge',
        `blob ${digest} in the image store ${this.root} is ${err.size} bytes, more than the limit of ${err.limit}`,
        {
          digest,
          path,
          cause: err,
        },
      );
    }
    return err;
  }

  async readBlob(digest: string, maxBytes: number): Promise<Buffer> {
    const { parsed, file } = blobRelativePath(digest);
    let bytes: Buffer;
    try {
      bytes = await readBounded(join(this.root, file), maxBytes);
    } catch (err) {
      throw this.blobError(err, digest);
    }
    const actual = digestOf(bytes, parsed.algorithm);
    if (actual !== digest) {
      throw this.corrupt(`blob ${digest} holds content that hashes to ${actual}; run kimg fsck`, undefined, {
        digest,
        path: join(this.root, file),
      });
    }
    return bytes;
  }

  openBlobStream(digest: string, options: OpenBlobStreamOptions = {}): Readable {
    const { parsed, file } = blobRelativePath(digest);
    const path = join(this.root, file);
    return new BlobReadStream(
      path,
      parsed,
      (err) => this.readError(err, digest, path),
      options.verify === true,
      options.start ?? 0,
      options.end,
    );
  }

  readBlobChunks(digest: string, start = 0): AsyncIterable<Buffer> {
    const path = this.blobPath(digest);
    return readBlobChunks(path, (err) => this.readError(err, digest, path), start);
  }

  /** An error while reading blob `digest` at `path`, as the store reports it. */
  private readError(err: unknown, digest: string, path: string): Error {
    const mapped = this.blobError(err, digest);
    if (mapped !== err) return mapped as Error;
    return err instanceof Error && errnoCode(err) !== undefined
      ? err
      : this.corrupt(`blob ${digest} at ${path}: ${(err as Error).message}`, err, { digest, path });
  }

  private ingestPaths(parsed: ParsedDigest): IngestPaths {
    const base = ingestBaseName(parsed);
    const blobDir = join(this.root, BLOBS_DIR, parsed.algorithm);
    return {
      store: this.root,
      data: join(this.ingestDir, `${base}.data`),
      meta: join(this.ingestDir, `${base}.json`),
      blobDir,
      blobFile: join(blobDir, parsed.encoded),
    };
  }

  async putBlob(descriptor: Descriptor, bytes: Uint8Array): Promise<void> {
    const parsed = checkDescriptor(descriptor);
    const verifier = new DigestVerifier(descriptor.digest, descriptor.size);
    verifier.update(bytes);
    verifier.finish();
    const paths = this.ingestPaths(parsed);
    await this.prepareWrite();
    await this.claims.claim(descriptor.digest);
    if ((await this.blobSize(descriptor.digest)) === descriptor.size) return;
    try {
      await writeVerifiedBlob(this.ingestDir, bytes, paths, descriptor.size);
    } catch (err) {
      if (err instanceof NotRegularError) throw this.corrupt(err.message, err, { digest: descriptor.digest });
      throw err;
    }
  }

  async openIngest(descriptor: Descriptor, options: OpenIngestOptions = {}): Promise<Ingest> {
    const parsed = checkDescriptor(descriptor);
    const paths = this.ingestPaths(parsed);
    // Present with the descriptor's size (a wrong size means a corrupt file, which a new download
    // replaces, or a lying descriptor, whose download will fail).
    const present = async (): Promise<boolean> => (await this.blobSize(descriptor.digest)) === descriptor.size;
    await this.prepareWrite();
    // Claimed before looking, so that a concurrent gc keeps what we are about to rely on.
    await this.claims.claim(descriptor.digest);
    let replaceExisting = false;
    if (await present()) {
      if (
        options.verifyExisting !== true ||
        (await hashFile(paths.blobFile, parsed.algorithm)).hex === parsed.encoded
      ) {
        await touch(paths.blobFile);
        return new PresentIngest(descriptor, this.root, paths.blobFile);
      }
      replaceExisting = true;
    }
    const lockPath = join(this.ingestDir, `${ingestBaseName(parsed)}.lock`);
    if (descriptor.size <= SMALL_INGEST_BYTES && options.partialFile !== true) {
      // No lock file: within this process a second ingest of the digest (small or not) waits for
      // the first, then finds it present; another process may fetch the same small blob meanwhile.
      let release: () => void;
      try {
        release = await acquireInProcess(lockPath, options);
      } catch (err) {
        throw this.lockError(err, `the ingest of ${descriptor.digest}`, descriptor.digest);
      }
      try {
        if (!replaceExisting && (await present())) {
          release();
          await touch(paths.blobFile);
          return new PresentIngest(descriptor, this.root, paths.blobFile);
        }
      } catch (err) {
        release();
        throw err;
      }
      return new SmallIngest(
        descriptor,
        parsed,
        paths,
        this.ingestDir,
        () => this.claims.claim(descriptor.digest),
        replaceExisting,
        release,
      );
    }
    let lock: FileLock | undefined;
    try {
      lock = await acquireLock(lockPath, this.ingestDir, {
        ...(options.signal !== undefined && { signal: options.signal }),
        ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
        until: replaceExisting ? undefined : present,
        purpose: `ingest ${descriptor.digest}`,
      });
    } catch (err) {
      throw this.lockError(err, `the ingest of ${descriptor.digest}`, descriptor.digest);
    }
    if (lock === undefined || (!replaceExisting && (await present()))) {
      await lock?.release();
      await touch(paths.blobFile);
      return new PresentIngest(descriptor, this.root, paths.blobFile);
    }
    try {
      return await FileIngest.open(
        descriptor,
        parsed,
        paths,
        lock,
        options.source,
        () => this.claims.claim(descriptor.digest),
        replaceExisting,
        // Followers of a partial file read it as it grows: through the page cache.
        options.partialFile !== true,
      );
    } catch (err) {
      await lock.release();
      if (errnoCode(err) === 'ELOOP')
        throw this.corrupt(`${paths.data} is a symlink (refused)`, err, { digest: descriptor.digest });
      throw err;
    }
  }

  async openUpload(): Promise<BlobUpload> {
    await this.prepareWrite();
    return FileUpload.create(
      join(this.ingestDir, tempName('upload')),
      this.root,
      (digest) => this.ingestPaths(parseDigest(digest)),
      (digest) => this.claims.claim(digest),
    );
  }

  private lockError(err: unknown, what: string, digest?: string): unknown {
    if (!(err instanceof LockTimeoutError)) return err;
    const holder = err.holder;
    return this.error(
      'ErrStoreLocked',
      `image store ${this.root}: timed out waiting for ${what}` +
        (holder
          ? ` (lock ${err.lockPath} held by pid ${holder.pid} since ${holder.acquiredAt})`
          : ` (lock ${err.lockPath})`),
      {
        path: err.lockPath,
        cause: err,
        ...(digest !== undefined && { digest }),
        ...(holder !== undefined && { holderPid: holder.pid }),
      },
    );
  }

  async lock<T>(fn: () => Promise<T>): Promise<T> {
    return this.withIndexLock(fn, true);
  }

  /**
   * Holds the `index.json` lock around `fn`, or runs `fn` at once inside a `lock()` section of
   * this async context. Only `lock()` marks its section (`track`), for the store's own methods
   * that `fn` may call: on Node.js 20, the first `AsyncLocalStorage.run` turns on promise hooks
   * for the rest of the process, which a server that only ever updates tags should not pay on
   * every promise (a pull-through mirror spent 15–20 % more user time). `updateIndex` calls nothing
   * that locks again, so it does not mark its section.
   */
  private async withIndexLock<T>(fn: () => Promise<T>, track: boolean): Promise<T> {
    const lockPath = join(this.ingestDir, INDEX_LOCK);
    const current = heldIndexLocks.getStore();
    if (current?.has(lockPath)) return fn();
    await this.prepareWrite();
    let lock: FileLock | undefined;
    try {
      lock = await this.reserve.withSpace(() =>
        acquireLock(lockPath, this.ingestDir, { timeoutMs: this.lockTimeoutMs, purpose: 'index.json' }),
      );
    } catch (err) {
      throw this.lockError(err, 'the index.json lock');
    }
    try {
      return track ? await heldIndexLocks.run(new Set([...(current ?? []), lockPath]), fn) : await fn();
    } finally {
      await lock?.release();
    }
  }

  /** The layout's `index.json`, read bounded and strictly; empty when the file is absent. */
  async readIndex(): Promise<ImageIndex> {
    let bytes: Buffer;
    try {
      bytes = await readBounded(this.indexPath, this.maxIndexBytes);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return emptyLayoutIndex();
      throw this.corrupt(`cannot read ${this.indexPath}: ${(err as Error).message}`, err, { path: this.indexPath });
    }
    try {
      return parseLayoutIndex(bytes, this.indexPath);
    } catch (err) {
      throw this.corrupt(`invalid ${INDEX_FILE}: ${(err as Error).message}`, err, { path: this.indexPath });
    }
  }

  private async writeIndex(index: ImageIndex): Promise<void> {
    const bytes = serializeLayoutIndex(index);
    await this.reserve.withSpace(() => writeFileAtomic(this.ingestDir, this.indexPath, bytes));
  }

  releaseClaims(digests: readonly string[]): Promise<void> {
    return this.claims.release(digests);
  }

  async setImage(name: string, descriptor: Descriptor): Promise<void> {
    const parts = splitImageName(name);
    if (parts === undefined || (parts.tag === undefined && parts.digest === undefined)) {
      throw this.error(
        'ErrImageNameInvalid',
        `image name ${JSON.stringify(name.slice(0, 300))} is not a full reference with a tag or digest`,
        {
          image: name,
        },
      );
    }
    const checked = parseDescriptor(descriptor, `descriptor for ${name}`, (message) => {
      throw new TypeError(message);
    });
    await this.updateIndex((index) => ({ index: withImage(index, name, checked), result: undefined }));
  }

  async getImage(name: string): Promise<ImageRecord | undefined> {
    const index = await this.readIndex();
    const found = findEntries(index.manifests, name)[0];
    const entry = found === undefined ? undefined : index.manifests[found];
    return entry === undefined ? undefined : toRecord(entry);
  }

  async listImages(): Promise<ImageRecord[]> {
    return (await this.readIndex()).manifests.map(toRecord);
  }

  async removeImage(name: string): Promise<boolean> {
    return this.updateIndex((index) => {
      const updated = withoutImage(index, name);
      return { index: updated.removed > 0 ? updated.index : undefined, result: updated.removed > 0 };
    });
  }

  /** Read, change, write `index.json` under the lock. Updates are also queued within the process:
   * calls made concurrently inside one `lock()` section re-enter it and must not interleave. */
  private updateIndex<T>(change: (index: ImageIndex) => { index: ImageIndex | undefined; result: T }): Promise<T> {
    return this.withIndexLock(
      () =>
        indexWriters.run(this.indexPath, async () => {
          const read = await this.readIndex();
          const migrated = withFullRefNames(read);
          const { index, result } = change(migrated ?? read);
          const updated = index ?? migrated;
          if (updated !== undefined) await this.writeIndex(updated);
          return result;
        }),
      false,
    );
  }

  /**
   * @internal Gives entries written by earlier kimg versions their full reference as ref.name
   * (see withFullRefNames), once, when the store is opened; a store already migrated is only read.
   * Best effort: a store this process may not write (read-only, full) or whose lock another
   * process holds is read as it is (lookups read both names) and migrated by its next write.
   */
  async migrateIndex(): Promise<void> {
    let index: ImageIndex;
    try {
      index = await this.readIndex();
    } catch {
      return; // a broken index.json is for the command that reads it (and fsck) to report
    }
    if (withFullRefNames(index) === undefined) return;
    try {
      await this.updateIndex(() => ({ index: undefined, result: undefined }));
    } catch (err) {
      // Opening must work on a store this process cannot write now (read-only, full, busy).
      const code = errnoCode(err);
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOSPC' || code === 'EDQUOT') return;
      if (err instanceof StoreError && (err.code === 'ErrStoreLocked' || err.code === 'ErrStoreFull')) return;
      throw err;
    }
  }

  async requireImage(name: string): Promise<ImageRecord> {
    const record = await this.getImage(name);
    if (record === undefined) throw this.imageUnknown(name);
    return record;
  }

  imageUnknown(name: string): StoreError {
    return this.error('ErrImageUnknown', `image ${name} is not in the image store ${this.root}`, { image: name });
  }

  async gc(options?: GcOptions): Promise<GcResult> {
    const result = await gc(this, options);
    // Room again after a gc on a full disk: the space reserve is made anew.
    if (!result.dryRun) await this.reserve.ensure();
    return result;
  }

  fsck(): Promise<FsckReport> {
    return fsck(this);
  }
}

/** `index.json` writes of every store object in this process, one at a time per file. */
const indexWriters = new KeyedMutex();

/** The digest parsed (DigestError passes through) and the size checked. */
function checkDescriptor(descriptor: Descriptor): ParsedDigest {
  const parsed = parseDigest(descriptor.digest);
  if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
    throw new RangeError(`invalid size ${descriptor.size} for ${descriptor.digest}`);
  }
  return parsed;
}

function checkLayoutFile(bytes: Buffer, path: string, corrupt: (message: string) => Error): void {
  let version: unknown;
  try {
    version = (JSON.parse(bytes.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw corrupt(`${path} is not valid JSON`);
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw corrupt(`${path} declares imageLayoutVersion ${JSON.stringify(version)}; only 1.x layouts are supported`);
  }
}
