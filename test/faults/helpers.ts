/**
 * Shared pieces of the fault, crash and attack tests of the pull engine: a store soundness check
 * (fsck, nothing unverified in blobs/, only resumable partials in ingest/), a seeded random
 * source, and what a failed pull told the user.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main, type Io } from '../../src/cli/index.ts';
import { isKimgError } from '../../src/errors/index.ts';
import { openStore } from '../../src/store/index.ts';
import type { BuiltImage } from '../harness/index.ts';

export { FakeClock, HandClock, dumpError, eventually } from '../registry/helpers.ts';
export {
  blobGetCounts,
  blobRequests,
  captureEvents,
  describeRequests,
  ingestFiles,
  layoutEntries,
  manifestRequests,
  storedBlobs,
} from '../pull/helpers.ts';

/** Where the true content of every blob of some built images lives (digest → file). */
export type KnownBlobs = ReadonlyMap<string, string>;

/** Every blob (manifests, indexes, configs, layers) of the given built images, by digest. */
export function knownBlobs(...images: readonly BuiltImage[]): Map<string, string> {
  const known = new Map<string, string>();
  for (const image of images) {
    known.set(image.digest, image.blobPath(image.digest));
    for (const platform of image.images) {
      for (const d of [platform.manifest, platform.config, ...platform.layers])
        known.set(d.digest, image.blobPath(d.digest));
    }
  }
  return known;
}

export interface SoundnessOptions {
  /** True content of the blobs a partial download may belong to; a partial of anything else, or
   * one that is not a prefix of its blob, is a failure. */
  readonly known: KnownBlobs;
  /** Locks and temporary files of processes that were killed are expected; they must belong to
   * dead processes. */
  readonly allowDeadLeftovers?: boolean;
  /** The full reference that must (true) or must not (false) be recorded in index.json. */
  readonly image?: { readonly name: string; readonly recorded: boolean };
}

export interface SoundnessReport {
  /** Bytes held by each resumable partial download, by digest. */
  readonly partials: Map<string, number>;
  /** Digests in blobs/. */
  readonly blobs: string[];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function isPrefixOf(partial: string, full: string): Promise<boolean> {
  const [a, b] = await Promise.all([open(partial, 'r'), open(full, 'r')]);
  try {
    const size = (await a.stat()).size;
    if (size > (await b.stat()).size) return false;
    const chunk = 1 << 20;
    const x = Buffer.alloc(chunk);
    const y = Buffer.alloc(chunk);
    for (let at = 0; at < size; at += chunk) {
      const n = Math.min(chunk, size - at);
      await a.read(x, 0, n, at);
      await b.read(y, 0, n, at);
      if (!x.subarray(0, n).equals(y.subarray(0, n))) return false;
    }
    return true;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

/**
 * The store is sound: `fsck` reports nothing; `blobs/` holds only regular files named by a valid
 * digest whose content hashes to it (no temporary or partial file, no symlink); `ingest/` holds
 * only claim logs and resumable partial downloads (data + metadata) that are a true prefix of
 * their blob, plus, after a crash, locks and temporary files of dead processes.
 */
export async function assertStoreSound(root: string, options: SoundnessOptions): Promise<SoundnessReport> {
  const store = await openStore(root, { create: false });
  const report = await store.fsck();
  assert.deepEqual(report.problems, [], `fsck found problems in ${root}`);
  assert.equal(report.ok, true);

  const blobs: string[] = [];
  for (const algorithm of await readdir(join(root, 'blobs'))) {
    assert.equal(algorithm, 'sha256', `unexpected entry blobs/${algorithm}`);
    for (const name of await readdir(join(root, 'blobs', algorithm))) {
      const path = join(root, 'blobs', algorithm, name);
      assert.match(
        name,
        /^[0-9a-f]{64}$/,
        `blobs/${algorithm}/${name} is not named by a digest (a partial or temporary file?)`,
      );
      // fsck has re-hashed every file named by a digest; anything else must not be there at all.
      assert.ok((await lstat(path)).isFile(), `blobs/${algorithm}/${name} is not a regular file`);
      blobs.push(`${algorithm}:${name}`);
    }
  }

  const partials = new Map<string, number>();
  const names = await readdir(join(root, 'ingest'));
  for (const name of names) {
    const path = join(root, 'ingest', name);
    if (/^claims-\d+-[0-9a-f]{12}$/.test(name)) continue;
    const dead = /^tmp-(\d+)-[0-9a-f]{12}-/.exec(name) ?? /^(?:sha256-[0-9a-f]{64}|index)\.lock$/.exec(name);
    if (dead !== null) {
      assert.ok(options.allowDeadLeftovers, `ingest/${name} left behind by a pull that ended normally`);
      const pid =
        dead[1] !== undefined ? Number(dead[1]) : (JSON.parse(await readFile(path, 'utf8')) as { pid: number }).pid;
      assert.ok(!processAlive(pid), `ingest/${name} belongs to the live process ${pid}`);
      continue;
    }
    const partial = /^sha256-([0-9a-f]{64})\.(data|json)$/.exec(name);
    assert.ok(partial?.[1] !== undefined, `unexpected file ingest/${name}`);
    const digest = `sha256:${partial[1]}`;
    if (partial[2] === 'json') {
      // A kill between the commit's rename and its clean-up leaves the metadata of a committed blob.
      const orphan = !names.includes(`sha256-${partial[1]}.data`);
      assert.ok(!orphan || (options.allowDeadLeftovers && blobs.includes(digest)), `ingest/${name} without its data`);
      const meta = JSON.parse(await readFile(path, 'utf8')) as { digest?: unknown; source?: unknown };
      assert.equal(meta.digest, digest);
      assert.ok(
        typeof meta.source !== 'string' || !/[?#@]/.test(meta.source),
        `ingest metadata records a query or user info: ${String(meta.source)}`,
      );
      continue;
    }
    const full = options.known.get(digest);
    assert.ok(full !== undefined, `ingest/${name} is a partial of ${digest}, which no pulled image has`);
    assert.ok(!blobs.includes(digest) || options.allowDeadLeftovers, `ingest/${name} beside its committed blob`);
    assert.ok(await isPrefixOf(path, full), `ingest/${name} is not a prefix of ${digest}: it could never verify`);
    partials.set(digest, (await lstat(path)).size);
  }

  if (options.image !== undefined) {
    const recorded = (await store.getImage(options.image.name)) !== undefined;
    assert.equal(
      recorded,
      options.image.recorded,
      `${options.image.name} ${recorded ? 'is' : 'is not'} recorded in index.json`,
    );
  }
  return { partials, blobs: blobs.sort() };
}

/**
 * What a failed pull must tell its user: a typed error with this code whose message names the
 * image and says what failed (each pattern), and nothing unreadable.
 */
export function assertClearFailure(
  err: unknown,
  expected: { code: string; image: string; says?: readonly RegExp[] },
): void {
  assert.ok(isKimgError(err), `not a typed error: ${String(err)}`);
  assert.equal(err.code, expected.code, err.message);
  assert.ok(err.message.includes(expected.image), `the message does not name ${expected.image}: ${err.message}`);
  for (const pattern of expected.says ?? []) assert.match(err.message, pattern);
  assert.doesNotMatch(err.message, /\[object Object\]|undefined/, err.message);
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so a failing run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for this run: `$KIMG_FAULTS_SEED`, else the clock. Tests print it. */
export function runSeed(): number {
  const given = Number(process.env.KIMG_FAULTS_SEED);
  return Number.isSafeInteger(given) && given > 0 ? given : Date.now() % 1_000_000_007;
}

/** Large variants (hundreds of MiB to GiB) run only with KIMG_LARGE_TESTS=1. */
export const LARGE = process.env.KIMG_LARGE_TESTS === '1';

/** `sha256:<hex>` of bytes. */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Sum of body bytes the proxy sent for requests whose path ends with `digest`. */
export function bytesSentFor(requests: readonly { path: string; bytesSent: number }[], digest: string): number {
  return requests.filter((r) => r.path.endsWith(`/${digest}`)).reduce((n, r) => n + r.bytesSent, 0);
}

/** `kimg ARGS…` run by the CLI's own `main` in this process, its output captured: the command
 * line's code and messages without the cost of starting a process. */
export async function kimgInProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const io: Io = { stdout, stderr, stdin: new PassThrough(), env };
  const status = await main(args, io);
  return { status, stdout: out, stderr: err };
}

/** An environment with no user store, registry configuration or credentials, under `dir`. */
export function isolatedEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    HOME: dir,
    XDG_DATA_HOME: join(dir, 'xdg'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(dir, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'),
    XDG_RUNTIME_DIR: dir,
    ...extra,
  };
}
