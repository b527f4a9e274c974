import { stringify } from 'yaml';
import { ResolveFailure, type DigestResolver } from '../admission/index.ts';
import { isValidDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { tryParseDockerRef } from '../reference/index.ts';
import { parseYamlValue, YamlError } from '../yaml/index.ts';
import { ImageLockError } from './errors.ts';

export const LOCK_API_VERSION = 'kimg.dev/v1alpha1';
export const LOCK_KIND = 'ImageLock';

/** One resolution: a reference as written in a manifest and the digest written for it; for
 * `kimg relocate`, also the image written in its place (`destination`, pinned by digest). */
export interface LockEntry {
  readonly ref: string;
  readonly digest: string;
  readonly destination?: string;
}

/** `kimg pin --lock` output (docs/semantics.md admission §5.4): what one run resolved, for `--from-lock` replays. */
export interface ImageLock {
  /** `index`, or the platform resolved (`linux/arm64`). */
  readonly resolve: string;
  /** Sorted by `ref` in code-unit order, one entry per reference. */
  readonly images: readonly LockEntry[];
}

/** A lock with entries sorted and de-duplicated (the same reference twice must agree). */
export function makeImageLock(resolve: string, entries: Iterable<LockEntry>): ImageLock {
  const byRef = new Map<string, LockEntry>();
  for (const entry of entries) {
    const { ref, digest } = entry;
    const other = byRef.get(ref)?.digest;
    if (other !== undefined && other !== digest) {
      throw new ImageLockError('ErrLockInvalid', `${ref} resolved to two digests in one run: ${other} and ${digest}`, {
        file: '',
        ref,
      });
    }
    byRef.set(ref, {
      ref,
      digest,
      ...(entry.destination !== undefined && { destination: entry.destination }),
    });
  }
  const refs = [...byRef.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { resolve, images: refs.map((ref) => byRef.get(ref) as LockEntry) };
}

/** The lock file's text: YAML, stable for review (same input, same bytes). */
export function formatImageLock(lock: ImageLock): string {
  const sorted = makeImageLock(lock.resolve, lock.images);
  return stringify(
    {
      apiVersion: LOCK_API_VERSION,
      kind: LOCK_KIND,
      resolve: sorted.resolve,
      images: sorted.images.map((e) => ({
        ref: e.ref,
        digest: e.digest,
        ...(e.destination !== undefined && { destination: e.destination }),
      })),
    },
    { lineWidth: 0 },
  );
}

/** Reads a lock file's text (YAML or JSON). Throws ImageLockError `ErrLockInvalid` naming the
 * file and what is wrong. */
export function parseImageLock(text: string, file: string): ImageLock {
  const fail = (reason: string): never => {
    throw new ImageLockError('ErrLockInvalid', `${file}: not a kimg image lock: ${reason}`, { file });
  };
  let raw: unknown;
  try {
    raw = parseYamlValue(text, file);
  } catch (err) {
    if (!(err instanceof YamlError)) throw err;
    fail(`line ${err.line}, column ${err.column}: ${err.reason}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected a map');
  const doc = raw as Record<string, unknown>;
  for (const key of Object.keys(doc)) {
    if (!['apiVersion', 'kind', 'resolve', 'images'].includes(key)) fail(`unknown key "${key}"`);
  }
  if (doc.apiVersion !== LOCK_API_VERSION)
    fail(`apiVersion must be ${LOCK_API_VERSION}, got ${JSON.stringify(doc.apiVersion)}`);
  if (doc.kind !== LOCK_KIND) fail(`kind must be ${LOCK_KIND}, got ${JSON.stringify(doc.kind)}`);
  if (typeof doc.resolve !== 'string' || doc.resolve === '')
    fail('"resolve" must be "index" or a platform such as linux/arm64');
  const images = doc.images ?? [];
  if (!Array.isArray(images)) return fail('"images" must be a list');
  const entries = images.map((entry: unknown, i): LockEntry => {
    if (typeof entry !== 'object' || entry === null) return fail(`images[${i}] must be a map with ref and digest`);
    const { ref, digest, destination, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) fail(`images[${i}]: unknown key "${extra}"`);
    if (typeof ref !== 'string' || !tryParseDockerRef(ref).ok)
      fail(`images[${i}].ref must be an image reference, got ${JSON.stringify(ref)}`);
    if (typeof digest !== 'string' || !isValidDigest(digest))
      fail(`images[${i}].digest must be a digest (sha256:<64 hex>), got ${JSON.stringify(digest)}`);
    if (destination !== undefined && (typeof destination !== 'string' || !tryParseDockerRef(destination).ok))
      fail(`images[${i}].destination must be an image reference, got ${JSON.stringify(destination)}`);
    return {
      ref: ref as string,
      digest: digest as string,
      ...(typeof destination === 'string' && { destination }),
    };
  });
  try {
    return makeImageLock(doc.resolve as string, entries);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
}

/**
 * A lock's resolutions for replay. A reference is found as written, else by its normalized
 * form (`redis:7` and `docker.io/library/redis:7` are one image); nothing else is ever looked
 * up, so a replay needs no network.
 */
export class LockedResolutions {
  readonly lock: ImageLock;
  readonly file: string;
  readonly #exact = new Map<string, string>();
  readonly #normalized = new Map<string, string>();

  constructor(lock: ImageLock, file: string) {
    this.lock = lock;
    this.file = file;
    for (const { ref, digest } of lock.images) {
      this.#exact.set(ref, digest);
      const normalized = tryParseDockerRef(ref);
      if (normalized.ok) this.#normalized.set(normalized.value.toString(), digest);
    }
  }

  /** Throws ImageLockError `ErrLockResolveMismatch` when the run resolves differently (index vs
   * a platform) from the run that wrote the lock. */
  assertResolve(resolve: string): void {
    if (this.lock.resolve !== resolve) {
      throw new ImageLockError(
        'ErrLockResolveMismatch',
        `${this.file} was written with resolve: ${this.lock.resolve}, this run resolves ${resolve === 'index' ? 'the index digest' : `platform ${resolve}`}; rerun with ${this.lock.resolve === 'index' ? 'no --platform' : `--platform ${this.lock.resolve}`} or write a new lock`,
        { file: this.file },
      );
    }
  }

  /** The digest locked for `ref`, or undefined. */
  find(ref: string): string | undefined {
    const exact = this.#exact.get(ref);
    if (exact !== undefined) return exact;
    const normalized = tryParseDockerRef(ref);
    return normalized.ok ? this.#normalized.get(normalized.value.toString()) : undefined;
  }

  /** The digest locked for `ref`; throws ImageLockError `ErrNotInLock` (cause `not in lock`). */
  digestFor(ref: string): string {
    const digest = this.find(ref);
    if (digest === undefined)
      throw new ImageLockError('ErrNotInLock', `${ref}: not in lock ${this.file}`, { file: this.file, ref });
    return digest;
  }
}

/**
 * An DigestResolver answering from a lock only (`--from-lock`): no network, ever. A reference the
 * lock lacks fails with the cause `not in lock`. The digest locked is the one written last time
 * (the platform's manifest when the lock says a platform), so it is answered as a manifest: the
 * Pinner then writes it as it is, without asking for an index's children.
 */
export class LockResolver implements DigestResolver {
  readonly resolutions: LockedResolutions;

  constructor(resolutions: LockedResolutions) {
    this.resolutions = resolutions;
  }

  resolve(reference: string): Promise<Descriptor> {
    const digest = this.resolutions.find(reference);
    if (digest === undefined)
      return Promise.reject(new ResolveFailure(reference, 'not in lock', this.resolutions.file));
    return Promise.resolve({ mediaType: LOCKED_MEDIA_TYPE, digest, size: 0 });
  }

  indexManifests(): Promise<readonly Descriptor[]> {
    return Promise.resolve([]);
  }
}

const LOCKED_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
