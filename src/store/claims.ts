import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.ts';
import { readBounded, unlinkIfPresent } from './fs-utils.ts';

/**
 * Blobs a process has just written or found present, before an `index.json` entry reaches them:
 * `gc` in any process keeps them for a while, so a pull and a gc running together do not lose the
 * pull's blobs between commit and setImage. One append-only file per store instance,
 * `ingest/claims-<pid>-<random>`, lines `<digest> <epoch ms>`; a dead process's file is garbage.
 */
export class ClaimLog {
  private readonly ingestDir: string;
  private path: string;
  private previous: string | undefined;
  private written = 0;

  constructor(ingestDir: string) {
    this.ingestDir = ingestDir;
    this.path = this.newPath();
  }

  async claim(digest: string): Promise<void> {
    await this.append(`${digest} ${Date.now()}\n`);
  }

  /** Ends this process's claims on `digests` (an image now reaches them). */
  async release(digests: readonly string[]): Promise<void> {
    if (digests.length > 0) await this.append(digests.map((d) => `${d} -\n`).join(''));
  }

  private async append(line: string): Promise<void> {
    // A long-running process rotates its log, keeping the previous file for recent claims.
    if (this.written + line.length > ROTATE_BYTES) {
      if (this.previous !== undefined) await unlinkIfPresent(this.previous);
      this.previous = this.path;
      this.path = this.newPath();
      this.written = 0;
    }
    // Three small system calls on the event loop: through the thread pool, the same append
    // cost three round trips per blob, which a pull of many small blobs felt.
    const fd = openSync(
      this.path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
    this.written += line.length;
  }

  private newPath(): string {
    return join(this.ingestDir, `claims-${process.pid}-${randomBytes(6).toString('hex')}`);
  }
}

const ROTATE_BYTES = 1 << 20;

const CLAIMS_FILE = /^claims-(\d+)-[0-9a-f]{12}$/;
const MAX_CLAIMS_BYTES = 16 << 20;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

/** Digests claimed by live processes within `maxAgeMs`; files of dead processes are removed
 * (unless `dryRun`). */
export async function liveClaims(
  ingestDir: string,
  maxAgeMs: number,
  now: number,
  dryRun: boolean,
): Promise<Set<string>> {
  const claimed = new Set<string>();
  let names: string[];
  try {
    names = await readdir(ingestDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return claimed;
    throw err;
  }
  for (const name of names) {
    const match = CLAIMS_FILE.exec(name);
    if (match === null) continue;
    const path = join(ingestDir, name);
    if (!processAlive(Number(match[1]))) {
      if (!dryRun) await unlinkIfPresent(path);
      continue;
    }
    if (maxAgeMs <= 0) continue;
    let text: string;
    try {
      if (now - (await stat(path)).mtimeMs > maxAgeMs) continue;
      text = (await readBounded(path, MAX_CLAIMS_BYTES)).toString('utf8');
    } catch {
      continue;
    }
    // The last line for a digest wins: a claim, or its release (`<digest> -`).
    const latest = new Map<string, string>();
    for (const line of text.split('\n')) {
      const space = line.indexOf(' ');
      if (space !== -1) latest.set(line.slice(0, space), line.slice(space + 1));
    }
    for (const [digest, at] of latest) {
      if (at !== '-' && now - Number(at) <= maxAgeMs) claimed.add(digest);
    }
  }
  return claimed;
}
