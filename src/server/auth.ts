/**
 * Optional Basic authentication from an htpasswd file (Apache's format, as Distribution's
 * `auth.htpasswd` reads it). Node verifies `{SHA}` and `$apr1$` (MD5) hashes itself; bcrypt
 * (`htpasswd -B`, the only kind Distribution accepts) needs Blowfish, which Node's crypto does
 * not offer: those are checked with the `htpasswd -v` program when it is installed, and each
 * answer is remembered for the process's life, keyed by a hash of the password and entry.
 */
import { spawn } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KimgError } from '../errors/index.ts';
import { Semaphore, SingleFlight } from '../signals/index.ts';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(value: number, count: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < count; i++) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}

/** The `$apr1$salt$hash` of `password` (Apache's MD5 crypt, apr_md5.c). */
export function apr1(password: string, salt: string): string {
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 8), 'utf8');
  const magic = Buffer.from('$apr1$');
  const alt = createHash('md5').update(pw).update(s).update(pw).digest();
  const ctx = createHash('md5').update(pw).update(magic).update(s);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(alt.subarray(0, Math.min(16, left)));
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  let final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const round = createHash('md5');
    round.update(i & 1 ? pw : final);
    if (i % 3) round.update(s);
    if (i % 7) round.update(pw);
    round.update(i & 1 ? final : pw);
    final = round.digest();
  }
  const b = (i: number) => final[i] ?? 0;
  const text =
    to64((b(0) << 16) | (b(6) << 8) | b(12), 4) +
    to64((b(1) << 16) | (b(7) << 8) | b(13), 4) +
    to64((b(2) << 16) | (b(8) << 8) | b(14), 4) +
    to64((b(3) << 16) | (b(9) << 8) | b(15), 4) +
    to64((b(4) << 16) | (b(10) << 8) | b(5), 4) +
    to64(b(11), 2);
  return `$apr1$${salt.slice(0, 8)}$${text}`;
}

function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a === b;
}

/** Verdicts on bcrypt entries kept; past it the oldest goes. */
const MAX_VERDICTS = 10_000;
/** `htpasswd -v` processes at once, and checks waiting for one; past both a check is refused
 * (not cached): a flood of distinct wrong passwords must not fork a process each. */
const MAX_RUNS = 4;
const MAX_WAITING = 256;

/** Checks `user:password` pairs from an htpasswd file. */
export class BasicAuthenticator {
  /** Verdicts on bcrypt entries, by sha256(user, entry, password), oldest first. */
  private readonly verdicts = new Map<string, boolean>();
  /** `htpasswd -v` runs in flight, by the same key: parallel requests with one header (a client
   * pulling layers at once) wait for one run instead of starting one each. */
  private readonly checks = new SingleFlight<boolean>();
  private readonly runs = new Semaphore(MAX_RUNS);

  private constructor(
    private readonly entries: ReadonlyMap<string, string>,
    readonly realm: string,
    private readonly htpasswdFile: string,
  ) {}

  /** Reads the file (at most 1 MiB); lines are `user:hash`, `#` comments and blank lines skipped. */
  static async load(file: string, realm = 'kimg'): Promise<BasicAuthenticator> {
    const bytes = await readFile(file);
    if (bytes.byteLength > 1 << 20) throw new KimgError('ErrAuthConfig', `htpasswd file ${file} is larger than 1 MiB`);
    const entries = new Map<string, string>();
    for (const raw of bytes.toString('utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new KimgError('ErrAuthConfig', `htpasswd file ${file}: a line has no user:hash`);
      entries.set(line.slice(0, colon), line.slice(colon + 1));
    }
    return new BasicAuthenticator(entries, realm, file);
  }

  /** The user an `Authorization: Basic …` header names when its password is right, else undefined. */
  async check(header: string | undefined): Promise<string | undefined> {
    if (header === undefined || header.length > 4096) return undefined;
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (match === null) return undefined;
    const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const entry = this.entries.get(user);
    if (entry === undefined) return undefined;
    return (await this.verify(user, entry, password)) ? user : undefined;
  }

  private async verify(user: string, entry: string, password: string): Promise<boolean> {
    if (entry.startsWith('{SHA}')) {
      return sameText(entry, `{SHA}${createHash('sha1').update(password, 'utf8').digest('base64')}`);
    }
    if (entry.startsWith('$apr1$')) {
      const salt = entry.slice(6, entry.indexOf('$', 6) < 0 ? undefined : entry.indexOf('$', 6));
      return sameText(entry, apr1(password, salt));
    }
    if (/^\$2[aby]\$/.test(entry)) {
      const key = createHash('sha256')
        .update(user)
        .update('\u0000')
        .update(entry)
        .update('\u0000')
        .update(password)
        .digest('hex');
      const known = this.verdicts.get(key);
      if (known !== undefined) return known;
      return this.checks.run(key, async () => {
        const release = await this.runs.acquireUnlessQueued(MAX_WAITING);
        if (release === undefined) return false;
        let verdict: boolean;
        try {
          verdict = await verifyWithHtpasswd(this.htpasswdFile, user, password);
        } finally {
          release();
        }
        if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.delete(this.verdicts.keys().next().value as string);
        this.verdicts.set(key, verdict);
        return verdict;
      }).result;
    }
    return false;
  }
}

/** `htpasswd -vi FILE USER` with the password on stdin (never in argv): exit 0 = right. */
function verifyWithHtpasswd(file: string, user: string, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn('htpasswd', ['-vi', file, user], { stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${password}\n`);
  });
}
