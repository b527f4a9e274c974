import { KimgError } from '../errors/index.ts';

export type StoreErrorCode =
  | 'ErrStoreCorrupt'
  | 'ErrStoreNotFound'
  | 'ErrStoreLocked'
  | 'ErrBlobUnknown'
  | 'ErrBlobTooLarge'
  | 'ErrImageUnknown'
  | 'ErrImageNameInvalid'
  | 'ErrIngestClosed'
  /** The file system holding the store is full (ENOSPC) or over quota (EDQUOT). */
  | 'ErrStoreFull';

/**
 * Something wrong with a store or with what was asked of it. `store` is the layout's root;
 * `digest`, `image` and `path` name the blob, the image and the file concerned when there is one.
 */
export class StoreError extends KimgError<StoreErrorCode> {
  readonly store: string;
  readonly digest: string | undefined;
  readonly image: string | undefined;
  readonly path: string | undefined;
  /** For ErrStoreLocked: the process holding the lock, when known. */
  readonly holderPid: number | undefined;

  constructor(
    code: StoreErrorCode,
    message: string,
    facts: { store: string; digest?: string; image?: string; path?: string; holderPid?: number; cause?: unknown },
  ) {
    super(code, message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.store = facts.store;
    this.digest = facts.digest;
    this.image = facts.image;
    this.path = facts.path;
    this.holderPid = facts.holderPid;
  }
}

/** Node's errno-carrying errors, told apart without `any`. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
