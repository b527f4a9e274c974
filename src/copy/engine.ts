/**
 * Copies one image from a source to a destination: walk the graph (bounded, one walker), check
 * that a local source holds every blob, copy blobs a few at a time (HEAD-skipped, mounted within a
 * registry, streamed through without staging), then child manifests, then the top-level one
 * under its name. A destination already pointing at the same digest costs one request.
 */
import { KimgError } from '../errors/index.ts';
import { Semaphore, eachLimited } from '../signals/index.ts';
import {
  childrenOf,
  formatPlatform,
  isDocumentMediaType,
  isIndexMediaType,
  parseManifestDocument,
  selectPlatform,
  walkImage,
  type Descriptor,
  type ManifestDocument,
  type Platform,
} from '../oci/index.ts';
import {
  CopyError,
  type BlobOutcome,
  type ImageDestination,
  type ImageSource,
  type ReferrerPlacement,
  type TopLevel,
} from './types.ts';

export type CopyEvent =
  | { readonly type: 'resolved'; readonly source: string; readonly digest: string; readonly mediaType: string }
  | { readonly type: 'up-to-date'; readonly destination: string; readonly digest: string }
  | { readonly type: 'blob-progress'; readonly digest: string; readonly size: number; readonly bytes: number }
  | {
      readonly type: 'blob';
      readonly digest: string;
      readonly size: number;
      readonly outcome: BlobOutcome;
      readonly ms: number;
    }
  | { readonly type: 'manifest'; readonly digest: string; readonly mediaType: string; readonly platform?: string }
  | {
      readonly type: 'referrer';
      readonly digest: string;
      readonly mediaType: string;
      readonly subject: string;
      readonly artifactType?: string;
      /** How the destination made it findable: its referrers API, or the fallback tag too. */
      readonly via: ReferrerPlacement | 'dry-run';
    }
  | {
      readonly type: 'done';
      readonly destination: string;
      readonly digest: string;
      readonly ms: number;
    };

export type CopyEventSink = (event: CopyEvent) => void;

export interface CopyOptions {
  /** Keep only this platform of an index (the copy's top level becomes that manifest). */
  readonly platform?: Platform;
  /** Copy every platform of an index (the default when no platform is given). */
  readonly allPlatforms?: boolean;
  /** Blob bodies sent at once; default 3. As many blobs again wait with their upload sessions
   * open, so that the next body starts as soon as one is sent. */
  readonly concurrency?: number;
  /** Copy even when the destination already points at the digest. */
  readonly force?: boolean;
  /** Plan only: walk the source and report, write nothing. */
  readonly dryRun?: boolean;
  /** Also copy the OCI 1.1 referrers (signatures, SBOMs, attestations) of every manifest copied,
   * and theirs, `MAX_REFERRER_DEPTH` levels deep, after the image itself. */
  readonly referrers?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: CopyEventSink;
}

export interface CopyResult {
  readonly source: string;
  /** The name written at the destination. */
  readonly destination: string;
  readonly descriptor: Descriptor;
  readonly manifests: number;
  readonly blobs: number;
  readonly pushed: number;
  readonly mounted: number;
  readonly existing: number;
  /** Blob bytes the destination did not have and received. */
  readonly bytesPushed: number;
  readonly upToDate: boolean;
  /** With `referrers`: the referrers copied (or, with `dryRun`, found), parents first. */
  readonly referrers: readonly CopiedReferrer[];
  readonly ms: number;
}

/** A referrer copied along with the image. */
export interface CopiedReferrer {
  readonly digest: string;
  readonly mediaType: string;
  readonly artifactType?: string;
  /** The digest of the manifest it refers to. */
  readonly subject: string;
  readonly via: ReferrerPlacement | 'dry-run';
}

/** Referrers of referrers are followed this deep (a signature of an SBOM of the image is 2). */
export const MAX_REFERRER_DEPTH = 4;
/** Referrers copied with one image at most, all levels together. */
export const MAX_REFERRERS_PER_COPY = 4096;

interface Plan {
  readonly top: TopLevel;
  /** Documents children first, the top-level one last. */
  readonly manifests: { descriptor: Descriptor; bytes: Uint8Array }[];
  readonly blobs: Map<string, Descriptor>;
}

/** Walks the source image (or `given`, a referrer): every document fetched and verified,
 * platforms selected. */
async function plan(source: ImageSource, options: CopyOptions, given?: TopLevel): Promise<Plan> {
  const signal = options.signal;
  let top = given ?? (await source.root(signal));
  const documents = new Map<string, { descriptor: Descriptor; bytes: Uint8Array; document: ManifestDocument }>();
  const order: string[] = [];
  const blobs = new Map<string, Descriptor>();
  const parse = (descriptor: Descriptor, bytes: Uint8Array) =>
    parseManifestDocument(bytes, {
      what: `${source.label} ${descriptor.digest}`,
      descriptorMediaType: descriptor.mediaType,
    });

  // One platform of an index: that manifest becomes the top level (as skopeo without --all).
  if (options.platform !== undefined && options.allPlatforms !== true && isIndexMediaType(top.descriptor.mediaType)) {
    const document = parse(top.descriptor, top.bytes);
    if (document.kind === 'index') {
      const at = selectPlatform(document.index.manifests, options.platform);
      const chosen = at === undefined ? undefined : document.index.manifests[at];
      if (chosen === undefined) {
        throw new CopyError(
          'ErrPlatformNotFound',
          `${source.label}: no manifest for ${formatPlatform(options.platform)} in the index ${top.descriptor.digest}`,
          { image: source.label, digest: top.descriptor.digest },
        );
      }
      const bytes = await source.manifest(chosen, signal);
      const { annotations: _drop, platform: _platform, ...plain } = chosen;
      top = { ...top, descriptor: plain, bytes };
    }
  }

  await walkImage([top.descriptor], async (descriptor) => {
    signal?.throwIfAborted();
    if (!isDocumentMediaType(descriptor.mediaType)) {
      blobs.set(descriptor.digest, descriptor);
      return [];
    }
    const bytes = descriptor.digest === top.descriptor.digest ? top.bytes : await source.manifest(descriptor, signal);
    const document = parse(descriptor, bytes);
    documents.set(descriptor.digest, { descriptor, bytes, document });
    order.push(descriptor.digest);
    return childrenOf(document);
  });
  // Discovery is parents first; children must land first.
  const manifests = order.reverse().map((digest) => {
    const entry = documents.get(digest) as { descriptor: Descriptor; bytes: Uint8Array };
    return { descriptor: entry.descriptor, bytes: entry.bytes };
  });
  return { top, manifests, blobs };
}

interface Counts {
  pushed: number;
  mounted: number;
  existing: number;
  bytesPushed: number;
}

/** A local source must hold every blob before anything is written. */
async function checkBlobs(source: ImageSource, p: Plan, what: string): Promise<void> {
  if (source.hasBlob === undefined) return;
  for (const blob of p.blobs.values()) {
    if (!(await source.hasBlob(blob))) {
      throw new CopyError(
        'ErrBlobUnknown',
        `${what}: the source lacks blob ${blob.digest} (${blob.mediaType}) that the image references; nothing was copied`,
        { image: source.label, digest: blob.digest },
      );
    }
  }
}

/** The blobs of a plan, a few at a time, then its child manifests (not its top level). */
async function transfer(
  source: ImageSource,
  destination: ImageDestination,
  p: Plan,
  options: CopyOptions,
  counts: Counts,
): Promise<void> {
  const signal = options.signal;
  const emit = options.onEvent ?? (() => undefined);

  // `concurrency` bodies in flight, and as many blobs again ahead of them with their upload
  // sessions open: when a body is sent, the next starts at once, while the registry commits the
  // one before. Distribution fsyncs the blob at the commit, and small files at every POST, which
  // wait behind that fsync: with a blob's place held from its POST to its commit, the registry's
  // disk and the copy took turns (a second or more per GiB with the CPU idle).
  const concurrency = Math.max(1, options.concurrency ?? 3);
  const bodies = new Semaphore(concurrency);
  await eachLimited(
    [...p.blobs.values()],
    2 * concurrency,
    async (blob, stop) => {
      const t = performance.now();
      // The body's permit while it holds one (a destination that tries again waits again).
      let giveBack: (() => void) | undefined;
      const release = (): void => {
        giveBack?.();
        giveBack = undefined;
      };
      let outcome: BlobOutcome;
      try {
        outcome = await destination.pushBlob(blob, source.blob(blob), {
          signal: stop,
          waitToSend: async () => {
            giveBack ??= await bodies.acquire(stop);
          },
          onSent: release,
          ...(source.repository !== undefined && { mountFrom: source.repository }),
          onProgress: (bytes) => emit({ type: 'blob-progress', digest: blob.digest, size: blob.size, bytes }),
        });
      } finally {
        // A monolithic upload (body and commit in one request) or a failure gives it back here.
        release();
      }
      if (outcome === 'pushed') {
        counts.pushed++;
        counts.bytesPushed += blob.size;
      } else if (outcome === 'mounted') counts.mounted++;
      else counts.existing++;
      emit({ type: 'blob', digest: blob.digest, size: blob.size, outcome, ms: performance.now() - t });
    },
    signal,
  );
  for (const m of p.manifests) {
    if (m.descriptor.digest === p.top.descriptor.digest) continue;
    await destination.putManifest(m.descriptor, m.bytes, signal);
    emit({
      type: 'manifest',
      digest: m.descriptor.digest,
      mediaType: m.descriptor.mediaType,
      ...(m.descriptor.platform !== undefined && { platform: formatPlatform(m.descriptor.platform) }),
    });
  }
}

/** With `referrers`, both ends must support them: checked before anything is copied. */
function checkReferrerEnds(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions,
): asserts source is ImageSource & Required<Pick<ImageSource, 'referrers'>> {
  if (source.referrers === undefined) {
    throw new CopyError('ErrUnsupported', `--referrers: ${source.label} cannot list referrers; nothing was copied`, {
      image: source.label,
    });
  }
  if (destination.putReferrer === undefined && options.dryRun !== true) {
    throw new CopyError(
      'ErrUnsupported',
      `--referrers: ${destination.label} cannot take referrers (registries can); nothing was copied`,
      { image: source.label },
    );
  }
}

/**
 * The referrers of every manifest of `p`, and theirs, breadth first to `MAX_REFERRER_DEPTH`
 * levels: each digest once (a loop of referrers ends there), each one's blobs and child
 * manifests copied through the same plan and transfer as the image, then the referrer itself.
 */
async function copyReferrers(
  source: ImageSource,
  destination: ImageDestination,
  p: Plan,
  options: CopyOptions,
  counts: Counts,
): Promise<CopiedReferrer[]> {
  const signal = options.signal;
  const emit = options.onEvent ?? (() => undefined);
  const what = `referrers of ${source.label}`;
  checkReferrerEnds(source, destination, options);
  const copied: CopiedReferrer[] = [];
  const visited = new Set<string>(p.manifests.map((m) => m.descriptor.digest));
  let subjects = p.manifests.map((m) => m.descriptor);
  for (let depth = 1; depth <= MAX_REFERRER_DEPTH && subjects.length > 0; depth++) {
    const next: Descriptor[] = [];
    for (const subject of subjects) {
      for (const found of await source.referrers(subject, signal)) {
        if (visited.has(found.digest) || !isDocumentMediaType(found.mediaType)) continue;
        visited.add(found.digest);
        if (copied.length >= MAX_REFERRERS_PER_COPY) {
          throw new CopyError(
            'ErrTooManyReferrers',
            `${what}: more than ${MAX_REFERRERS_PER_COPY} referrers in all; stopped after copying ${copied.length}`,
            { image: source.label, digest: found.digest },
          );
        }
        const bytes = await source.manifest(found, signal);
        // The listing is the source's word; the manifest's own `subject` decides where it goes.
        const document = parseManifestDocument(bytes, {
          what: `${what}: ${found.digest}`,
          descriptorMediaType: found.mediaType,
        });
        const own = document.kind === 'manifest' ? document.manifest.subject : document.index.subject;
        if (own?.digest !== subject.digest) {
          throw new CopyError(
            'ErrManifestInvalid',
            `${what}: the source lists ${found.digest} as a referrer of ${subject.digest}, but its subject is ${own?.digest ?? 'absent'}; nothing of it was copied`,
            { image: source.label, digest: found.digest },
          );
        }
        const { annotations: _a, artifactType: _t, ...plain } = found;
        const rp = await plan(source, { ...options, allPlatforms: true }, { descriptor: plain, bytes });
        await checkBlobs(source, rp, `${what}: ${found.digest}`);
        let via: CopiedReferrer['via'] = 'dry-run';
        if (options.dryRun !== true && destination.putReferrer !== undefined) {
          await transfer(source, destination, rp, options, counts);
          via = await destination.putReferrer(found, bytes, subject, signal);
        }
        const entry: CopiedReferrer = {
          digest: found.digest,
          mediaType: found.mediaType,
          ...(found.artifactType !== undefined && { artifactType: found.artifactType }),
          subject: subject.digest,
          via,
        };
        copied.push(entry);
        emit({ type: 'referrer', ...entry });
        next.push(...rp.manifests.map((m) => m.descriptor));
      }
    }
    subjects = next;
  }
  return copied;
}

/**
 * Copies the image `source` names to `destination`. Nothing is named at the destination unless
 * every blob and manifest under the name landed; errors name the source, the destination and the
 * blob. The caller closes both ends.
 */
export async function copyImage(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = performance.now();
  const signal = options.signal;
  const emit = options.onEvent ?? (() => undefined);
  const what = `copy ${source.label} to ${destination.label}`;
  try {
    if (options.referrers === true) checkReferrerEnds(source, destination, options);
    const p = await plan(source, options);
    const { top } = p;
    emit({
      type: 'resolved',
      source: source.label,
      digest: top.descriptor.digest,
      mediaType: top.descriptor.mediaType,
    });
    const base = {
      source: source.label,
      descriptor: top.descriptor,
      manifests: p.manifests.length,
      blobs: p.blobs.size,
    };
    const counts: Counts = { pushed: 0, mounted: 0, existing: 0, bytesPushed: 0 };

    if (options.force !== true && options.dryRun !== true) {
      const current = await destination.current(signal);
      if (current?.digest === top.descriptor.digest) {
        emit({ type: 'up-to-date', destination: destination.label, digest: top.descriptor.digest });
        // Referrers may have come since (a new signature): they are looked for all the same.
        const referrers =
          options.referrers === true ? await copyReferrers(source, destination, p, options, counts) : [];
        if (referrers.length > 0) await destination.finish?.(signal);
        return {
          ...base,
          ...counts,
          destination: destination.label,
          existing: p.blobs.size,
          upToDate: true,
          referrers,
          ms: performance.now() - started,
        };
      }
    }
    await checkBlobs(source, p, what);
    if (options.dryRun === true) {
      const referrers = options.referrers === true ? await copyReferrers(source, destination, p, options, counts) : [];
      return {
        ...base,
        ...counts,
        destination: destination.label,
        upToDate: false,
        referrers,
        ms: performance.now() - started,
      };
    }
    await transfer(source, destination, p, options, counts);
    const name = await destination.commit(top, signal);
    emit({ type: 'manifest', digest: top.descriptor.digest, mediaType: top.descriptor.mediaType });
    // After the subject landed: a registry that validates `subject` finds it.
    const referrers = options.referrers === true ? await copyReferrers(source, destination, p, options, counts) : [];
    await destination.finish?.(signal);
    const ms = performance.now() - started;
    emit({ type: 'done', destination: name, digest: top.descriptor.digest, ms });
    return { ...base, ...counts, destination: name, upToDate: false, referrers, ms };
  } catch (err) {
    if (signal?.aborted && err === signal.reason) throw err;
    if (err instanceof KimgError && err.message.includes(source.label)) throw err;
    const inner = err instanceof Error ? err.message : String(err);
    throw new CopyError(
      err instanceof KimgError ? err.code : 'ErrCopy',
      `${what}: ${inner}`,
      { image: source.label },
      err,
    );
  }
}
