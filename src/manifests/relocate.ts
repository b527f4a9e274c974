/**
 * `kimg relocate`: copy every image a set of manifests references into one registry (and path
 * prefix), then rewrite the manifests, byte for byte, to the new names pinned by digest. Slots
 * and rewriting are `kimg pin`'s, copies are the copy engine's. All or nothing: every source is
 * resolved (and its manifests fetched) before anything is copied, and nothing is rewritten
 * unless every copy landed.
 */
import { classifyImage, pinnedValue, type OutputFormat } from '../admission/index.ts';
import {
  RegistryDestination,
  RegistrySource,
  copyImage,
  type CopyEvent,
  type CopyResult,
  type ImageSource,
  type TopLevel,
} from '../copy/index.ts';
import type { Descriptor, Platform } from '../oci/index.ts';
import { parseDockerRef, parseNormalizedNamed, type NamedReference } from '../reference/index.ts';
import type { BlobSource, RegistryClient } from '../registry/index.ts';
import { eachLimited } from '../signals/index.ts';
import type { ManifestSource } from './document.ts';
import type { LockEntry } from './lock.ts';
import { rewriteSlots, type PinFailure, type PinnedFile } from './pin.ts';
import {
  assertNoCollisions,
  isUnderTarget,
  parseRelocateTarget,
  relocatedRepository,
  type NameMapping,
  type RelocateTarget,
} from './relocate-names.ts';
import { findImageSlots, type ImageSlot, type SlotOptions } from './slots.ts';

export interface RelocateOptions extends SlotOptions {
  /** The one registry client for sources and the destination (credentials per host). */
  readonly registry: RegistryClient;
  /** `REGISTRY[/PREFIX]`, as text or parsed. */
  readonly to: string | RelocateTarget;
  readonly mapping?: NameMapping;
  /** How the new value is written, as `kimg pin --output-format`: `preserve` (default:
   * `DEST:TAG@DIGEST`, the tag as written), `canonical` (the tag always, `latest` when implied)
   * or `digest-only` (`DEST@DIGEST`). */
  readonly outputFormat?: OutputFormat;
  /** Copy only this platform of an index (the slot is pinned to that manifest). By default the
   * whole index goes: a manifest may run on any node. */
  readonly platform?: Platform;
  /** Images starting with one of these (as written) are left alone. */
  readonly skipPrefixes?: readonly string[];
  /** Plan only: resolve every source and look for its digest at the destination; copy nothing. */
  readonly check?: boolean;
  /** Images copied at once; default 2 (each copies 3 blobs at once). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: RelocateEvent) => void;
}

export type RelocateEvent =
  | { readonly type: 'in-place'; readonly slot: ImageSlot; readonly present?: boolean }
  | {
      readonly type: 'planned';
      readonly source: string;
      readonly destination: string;
      readonly digest: string;
      /** With `check`: whether the destination repository holds the digest. */
      readonly present?: boolean;
    }
  | { readonly type: 'copy'; readonly source: string; readonly destination: string; readonly event: CopyEvent }
  | {
      readonly type: 'copied';
      readonly source: string;
      /** The destination reference written to (the digest is `result.descriptor.digest`). */
      readonly destination: string;
      readonly result: CopyResult;
    };

/** One distinct source image and where it goes. */
export interface RelocatedImage {
  /** The normalized source reference copied (`docker.io/library/nginx:1.25`). */
  readonly source: string;
  /** The destination reference written to (`REGISTRY/PREFIX/library/nginx:1.25`, or by digest). */
  readonly destination: string;
  /** The digest copied and written into the manifests. */
  readonly digest: string;
  /** The slots holding it (the spellings may differ: `nginx:1.25`, `docker.io/library/nginx:1.25`). */
  readonly slots: readonly ImageSlot[];
  /** With `check`: whether the destination holds the digest. */
  readonly present?: boolean;
  /** Without `check`: what the copy did. */
  readonly copy?: CopyResult;
}

/** An image already under the target, left as it is (with `check`: whether it is there). */
export interface InPlaceImage {
  readonly slot: ImageSlot;
  readonly present?: boolean;
}

export interface RelocateReport {
  readonly target: RelocateTarget;
  /** In input order; empty when anything failed or with `check`. */
  readonly files: readonly PinnedFile[];
  readonly slots: readonly ImageSlot[];
  readonly images: readonly RelocatedImage[];
  readonly inPlace: readonly InPlaceImage[];
  /** One per failed image (at its first slot): nothing is to be written then. */
  readonly failures: readonly PinFailure[];
  /** Source as written → digest and the image written for it (for `--lock`). */
  readonly resolutions: readonly LockEntry[];
}

interface Planned {
  readonly key: string;
  readonly named: NamedReference;
  readonly repository: string;
  /** The destination's tag: the source's, `latest` when implied, none for a digest alone. */
  readonly tag: string | undefined;
  readonly slots: ImageSlot[];
  digest?: string;
  present?: boolean;
  copy?: CopyResult;
  failure?: string;
  source?: ImageSource;
}

/**
 * Relocates the images of `sources` to `options.to`. Throws RelocateError (a bad target, an
 * unmappable name, a collision) before any network request; a source that cannot be resolved
 * or copied is reported in `failures`, with its first slot.
 */
export async function relocate(sources: readonly ManifestSource[], options: RelocateOptions): Promise<RelocateReport> {
  const target = typeof options.to === 'string' ? parseRelocateTarget(options.to) : options.to;
  const mapping = options.mapping ?? 'path';
  const emit = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  const perSource = sources.map((source) => ({ source, slots: findImageSlots(source, options) }));
  const slots = perSource.flatMap((p) => p.slots);

  const planned = new Map<string, Planned>();
  const inPlace: InPlaceImage[] = [];
  const failures: PinFailure[] = [];
  const bySlot = new Map<ImageSlot, Planned>();
  const invalid = new Set<string>();
  for (const slot of slots) {
    const c = classifyImage(slot.image, options.skipPrefixes ?? []);
    if (c.kind === 'blank' || c.kind === 'skipped') continue;
    if (c.kind === 'invalid') {
      if (!invalid.has(slot.image)) failures.push({ slot, cause: `not a valid image reference (${c.reason})` });
      invalid.add(slot.image);
      continue;
    }
    if (isUnderTarget(c.named, target)) {
      inPlace.push({ slot });
      continue;
    }
    const key = c.kind === 'tag' ? c.lookup : c.named.toString();
    let p = planned.get(key);
    if (p === undefined) {
      p = {
        key,
        named: c.named,
        repository: relocatedRepository(c.named, target, mapping),
        tag: c.named.tag ?? (c.kind === 'tag' ? 'latest' : undefined),
        slots: [],
      };
      planned.set(key, p);
    }
    p.slots.push(slot);
    bySlot.set(slot, p);
  }
  assertNoCollisions([...planned.values()].map((p) => ({ source: p.named.name, destination: p.repository })));
  const images = [...planned.values()];
  const limit = Math.max(1, options.concurrency ?? 2);
  const copyOptions = { ...(options.platform !== undefined && { platform: options.platform }) };
  const destinationOf = (p: Planned): string =>
    p.tag !== undefined ? `${p.repository}:${p.tag}` : `${p.repository}@${p.digest ?? p.named.digest ?? ''}`;
  const fail = (p: Planned, err: unknown) => {
    p.failure = err instanceof Error ? err.message : String(err);
  };

  // Resolve every source, walking its manifests (a dry run), before anything is written.
  await eachLimited(images, limit, async (p) => {
    try {
      const source = new RememberedSource(new RegistrySource(options.registry, parseDockerRef(p.key)));
      p.source = source;
      const plan = await copyImage(
        source,
        new RegistryDestination(options.registry, parseDockerRef(destinationOf(p))),
        {
          ...copyOptions,
          dryRun: true,
          ...(signal !== undefined && { signal }),
        },
      );
      p.digest = plan.descriptor.digest;
      if (options.check === true) p.present = await holds(options.registry, `${p.repository}@${p.digest}`, signal);
      emit({
        type: 'planned',
        source: p.key,
        destination: destinationOf(p),
        digest: p.digest,
        ...(p.present !== undefined && { present: p.present }),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      fail(p, err);
    }
  });
  if (options.check === true) {
    await eachLimited([...inPlace.entries()], limit, async ([i, entry]) => {
      try {
        const present = await holds(options.registry, entry.slot.image, signal);
        inPlace[i] = { ...entry, present };
        emit({ type: 'in-place', slot: entry.slot, present });
      } catch (err) {
        if (signal?.aborted) throw err;
        failures.push({ slot: entry.slot, cause: err instanceof Error ? err.message : String(err) });
      }
    });
  } else for (const entry of inPlace) emit({ type: 'in-place', slot: entry.slot });

  const report = (files: readonly PinnedFile[]): RelocateReport => {
    const all = [
      ...failures,
      ...images.flatMap((p) => (p.failure === undefined ? [] : [{ slot: p.slots[0] as ImageSlot, cause: p.failure }])),
    ];
    const order = new Map(slots.map((slot, i) => [slot, i]));
    all.sort((a, b) => (order.get(a.slot) ?? 0) - (order.get(b.slot) ?? 0));
    return {
      target,
      files: all.length > 0 ? [] : files,
      slots,
      images: images.map((p) => ({
        source: p.key,
        destination: destinationOf(p),
        digest: p.digest ?? '',
        slots: p.slots,
        ...(p.present !== undefined && { present: p.present }),
        ...(p.copy !== undefined && { copy: p.copy }),
      })),
      inPlace,
      failures: all,
      resolutions: all.length > 0 || options.check === true ? [] : lockEntries(),
    };
  };
  const valueFor = (slot: ImageSlot): string | undefined => {
    const p = bySlot.get(slot);
    if (p?.digest === undefined) return undefined;
    // The tag as written (none when implied), so `preserve` keeps the manifest's spelling.
    const tag = parseNormalizedNamed(slot.image).tag;
    const written = tag === undefined ? p.repository : `${p.repository}:${tag}`;
    return pinnedValue(written, parseDockerRef(written), p.digest, options.outputFormat ?? 'preserve');
  };
  const lockEntries = (): LockEntry[] =>
    [...bySlot.keys()].map((slot) => {
      const p = bySlot.get(slot) as Planned;
      return { ref: slot.image, digest: p.digest ?? '', destination: valueFor(slot) ?? '' };
    });

  if (failures.length > 0 || images.some((p) => p.failure !== undefined) || options.check === true) return report([]);

  // Copy; the first failure stops the rest (eachLimited aborts `stop` for the others).
  await eachLimited(
    images,
    limit,
    async (p, stop) => {
      // The source as the plan saw it (its root and manifests remembered): a tag moving meanwhile
      // cannot make the copy and the rewrite disagree, and nothing is fetched twice.
      const source = p.source as ImageSource;
      const destination = new RegistryDestination(options.registry, parseDockerRef(destinationOf(p)));
      try {
        p.copy = await copyImage(source, destination, {
          ...copyOptions,
          signal: stop,
          onEvent: (event) => emit({ type: 'copy', source: p.key, destination: destinationOf(p), event }),
        });
        emit({ type: 'copied', source: p.key, destination: destinationOf(p), result: p.copy });
      } catch (err) {
        // Only the failure that stopped the others is theirs to report.
        if (!stop.aborted) fail(p, err);
        throw err;
      }
    },
    signal,
  ).catch((err: unknown) => {
    if (signal?.aborted) throw err;
  });
  if (images.some((p) => p.failure !== undefined)) return report([]);
  return report(rewriteSlots(perSource, valueFor, options));
}

/** Whether the registry holds `image` (a tag or a digest); 404s say no, other failures throw. */
async function holds(registry: RegistryClient, image: string, signal?: AbortSignal): Promise<boolean> {
  const found: Descriptor | undefined = await new RegistryDestination(registry, parseDockerRef(image)).current(signal);
  return found !== undefined;
}

/**
 * A source whose root and manifests are fetched once: the plan (a dry run) and the copy then
 * see the same digest, even when the tag moves between them, and nothing is fetched twice.
 * Manifests are bounded by the registry client (4 MiB each).
 */
class RememberedSource implements ImageSource {
  readonly label: string;
  readonly repository: ImageSource['repository'];
  #root: Promise<TopLevel> | undefined;
  readonly #manifests = new Map<string, Promise<Uint8Array>>();

  constructor(private readonly inner: ImageSource) {
    this.label = inner.label;
    this.repository = inner.repository;
  }

  root(signal?: AbortSignal): Promise<TopLevel> {
    const root = (this.#root ??= this.inner.root(signal));
    root.catch(() => (this.#root = undefined));
    return root;
  }

  manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    let bytes = this.#manifests.get(descriptor.digest);
    if (bytes === undefined) {
      bytes = this.inner.manifest(descriptor, signal);
      this.#manifests.set(descriptor.digest, bytes);
      bytes.catch(() => this.#manifests.delete(descriptor.digest));
    }
    return bytes;
  }

  blob(descriptor: Descriptor): BlobSource {
    return this.inner.blob(descriptor);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
