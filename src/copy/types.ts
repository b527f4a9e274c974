/**
 * The two ends of a copy. A source hands out verified manifests and re-openable blob streams; a
 * destination takes blobs, then child manifests by digest, then the top-level one under its
 * name last, so a name never points at something incomplete.
 */
import { KimgError } from '../errors/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { BlobSource, RepositoryRef } from '../registry/index.ts';

/** How a destination made a referrer findable (see `ImageDestination.putReferrer`). */
export type ReferrerPlacement = 'api' | 'tag' | 'index';

/** What a blob copy did at the destination. */
export type BlobOutcome = 'exists' | 'mounted' | 'pushed';

export interface TopLevel {
  readonly descriptor: Descriptor;
  /** The exact bytes (verified against the descriptor's digest). */
  readonly bytes: Uint8Array;
  /** The full name the source knows the image by, when it has one (for archives and layouts). */
  readonly name?: string;
}

export interface ImageSource {
  /** Names the source in messages (`docker://…`, `oci:DIR:REF`). */
  readonly label: string;
  /** A registry repository, so a destination on the same registry can mount from it. */
  readonly repository?: RepositoryRef;
  root(signal?: AbortSignal): Promise<TopLevel>;
  /** A manifest or index by descriptor, its bytes verified. */
  manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  /** Whether the blob can be read (local sources check before anything is written). */
  hasBlob?(descriptor: Descriptor): Promise<boolean>;
  blob(descriptor: Descriptor): BlobSource;
  /** The OCI 1.1 referrers of a manifest the source holds (signatures, SBOMs, attestations):
   * their descriptors, bounded; absent on a source that cannot list them. */
  referrers?(subject: Descriptor, signal?: AbortSignal): Promise<readonly Descriptor[]>;
  close(): Promise<void>;
}

export interface PushBlobContext {
  readonly signal?: AbortSignal;
  readonly mountFrom?: RepositoryRef;
  readonly onProgress?: (bytes: number) => void;
  /** Awaited when the destination is ready for the blob's bytes, before the first is sent. */
  readonly waitToSend?: () => Promise<void>;
  /** The blob's bytes are all sent and only the destination's commit remains. */
  readonly onSent?: () => void;
}

export interface ImageDestination {
  readonly label: string;
  /** What the destination's name points at now; undefined when nothing (or unknown). */
  current(signal?: AbortSignal): Promise<Descriptor | undefined>;
  pushBlob(descriptor: Descriptor, source: BlobSource, context: PushBlobContext): Promise<BlobOutcome>;
  /** A child manifest or index, by digest. */
  putManifest(descriptor: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** The top-level manifest or index under the destination's name: the last step. `sourceName`
   * names it when the destination has no name of its own (a layout without a reference). */
  commit(top: TopLevel, signal?: AbortSignal): Promise<string>;
  /** A referrer manifest (its blobs already pushed), with its exact bytes, made findable from
   * `subject`: `api` when the destination indexes subjects itself, `tag` when it also keeps the
   * fallback tag `sha256-<hex>`, `index` when a layout lists it in `index.json`. */
  putReferrer?(
    descriptor: Descriptor,
    bytes: Uint8Array,
    subject: Descriptor,
    signal?: AbortSignal,
  ): Promise<ReferrerPlacement>;
  /** After the image and its referrers landed (an archive is written now). */
  finish?(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type CopyErrorCode =
  | 'ErrCopy'
  | 'ErrInvalidTransport'
  | 'ErrBlobUnknown'
  | 'ErrArchiveInvalid'
  | 'ErrIndexIncomplete'
  | 'ErrDigestMismatch'
  | 'ErrTooManyReferrers'
  | 'ErrUnsupported';

/** A copy that failed, naming the source, the destination and the blob or entry. */
export class CopyError extends KimgError<string> {
  readonly image?: string;
  readonly digest?: string;

  constructor(code: string, message: string, facts: { image?: string; digest?: string } = {}, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    if (facts.image !== undefined) this.image = facts.image;
    if (facts.digest !== undefined) this.digest = facts.digest;
  }
}
