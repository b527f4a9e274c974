/**
 * Errors as the OCI distribution spec answers them: a status and
 * `{"errors":[{"code":…,"message":…,"detail":…}]}`, with the spec's codes
 * (opencontainers/distribution-spec, spec.md "Error Codes"; distribution/distribution
 * registry/api/errcode and registry/api/v2/errors.go for the statuses).
 */
import { KimgError } from '../errors/index.ts';

export type DistributionErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'UNAVAILABLE';

/** The message each code carries in Distribution (errcode descriptors), used when none is given. */
const DEFAULT_MESSAGES: Record<DistributionErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'The operation is unsupported.',
  TOOMANYREQUESTS: 'too many requests',
  RANGE_INVALID: 'invalid content range',
  UNAVAILABLE: 'service unavailable',
};

/** The status Distribution answers each code with. */
const STATUS: Record<DistributionErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  UNAVAILABLE: 503,
};

/** A request the server refuses, with the spec's code; `status` defaults to the code's own. */
export class DistributionError extends KimgError<DistributionErrorCode> {
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (`Range` on a 416 upload, `WWW-Authenticate` on a 401). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: DistributionErrorCode,
    message?: string,
    facts: { status?: number; detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, message ?? DEFAULT_MESSAGES[code], facts.cause === undefined ? undefined : { cause: facts.cause });
    this.status = facts.status ?? STATUS[code];
    this.detail = facts.detail;
    this.headers = facts.headers ?? {};
  }

  /** The JSON body the spec defines. */
  body(): string {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}
