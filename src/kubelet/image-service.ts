/**
 * The container runtime's image service as the image manager sees it (the CRI `ImageService`
 * calls it makes), and the kubelet's credential loop around `PullImage` (docs/semantics.md kubelet §8): one
 * runtime pull per credential in order until one succeeds; none → one anonymous pull; all
 * failing → the aggregate of their errors.
 */
import type { BasicCredential, KeyringMatch } from '../credentials/index.ts';
import { KimgError } from '../errors/index.ts';
import { aggregateMessages } from './go-format.ts';

/** An image as the runtime lists it (CRI `Image`). */
export interface ImageInfo {
  /** The imageRef (kimg: the digest of the stored index or manifest). */
  readonly id: string;
  /** Full references with a tag (`docker.io/library/busybox:1.36`). */
  readonly repoTags: readonly string[];
  /** `repository@digest` references. */
  readonly repoDigests: readonly string[];
  /** Bytes; shared layers count in every image (as the CRI reports). */
  readonly size: number;
  /** Never garbage collected (e.g. the sandbox image). */
  readonly pinned?: boolean;
}

export interface PullImageOptions {
  readonly signal?: AbortSignal;
}

export interface ImageService {
  /** CRI `ImageStatus`: the imageRef of a present image, `''` when absent. `image` is default-tagged. */
  getImageRef(image: string): Promise<string>;
  /** CRI `PullImage` with one credential or none; resolves to the imageRef. Rejects with the runtime's error. */
  pullImage(image: string, credential: BasicCredential | undefined, options?: PullImageOptions): Promise<string>;
  /** Best-effort size in bytes of a present image; 0 when unknown. */
  getImageSize(image: string): Promise<number>;
  listImages(): Promise<ImageInfo[]>;
  /** CRI `RemoveImage` by imageRef: every name of it goes. */
  removeImage(imageRef: string): Promise<void>;
}

/** What resolving a reference tells a preflight, without downloading layers. */
export interface ResolvedImage {
  /** The digest the reference points at (index or manifest). */
  readonly digest: string;
  readonly mediaType: string;
  /** The platforms an index offers (or the single manifest's, from its config). */
  readonly platforms: readonly string[];
  /** The manifest for the wanted platform; undefined when there is none. */
  readonly platformDigest: string | undefined;
  /** Bytes of the platform image (manifest, config and layers) when known. */
  readonly size: number | undefined;
}

/** Optional: resolution without pulling, for `kimg ensure --dry-run`. */
export interface ImageResolver {
  resolveImage(
    image: string,
    credential: BasicCredential | undefined,
    options: { platform: string; signal?: AbortSignal },
  ): Promise<ResolvedImage>;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every credential failed: `[e1, e2]` as Go's aggregate prints it. */
export class PullAttemptsError extends KimgError<string> {
  readonly errors: readonly unknown[];

  constructor(errors: readonly unknown[]) {
    const first = errors[0];
    super(
      errors.length === 1 && first instanceof KimgError ? first.code : 'ErrImagePull',
      aggregateMessages(errors.map(errorText)),
    );
    this.errors = errors;
  }
}

export interface CredentialPullResult {
  readonly imageRef: string;
  /** The credential that worked; undefined for an anonymous pull. */
  readonly credential: KeyringMatch | undefined;
}

/** The runtime manager's `PullImage`: each credential in turn, else anonymous once. */
export async function pullWithCredentials(
  service: ImageService,
  image: string,
  credentials: readonly KeyringMatch[],
  options: PullImageOptions = {},
): Promise<CredentialPullResult> {
  if (credentials.length === 0)
    return { imageRef: await service.pullImage(image, undefined, options), credential: undefined };
  const errors: unknown[] = [];
  for (const match of credentials) {
    try {
      return { imageRef: await service.pullImage(image, match.credential, options), credential: match };
    } catch (err) {
      errors.push(err);
    }
  }
  throw errors.length === 1 ? errors[0] : new PullAttemptsError(errors);
}
