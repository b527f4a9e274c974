import { KimgError } from '../errors/index.ts';

export type ManifestFileErrorCode =
  /** Not YAML or JSON (syntax, duplicate key, bad indentation): named by document and line. */
  | 'ErrManifestSyntax'
  /** The file (or directory) cannot be read. */
  | 'ErrManifestUnreadable'
  /** Not UTF-8: rewriting would change bytes we did not mean to touch. */
  | 'ErrManifestEncoding'
  /** A rewrite that did not re-read as intended; nothing is written (a bug if it ever shows). */
  | 'ErrManifestRewrite'
  /** An `--extra-path` or pod-spec path that does not parse. */
  | 'ErrManifestPath';

/**
 * A manifest file kimg cannot read or rewrite safely. `file` is the name as given (`-` for
 * standard input); `doc` (0-based), `line` and `column` (1-based) locate the problem when known.
 */
export class ManifestFileError extends KimgError<ManifestFileErrorCode> {
  readonly file: string;
  readonly doc: number | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(
    code: ManifestFileErrorCode,
    message: string,
    facts: { file: string; doc?: number; line?: number; column?: number; cause?: unknown },
  ) {
    super(code, message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.file = facts.file;
    this.doc = facts.doc;
    this.line = facts.line;
    this.column = facts.column;
  }
}

export type ImageLockErrorCode =
  /** The lock file is not an ImageLock (wrong kind, missing fields, a malformed digest). */
  | 'ErrLockInvalid'
  /** The lock was written for another `resolve` mode (index vs a platform) than this run's. */
  | 'ErrLockResolveMismatch'
  /** `--from-lock` replay of a reference the lock does not hold. */
  | 'ErrNotInLock';

/** A lock file that cannot be used, or a reference it lacks. `file` names the lock. */
export class ImageLockError extends KimgError<ImageLockErrorCode> {
  readonly file: string;
  readonly ref: string | undefined;

  constructor(code: ImageLockErrorCode, message: string, facts: { file: string; ref?: string }) {
    super(code, message);
    this.file = facts.file;
    this.ref = facts.ref;
  }
}

export type RelocateErrorCode =
  /** `--to` is not `REGISTRY[/PREFIX]` (a host, then an optional repository path). */
  | 'ErrRelocateTarget'
  /** An image's destination name is not a valid repository name (too long, a host that cannot be a path). */
  | 'ErrRelocateName'
  /** Two different source repositories would land in one destination repository. */
  | 'ErrRelocateCollision';

/**
 * A relocation that cannot start: a bad target, an unmappable name, a name collision. Raised
 * before anything is copied; `images` names the source images concerned.
 */
export class RelocateError extends KimgError<RelocateErrorCode> {
  readonly images: readonly string[];

  constructor(code: RelocateErrorCode, message: string, images: readonly string[] = []) {
    super(code, message);
    this.images = images;
  }
}
