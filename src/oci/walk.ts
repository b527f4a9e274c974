/**
 * The one image-graph walk: document → children, each digest descended into once, a nesting
 * limit and a bound on the total work. Every walk of an image in kimg (pull's plan, the store's
 * gc and fsck, `images`/`inspect`, the kubelet's resolve) is this walk with its own visitor, as
 * containerd's `images.Walk` with `images.Handler`s (containerd `core/images/handlers.go`, v2.0).
 *
 * No I/O here: the visitor reads documents (from a registry or a store) and returns the children
 * to descend into. The bounds matter because image graphs are hostile input: three nested
 * indexes of 1,024 entries each, all pointing at one child, are six blobs on disk but 1,024³
 * paths; visiting each digest once makes that 3,075 references, and the work bound stops graphs
 * that are wide with distinct documents. What each command does with an image over the limits:
 * docs/image-graphs.md.
 */
import { KimgError } from '../errors/index.ts';
import { isIndexMediaType, isManifestMediaType } from './media-types.ts';
import { selectPlatform } from './platform.ts';
import type { Descriptor, ManifestDocument, Platform } from './types.ts';

/** Indexes nested deeper than this are refused: a document (index or manifest) may sit at most
 * this many levels below the image's top descriptor. The one limit: pull refuses what gc and
 * fsck would, and they accept everything pull accepts. */
export const MAX_INDEX_DEPTH = 8;

/** References one walk of one image may meet, repeats included (each digest is descended into
 * once, so this bounds the documents read too). 65,536 covers an index of 1,024 platforms with
 * 63 blobs each, far beyond any published image, while a hostile graph stops after about a
 * second of work. */
export const MAX_WALK_DESCRIPTORS = 65_536;

/** Why a walk stopped: the graph is nested too deep or is too large to walk. */
export type WalkLimit = 'depth' | 'descriptors';

/** An image graph over a walk limit. Code `ErrManifestInvalid`: the image is refused as a
 * malformed one would be; `limit` says which bound it broke. */
export class WalkLimitError extends KimgError<'ErrManifestInvalid'> {
  readonly limit: WalkLimit;
  readonly digest: string;

  constructor(limit: WalkLimit, message: string, digest: string) {
    super('ErrManifestInvalid', message);
    this.limit = limit;
    this.digest = digest;
  }
}

/** Where the walk is: the root has depth 0 and no parent; a child is one deeper than its parent. */
export interface WalkStep {
  readonly depth: number;
  readonly parent: Descriptor | undefined;
}

/** Sees a descriptor once per digest and returns the descriptors to descend into ([] stops). */
export type Visit = (descriptor: Descriptor, step: WalkStep) => Promise<readonly Descriptor[]>;

/** The children of a document that a walk descends into (see `childrenOf`, `forPlatform`). */
export type Children = (document: ManifestDocument) => readonly Descriptor[];

export interface WalkOptions {
  /** Documents deeper than this are refused (default `MAX_INDEX_DEPTH`). */
  readonly maxDepth?: number;
  /** References the walk may meet in all (default `MAX_WALK_DESCRIPTORS`); beyond, it throws
   * a `WalkLimitError` with limit `descriptors`. */
  readonly maxDescriptors?: number;
  /** Called for every reference, repeats included, before the once-per-digest check (fsck
   * checks each descriptor's size against the blob). */
  readonly onReference?: (descriptor: Descriptor, step: WalkStep) => void | Promise<void>;
  /** A descriptor over `maxDepth`: not visited. Default: throw a `WalkLimitError` (limit
   * `depth`); a reporter (fsck) records it and the walk goes on with the rest. */
  readonly onTooDeep?: (descriptor: Descriptor, step: WalkStep) => void;
  /** Digests already descended into, shared across walks (one per image over one store); the
   * walk adds to it. Default a fresh set. */
  readonly seen?: Set<string>;
  /** Default depth-first, in document order. */
  readonly order?: 'depth-first' | 'breadth-first';
  readonly signal?: AbortSignal;
}

/** What a walk did, for reports and tests. */
export interface WalkStats {
  /** References met, repeats included. */
  readonly references: number;
  /** Descriptors visited (distinct digests). */
  readonly visited: number;
}

/**
 * What a document points at: an index's manifests; a manifest's config and layers; with
 * `subject`, also the document it refers to (gc keeps subjects alive).
 */
export function childrenOf(document: ManifestDocument, options: { readonly subject?: boolean } = {}): Descriptor[] {
  const own = document.kind === 'index' ? document.index : document.manifest;
  const children =
    document.kind === 'index' ? [...document.index.manifests] : [document.manifest.config, ...document.manifest.layers];
  if (options.subject === true && own.subject !== undefined) children.push(own.subject);
  return children;
}

/**
 * Narrows an index's children to the one best match for `want` (containerd's `FilterPlatforms`
 * with `LimitManifests(…, 1)`): [] when none matches, which the caller turns into its own
 * "platform not found". A manifest's children are kept.
 */
export function forPlatform(children: Children, want: Platform): Children {
  return (document) => {
    const all = children(document);
    if (document.kind !== 'index') return all;
    const at = selectPlatform(all, want);
    const best = at === undefined ? undefined : all[at];
    return best === undefined ? [] : [best];
  };
}

/** An index or image manifest by its descriptor's media type: what a walk reads, not a blob. */
export function isDocumentMediaType(mediaType: string): boolean {
  return isIndexMediaType(mediaType) || isManifestMediaType(mediaType);
}

/**
 * Walks the graph from `roots`. `visit` sees each digest once and returns the descriptors to
 * descend into; `onReference` sees every reference. A document deeper than `maxDepth` (and
 * anything two levels deeper, whatever its media type) goes to `onTooDeep` instead; more than
 * `maxDescriptors` references throws. Visits run one at a time, in order.
 */
export async function walkImage(
  roots: readonly Descriptor[],
  visit: Visit,
  options: WalkOptions = {},
): Promise<WalkStats> {
  const maxDepth = options.maxDepth ?? MAX_INDEX_DEPTH;
  const maxDescriptors = options.maxDescriptors ?? MAX_WALK_DESCRIPTORS;
  const seen = options.seen ?? new Set<string>();
  const breadthFirst = options.order === 'breadth-first';
  const onTooDeep =
    options.onTooDeep ??
    ((descriptor: Descriptor) => {
      throw new WalkLimitError(
        'depth',
        `${descriptor.digest}: indexes nested deeper than ${maxDepth} levels`,
        descriptor.digest,
      );
    });
  interface Item {
    readonly descriptor: Descriptor;
    readonly step: WalkStep;
  }
  // Depth-first pops from the end, so children are pushed in reverse to keep document order.
  const pending: Item[] = [];
  let head = 0;
  let references = 0;
  let visited = 0;
  const enqueue = (descriptors: readonly Descriptor[], step: WalkStep): void => {
    references += descriptors.length;
    if (references > maxDescriptors) {
      const at = step.parent ?? descriptors[0];
      throw new WalkLimitError(
        'descriptors',
        `${at?.digest ?? 'image'}: the image graph has more than ${maxDescriptors} references; refusing to walk it`,
        at?.digest ?? '',
      );
    }
    const items = descriptors.map((descriptor) => ({ descriptor, step }));
    if (breadthFirst) pending.push(...items);
    else for (let i = items.length - 1; i >= 0; i--) pending.push(items[i] as Item);
  };
  enqueue(roots, { depth: 0, parent: undefined });
  while (breadthFirst ? head < pending.length : pending.length > 0) {
    options.signal?.throwIfAborted();
    const item = (breadthFirst ? pending[head++] : pending.pop()) as Item;
    const { descriptor, step } = item;
    await options.onReference?.(descriptor, step);
    if (step.depth > maxDepth && (isDocumentMediaType(descriptor.mediaType) || step.depth > maxDepth + 1)) {
      onTooDeep(descriptor, step);
      continue;
    }
    if (seen.has(descriptor.digest)) continue;
    seen.add(descriptor.digest);
    visited++;
    const children = await visit(descriptor, step);
    if (children.length > 0) enqueue(children, { depth: step.depth + 1, parent: descriptor });
    // Breadth-first: drop what was walked so the queue holds only what is pending.
    if (breadthFirst && head > 4096) {
      pending.splice(0, head);
      head = 0;
    }
  }
  return { references, visited };
}
