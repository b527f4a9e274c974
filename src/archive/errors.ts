import { KimgError } from '../errors/index.ts';

export type ArchiveErrorCode =
  | 'ErrArchiveInvalid'
  | 'ErrArchiveEntryRefused'
  | 'ErrArchiveTooLarge'
  | 'ErrDigestMismatch'
  | 'ErrBlobUnknown'
  | 'ErrImageUnknown';

/**
 * An archive or layout that cannot be read or written as asked. `archive` is the file; `entry`
 * the tar entry and `digest` the blob concerned, when there is one (both also in the message).
 */
export class ArchiveError extends KimgError<ArchiveErrorCode> {
  readonly archive: string;
  readonly entry: string | undefined;
  readonly digest: string | undefined;

  constructor(
    code: ArchiveErrorCode,
    message: string,
    facts: { archive: string; entry?: string; digest?: string; cause?: unknown },
  ) {
    super(code, message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.archive = facts.archive;
    this.entry = facts.entry;
    this.digest = facts.digest;
  }
}
