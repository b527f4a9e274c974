/**
 * Registry failures in the words of docs/semantics.md admission §4.5: 404, MANIFEST_UNKNOWN, NAME_UNKNOWN → `not found`;
 * 401, 403 → `auth`; the request budget or a call timeout → `timeout`; otherwise the HTTP status
 * or the network error. Messages never carry credentials (the registry client redacts them).
 */
import { CredentialHelperError } from '../credentials/index.ts';
import { isKimgError } from '../errors/index.ts';
import { ResolveFailure } from './errors.ts';

/** The abort reason of a request budget running out. */
export class BudgetExpired extends Error {
  constructor(readonly budgetMs: number) {
    super(`the request budget of ${budgetMs} ms ran out`);
    this.name = 'BudgetExpired';
  }
}

const NOT_FOUND = new Set(['ErrManifestUnknown', 'ErrNameUnknown', 'ErrBlobUnknown']);
const AUTH = new Set(['ErrUnauthorized', 'ErrDenied']);
const TIMEOUT_CODES =
  /\b(UND_ERR_HEADERS_TIMEOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_BODY_TIMEOUT|ETIMEDOUT|TimeoutError)\b/;
const NETWORK_CODE = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+|ERR_[A-Z_]+)\b/;

function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 6; depth++) {
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

function statusOf(err: unknown): number | undefined {
  for (const e of chain(err)) {
    const status = (e as { status?: unknown }).status;
    if (typeof status === 'number') return status;
  }
  return undefined;
}

function isAbort(err: unknown): boolean {
  return chain(err).some(
    (e) => e instanceof BudgetExpired || (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError')),
  );
}

/** The keyword (docs/semantics.md admission §4.5) for an error. */
export function failureReason(err: unknown): string {
  if (err instanceof ResolveFailure) return err.reason;
  if (isAbort(err)) return 'timeout';
  const links = chain(err);
  // A Docker credential helper that hung (killed at its timeout) or failed: no registry was asked.
  const helper = links.find((e): e is CredentialHelperError => e instanceof CredentialHelperError);
  if (helper !== undefined) return helper.reason === 'timeout' ? 'timeout' : 'credential helper';
  const codes = links.filter((e) => isKimgError(e)).map((e) => (e as { code: string }).code);
  if (codes.some((c) => NOT_FOUND.has(c))) return 'not found';
  if (codes.some((c) => AUTH.has(c))) return 'auth';
  if (codes.includes('ErrPlatformNotFound')) return 'platform not found';
  if (codes.includes('ErrRegistryBlocked')) return 'blocked';
  const status = statusOf(err);
  if (status === 404) return 'not found';
  if (status === 401 || status === 403) return 'auth';
  const message = err instanceof Error ? err.message : String(err);
  if (TIMEOUT_CODES.test(message)) return 'timeout';
  if (status !== undefined) return `HTTP ${status}`;
  if (codes.includes('ErrTLS')) return 'TLS';
  if (codes.includes('ErrDigestMismatch')) return 'digest mismatch';
  const network = NETWORK_CODE.exec(message);
  if (network?.[1] !== undefined) return network[1];
  return codes[0] ?? 'error';
}

/** Registry client codes for a registry that is down or shedding load, not for anything about the image. */
const TRANSIENT_CODES = new Set(['ErrRegistryUnavailable', 'ErrTooManyRequests', 'ErrConnection']);
/** Network errors of an unreachable or flapping registry (DNS included). TLS failures are not among them: a certificate problem is configuration, or an attack. */
const TRANSIENT_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Reasons that are the registry's (or the configuration's) answer, whatever else the error chain holds. */
const ANSWERS = new Set([
  'not found',
  'auth',
  'platform not found',
  'blocked',
  'TLS',
  'digest mismatch',
  'credential helper',
]);

/**
 * Whether a lookup failure says the registry could not answer (timeout, unreachable, 5xx, 429),
 * as opposed to an answer about the image (not found, auth, platform not found, blocked, a
 * digest mismatch, TLS). Only the former may be bridged with a stale digest: a 404 or 401 is the
 * registry's current word and must stand.
 */
export function isTransientFailure(err: unknown): boolean {
  const reason = failureReason(err);
  if (reason === 'timeout') return true;
  if (ANSWERS.has(reason)) return false;
  if (/^HTTP (5\d\d|429)$/.test(reason) || TRANSIENT_NETWORK.has(reason)) return true;
  return chain(err).some((e) => isKimgError(e) && TRANSIENT_CODES.has((e as { code: string }).code));
}

const DETAIL_MAX = 160;

/** A ResolveFailure for `image` (as written) from whatever the lookup threw. */
export function toResolveFailure(image: string, err: unknown, platform?: string): ResolveFailure {
  if (err instanceof ResolveFailure)
    return err.image === image
      ? err
      : new ResolveFailure(image, err.reason, err.detail, {
          ...(err.platform !== undefined && { platform: err.platform }),
          error: err,
        });
  const reason = failureReason(err);
  let detail =
    reason === 'timeout' && isAbort(err)
      ? 'no answer within the request budget'
      : err instanceof Error
        ? err.message
        : String(err);
  if (reason === 'auth' && !/auth/i.test(detail)) detail = `authentication required: ${detail}`;
  if (detail.length > DETAIL_MAX) detail = `${detail.slice(0, DETAIL_MAX - 1)}…`;
  return new ResolveFailure(image, reason, detail, { ...(platform !== undefined && { platform }), error: err });
}
