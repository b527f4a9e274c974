import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { KeyedMutex, systemClock } from '../signals/index.ts';
import { errnoCode } from './errors.ts';
import { createExclusive, readBounded, tempName } from './fs-utils.ts';

/**
 * Cross-process locks as files created with link(2) (atomic, never replacing, full content from the
 * first moment) holding the owner's pid. A lock whose process is dead (or whose pid now belongs to
 * a process started later) is stale and taken over. Within one process an in-memory mutex per
 * lock path queues callers first, so only processes poll the file system.
 */

export interface LockOwner {
  readonly pid: number;
  /** Start time of the process (Linux /proc), to tell a reused pid from the owner. */
  readonly startTime?: string;
  readonly host: string;
  readonly nonce: string;
  readonly acquiredAt: string;
  readonly purpose?: string;
}

export class LockTimeoutError extends Error {
  readonly lockPath: string;
  readonly holder: LockOwner | undefined;
  constructor(lockPath: string, holder: LockOwner | undefined, timeoutMs: number) {
    super(
      `timed out after ${timeoutMs} ms waiting for ${lockPath}` +
        (holder ? `, held by pid ${holder.pid} on ${holder.host} since ${holder.acquiredAt}` : ''),
    );
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/** Lock paths this process holds, with the nonce written in each. */
const held = new Map<string, string>();

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

let ownStartTime: string | undefined | null = null;
function selfStartTime(): string | undefined {
  if (ownStartTime === null) ownStartTime = procStartTime(process.pid);
  return ownStartTime;
}

const ownHost = hostname();

/** True when the owner may still be running; locks from another host are assumed live. */
export function isOwnerAlive(path: string, owner: LockOwner): boolean {
  if (owner.host !== ownHost) return true;
  if (owner.pid === process.pid && owner.startTime === selfStartTime()) return held.get(path) === owner.nonce;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
  }
  if (owner.startTime !== undefined) {
    const now = procStartTime(owner.pid);
    if (now !== undefined && now !== owner.startTime) return false;
  }
  return true;
}

type ReadResult =
  { state: 'missing' } | { state: 'owner'; owner: LockOwner; raw: string } | { state: 'garbage'; raw: string };

async function readLock(path: string): Promise<ReadResult> {
  let raw: string;
  try {
    raw = (await readBounded(path, 4096)).toString('utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { state: 'missing' };
    return { state: 'garbage', raw: '' };
  }
  try {
    const value = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.nonce === 'string') {
      return { state: 'owner', owner: value as LockOwner, raw };
    }
  } catch {
    // fall through: a lock file we did not write in full (power loss) is garbage
  }
  return { state: 'garbage', raw };
}

/** Moves a stale lock away; if what moved turns out to be a fresh lock (someone else broke the
 * stale one first and took the lock), links it back without replacing anything. */
async function breakStale(path: string, tmpDir: string, staleRaw: string): Promise<void> {
  const tomb = join(tmpDir, tempName('stale-lock'));
  try {
    await rename(path, tomb);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  try {
    const moved = await readLock(tomb);
    const movedRaw = moved.state === 'missing' ? staleRaw : moved.raw;
    if (movedRaw !== staleRaw) {
      await link(tomb, path).catch((err: unknown) => {
        if (errnoCode(err) !== 'EEXIST') throw err;
      });
    }
  } finally {
    await unlink(tomb).catch(() => undefined);
  }
}

/** One held lock. `release` is idempotent. */
export class FileLock {
  readonly path: string;
  private readonly nonce: string;
  private releaseMutex: (() => void) | undefined;

  constructor(path: string, nonce: string, releaseMutex: () => void) {
    this.path = path;
    this.nonce = nonce;
    this.releaseMutex = releaseMutex;
  }

  async release(): Promise<void> {
    const releaseMutex = this.releaseMutex;
    if (releaseMutex === undefined) return;
    this.releaseMutex = undefined;
    try {
      if (held.get(this.path) === this.nonce) {
        held.delete(this.path);
        const current = await readLock(this.path);
        // Never remove a lock that is not ours any more.
        if (current.state === 'owner' && current.owner.nonce === this.nonce)
          await unlink(this.path).catch(() => undefined);
      }
    } finally {
      releaseMutex();
    }
  }
}

type TryResult = { acquired: true; nonce: string } | { acquired: false; holder: LockOwner | undefined };

async function tryLockFile(path: string, tmpDir: string, purpose: string | undefined): Promise<TryResult> {
  let holder: LockOwner | undefined;
  for (let attempt = 0; attempt < 8; attempt++) {
    const nonce = randomBytes(12).toString('hex');
    const owner: LockOwner = {
      pid: process.pid,
      ...(selfStartTime() !== undefined && { startTime: selfStartTime() }),
      host: ownHost,
      nonce,
      acquiredAt: new Date().toISOString(),
      ...(purpose !== undefined && { purpose }),
    };
    held.set(path, nonce);
    let created: boolean;
    try {
      created = await createExclusive(tmpDir, path, JSON.stringify(owner), false);
    } catch (err) {
      held.delete(path);
      throw err;
    }
    if (created) return { acquired: true, nonce };
    held.delete(path);
    const current = await readLock(path);
    if (current.state === 'missing') continue;
    if (current.state === 'owner' && isOwnerAlive(path, current.owner))
      return { acquired: false, holder: current.owner };
    holder = current.state === 'owner' ? current.owner : undefined;
    await breakStale(path, tmpDir, current.raw);
  }
  return { acquired: false, holder };
}

/** In-process exclusion per lock file, before the cross-process lock file itself. */
const mutex = new KeyedMutex();

export interface AcquireOptions {
  readonly signal?: AbortSignal;
  /** Give up with LockTimeoutError after this long; default: wait as long as the signal allows. */
  readonly timeoutMs?: number;
  /** Checked while waiting for another process: true ends the wait without the lock. */
  readonly until?: () => Promise<boolean>;
  /** Written into the lock file for humans (e.g. `ingest sha256:…`). */
  readonly purpose?: string;
}

/** Waits for the lock (or for `until`); undefined when `until` ended the wait. */
export function acquireLock(path: string, tmpDir: string, options: AcquireOptions = {}): Promise<FileLock | undefined> {
  const { until, purpose } = options;
  let holder: LockOwner | undefined;
  return waiting(
    path,
    options,
    async (signal) => {
      const releaseMutex = await mutex.acquire(path, signal);
      try {
        let delay = 2;
        for (;;) {
          const result = await tryLockFile(path, tmpDir, purpose);
          if (result.acquired) return new FileLock(path, result.nonce, releaseMutex);
          holder = result.holder;
          if (until !== undefined && (await until())) {
            releaseMutex();
            return undefined;
          }
          await systemClock.sleep(delay, signal);
          delay = Math.min(delay * 2, 50);
        }
      } catch (err) {
        releaseMutex();
        throw err;
      }
    },
    () => holder,
  );
}

/**
 * The in-process half of acquireLock: `path`'s in-memory mutex without the lock file, for work
 * that needs no exclusion across processes (a small blob gathered in memory). An acquireLock of
 * the same path in this process waits for it, and it for that. Resolves to the release.
 */
export function acquireInProcess(
  path: string,
  options: Pick<AcquireOptions, 'signal' | 'timeoutMs'> = {},
): Promise<() => void> {
  return waiting(
    path,
    options,
    (signal) => mutex.acquire(path, signal),
    () => undefined,
  );
}

/** Runs a wait for `path` on the caller's signal, ended also after `timeoutMs` (then
 * LockTimeoutError naming the holder last seen). */
async function waiting<T>(
  path: string,
  options: Pick<AcquireOptions, 'signal' | 'timeoutMs'>,
  wait: (signal: AbortSignal | undefined) => Promise<T>,
  holder: () => LockOwner | undefined,
): Promise<T> {
  const { signal, timeoutMs } = options;
  const timer = timeoutMs === undefined ? undefined : new AbortController();
  const timeout = timer === undefined ? undefined : setTimeout(() => timer.abort(), timeoutMs);
  const waitSignal =
    timer === undefined ? signal : signal === undefined ? timer.signal : AbortSignal.any([signal, timer.signal]);
  try {
    return await wait(waitSignal);
  } catch (err) {
    if (timer?.signal.aborted && !signal?.aborted) throw new LockTimeoutError(path, holder(), timeoutMs ?? 0);
    throw err;
  } finally {
    if (timeout !== undefined) clearTimeout(timeout);
  }
}

/** The lock if it is free now (no waiting); undefined when a live holder has it. */
export async function tryAcquireLock(path: string, tmpDir: string, purpose?: string): Promise<FileLock | undefined> {
  const releaseMutex = mutex.tryAcquire(path);
  if (releaseMutex === undefined) return undefined;
  try {
    const result = await tryLockFile(path, tmpDir, purpose);
    if (result.acquired) return new FileLock(path, result.nonce, releaseMutex);
  } catch (err) {
    releaseMutex();
    throw err;
  }
  releaseMutex();
  return undefined;
}

/** The current holder of a lock file if it is alive, without taking it. */
export async function liveHolder(path: string): Promise<LockOwner | undefined> {
  const current = await readLock(path);
  return current.state === 'owner' && isOwnerAlive(path, current.owner) ? current.owner : undefined;
}
