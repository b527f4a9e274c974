import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from './errors.ts';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = constants;

/** Opening flags that refuse a symlink as the last path component (ELOOP). */
export const READ_NOFOLLOW = O_RDONLY | O_NOFOLLOW;

/** A file larger than the cap a reader set (S10: bounded reads, also from disk). */
export class FileTooLargeError extends Error {
  readonly size: number;
  readonly limit: number;
  constructor(path: string, size: number, limit: number) {
    super(`${path} is ${size} bytes, more than the limit of ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}

/** A path that should be a regular file or directory but is a symlink or something else. */
export class NotRegularError extends Error {
  readonly path: string;
  constructor(path: string, what: string) {
    super(`${path} is ${what}`);
    this.path = path;
  }
}

/** A regular file opened for reading, never through a symlink, with its size; the caller closes
 * the handle. NotRegularError for a symlink or anything but a regular file. */
export async function openRegular(path: string): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, READ_NOFOLLOW).catch((err: unknown) => {
    if (errnoCode(err) === 'ELOOP') throw new NotRegularError(path, 'a symlink (refused)');
    throw err;
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new NotRegularError(path, 'not a regular file');
    return { handle, size: stat.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Reads a whole file, refusing symlinks and anything but a regular file, and never reading more
 * than `maxBytes` (+1, to notice a file that grew past the cap while it was read).
 */
export async function readBounded(path: string, maxBytes: number): Promise<Buffer> {
  const { handle: fh, size } = await openRegular(path);
  try {
    if (size > maxBytes) throw new FileTooLargeError(path, size, maxBytes);
    const buffer = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await fh.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) throw new FileTooLargeError(path, filled, maxBytes);
    return buffer.subarray(0, filled);
  } finally {
    await fh.close();
  }
}

/** A name for a temporary file that tells which process made it: `tmp-<pid>-<random>`. */
export function tempName(purpose: string): string {
  return `tmp-${process.pid}-${randomBytes(6).toString('hex')}-${purpose}`;
}

/** The pid a `tempName` was made by, or undefined for other names. */
export function tempNamePid(name: string): number | undefined {
  const match = /^tmp-(\d+)-[0-9a-f]{12}-/.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

async function syncDirectoryNow(path: string): Promise<void> {
  const fh = await open(path, O_RDONLY | O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Per directory: the fsync running now, and the one queued to start after it. */
const dirSyncs = new Map<string, { readonly running: Promise<void>; next: Promise<void> | undefined }>();

function startDirSync(path: string): Promise<void> {
  const running: Promise<void> = syncDirectoryNow(path).finally(() => {
    if (dirSyncs.get(path)?.running === running) dirSyncs.delete(path);
  });
  dirSyncs.set(path, { running, next: undefined });
  return running;
}

/**
 * Makes the directory's entries (renames, links, unlinks done before the call) durable. Group
 * commit: a call while an fsync of the same directory runs joins the single fsync queued to start
 * after it (the running one may predate the caller's rename), so N blobs committed together into
 * blobs/sha256 cost 2 directory fsyncs, not N, with every caller's guarantee intact.
 */
export function fsyncDir(path: string): Promise<void> {
  const group = dirSyncs.get(path);
  if (group === undefined) return startDirSync(path);
  group.next ??= group.running.then(
    () => startDirSync(path),
    () => startDirSync(path),
  );
  return group.next;
}

/** Writes `data` to a new file `tmpDir/<temp>`, fsynced; returns its path. Nothing stays
 * behind when it fails. */
export async function writeTemp(tmpDir: string, purpose: string, data: Uint8Array | string): Promise<string> {
  const temp = join(tmpDir, tempName(purpose));
  const fh = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return temp;
}

/** Replaces `target` atomically: temp in `tmpDir` (same filesystem), fsync, rename, fsync dir. */
export async function writeFileAtomic(tmpDir: string, target: string, data: Uint8Array | string): Promise<void> {
  const temp = await writeTemp(tmpDir, 'write', data);
  try {
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dirname(target));
}

/**
 * Creates `target` with `data` only if nothing is there, atomically and with its full content
 * from the first moment (link(2) never replaces). False when `target` already existed.
 */
export async function createExclusive(
  tmpDir: string,
  target: string,
  data: Uint8Array | string,
  sync = true,
): Promise<boolean> {
  // Writes nothing when something is there already: opening an existing store must work on a
  // full disk, and a held lock costs no temporary file.
  if (
    await lstat(target).then(
      () => true,
      () => false,
    )
  )
    return false;
  const temp = sync ? await writeTemp(tmpDir, 'create', data) : await writeTempNoSync(tmpDir, data);
  try {
    await link(temp, target);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function writeTempNoSync(tmpDir: string, data: Uint8Array | string): Promise<string> {
  const temp = join(tmpDir, tempName('create'));
  const fh = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile(data);
  } catch (err) {
    // Nothing half-written stays behind (a full disk fails here).
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return temp;
}

/**
 * Makes sure `path` is a real directory, not a symlink planted to send writes elsewhere (S11).
 * Creates it when absent (the parent must already be checked). True when it was created.
 */
export async function ensureRealDir(path: string): Promise<boolean> {
  try {
    const stat = await lstat(path);
    if (stat.isSymbolicLink()) throw new NotRegularError(path, 'a symlink (refused)');
    if (!stat.isDirectory()) throw new NotRegularError(path, 'not a directory');
    return false;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  try {
    await mkdir(path, { mode: 0o755 });
    return true;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    return ensureRealDir(path);
  }
}

export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
