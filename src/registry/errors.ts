import { KimgError } from '../errors/index.ts';
import { redactUrlsInText, truncateText } from './redact.ts';

export type RegistryErrorCode =
  | 'ErrManifestUnknown'
  | 'ErrBlobUnknown'
  | 'ErrNameUnknown'
  | 'ErrUnauthorized'
  | 'ErrDenied'
  | 'ErrTooManyRequests'
  | 'ErrRegistryUnavailable'
  | 'ErrDigestMismatch'
  | 'ErrSizeMismatch'
  | 'ErrManifestTooLarge'
  | 'ErrBodyTooLarge'
  | 'ErrInsecureRedirect'
  | 'ErrTooManyRedirects'
  | 'ErrRealmRefused'
  | 'ErrTLS'
  | 'ErrConnection'
  | 'ErrUnexpectedStatus'
  | 'ErrRangeIgnored'
  | 'ErrResumeExhausted'
  | 'ErrInvalidArgument'
  | 'ErrInsecureEndpoint'
  | 'ErrNoEndpoint'
  | 'ErrInvalidChallenge'
  | 'ErrInvalidTokenResponse'
  | 'ErrUnsupported';

/** One entry of a registry's `{"errors":[…]}` body, as the registry sent it (redacted, cut). */
export interface RegistryErrorDetail {
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
}

/** Docker Hub's `ratelimit-limit` / `ratelimit-remaining` (`100;w=21600`). */
export interface RateLimit {
  readonly limit?: number;
  readonly remaining?: number;
  /** The window the numbers apply to, from `;w=`. */
  readonly windowSeconds?: number;
  /** `docker-ratelimit-source`: the IP or account the limit is counted against. */
  readonly source?: string;
}

export interface RegistryErrorFacts {
  /** The registry name the operation was for (`docker.io`). */
  readonly registry?: string;
  /** Host (`host:port`) that answered or failed. */
  readonly host?: string;
  /** Repository path (`library/nginx`). */
  readonly repository?: string;
  /** Tag or digest the operation was for. */
  readonly reference?: string;
  /** Request URL, query redacted. */
  readonly url?: string;
  readonly status?: number;
  /** HTTP attempts made for the failing request (1 = not retried). */
  readonly attempts?: number;
  readonly registryErrors?: readonly RegistryErrorDetail[];
  readonly rateLimit?: RateLimit;
  /** Server's `Retry-After`, in milliseconds, when it sent one. */
  readonly retryAfterMs?: number;
  readonly expectedDigest?: string;
  readonly actualDigest?: string;
  readonly expectedSize?: number;
  readonly actualSize?: number;
  /** Earlier endpoints (mirrors) that failed before this one, one line each. */
  readonly previousEndpoints?: readonly string[];
}

/**
 * An error from talking to a registry. `code` says what failed; facts are properties. The
 * message names the image and host and what was retried; it never contains credentials,
 * tokens, `Authorization` values or URL queries.
 */
export class RegistryError extends KimgError<RegistryErrorCode> implements RegistryErrorFacts {
  declare readonly registry?: string;
  declare readonly host?: string;
  declare readonly repository?: string;
  declare readonly reference?: string;
  declare readonly url?: string;
  declare readonly status?: number;
  declare readonly attempts?: number;
  declare readonly registryErrors?: readonly RegistryErrorDetail[];
  declare readonly rateLimit?: RateLimit;
  declare readonly retryAfterMs?: number;
  declare readonly expectedDigest?: string;
  declare readonly actualDigest?: string;
  declare readonly expectedSize?: number;
  declare readonly actualSize?: number;
  declare readonly previousEndpoints?: readonly string[];

  constructor(code: RegistryErrorCode, message: string, facts: RegistryErrorFacts = {}, options?: { cause?: unknown }) {
    super(code, redactUrlsInText(message), options);
    for (const [key, value] of Object.entries(facts)) {
      if (value !== undefined) Object.defineProperty(this, key, { value, enumerable: true, writable: false });
    }
  }
}

const REGISTRY_CODES: Record<string, RegistryErrorCode> = {
  MANIFEST_UNKNOWN: 'ErrManifestUnknown',
  MANIFEST_BLOB_UNKNOWN: 'ErrBlobUnknown',
  BLOB_UNKNOWN: 'ErrBlobUnknown',
  NAME_UNKNOWN: 'ErrNameUnknown',
  UNAUTHORIZED: 'ErrUnauthorized',
  DENIED: 'ErrDenied',
  TOOMANYREQUESTS: 'ErrTooManyRequests',
  UNSUPPORTED: 'ErrUnsupported',
};

/**
 * The error code for a failed response: the registry's own error code when its body names one
 * we know, else one derived from the status and what was asked for (`notFound`).
 */
export function codeForResponse(
  status: number,
  details: readonly RegistryErrorDetail[],
  notFound: RegistryErrorCode,
): RegistryErrorCode {
  // Status wins for the classes where it is unambiguous; the body refines 404s and 401/403s.
  if (status === 429) return 'ErrTooManyRequests';
  if (status >= 500) return 'ErrRegistryUnavailable';
  for (const d of details) {
    const mapped = REGISTRY_CODES[d.code];
    if (mapped !== undefined) return mapped;
  }
  if (status === 401) return 'ErrUnauthorized';
  if (status === 403) return 'ErrDenied';
  if (status === 404) return notFound;
  return 'ErrUnexpectedStatus';
}

/**
 * Parses a registry error body (`{"errors":[{code,message,detail}]}`); anything else yields no
 * entries. Text is redacted and cut, so a hostile body cannot flood a message.
 */
export function parseErrorBody(body: Uint8Array, scrub: (text: string) => string = (t) => t): RegistryErrorDetail[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  const out: RegistryErrorDetail[] = [];
  for (const entry of errors.slice(0, 8)) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { code, message, detail } = entry as { code?: unknown; message?: unknown; detail?: unknown };
    if (typeof code !== 'string') continue;
    const text = (s: string) => truncateText(redactUrlsInText(scrub(s)), 300);
    const item: { code: string; message: string; detail?: string } = {
      code: text(code),
      message: typeof message === 'string' ? text(message) : '',
    };
    if (detail !== undefined && detail !== null) {
      item.detail = text(typeof detail === 'string' ? detail : JSON.stringify(detail));
    }
    out.push(item);
  }
  return out;
}

/** `MANIFEST_UNKNOWN: manifest unknown; …` for a message. */
export function describeDetails(details: readonly RegistryErrorDetail[]): string {
  return details.map((d) => (d.message === '' ? d.code : `${d.code}: ${d.message}`)).join('; ');
}

const FACT_KEYS = [
  'registry',
  'host',
  'repository',
  'reference',
  'url',
  'status',
  'attempts',
  'registryErrors',
  'rateLimit',
  'retryAfterMs',
  'expectedDigest',
  'actualDigest',
  'expectedSize',
  'actualSize',
  'previousEndpoints',
] as const satisfies ReadonlyArray<keyof RegistryErrorFacts>;

/** The facts an error carries, as a plain object. */
export function factsOf(err: RegistryError): RegistryErrorFacts {
  const out: Record<string, unknown> = {};
  for (const key of FACT_KEYS) if (err[key] !== undefined) out[key] = err[key];
  return out as RegistryErrorFacts;
}
