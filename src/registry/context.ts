/**
 * Per-operation bookkeeping shared by the layers: names for messages, secrets to scrub, and what
 * responses told us on the way (warnings, rate limits). Also turns failed responses into errors.
 */
import { readForMessage } from './body.ts';
import {
  RegistryError,
  codeForResponse,
  describeDetails,
  parseErrorBody,
  type RateLimit,
  type RegistryErrorCode,
  type RegistryErrorFacts,
} from './errors.ts';
import { describeRateLimit, headerValue, parseRateLimit, parseWarnings } from './headers.ts';
import { queryParts, redactUrl, scrubSecrets } from './redact.ts';
import type { FollowedResponse } from './redirect.ts';
import { parseRetryAfter } from './retry.ts';
import type { CallOptions, CredentialSource } from './types.ts';

export interface OperationContext {
  /** Names the operation: `resolve 127.0.0.1:5000/library/nginx:1.25`. */
  readonly description: string;
  readonly facts: RegistryErrorFacts;
  /** Every secret the operation used (passwords, tokens): scrubbed from any text we show. */
  readonly secrets: Set<string>;
  /** Why credentials were withheld or could not be used, for the final message. */
  readonly notes: string[];
  /** `Warning: 299` texts seen during the operation. */
  readonly warnings: string[];
  /** The last rate-limit headers seen. */
  rateLimit?: RateLimit;
  readonly signal?: AbortSignal;
  /** The call's own credentials (see {@link CallOptions.credentials}), instead of the client's. */
  readonly credentials?: CredentialSource;
}

export function createContext(
  description: string,
  facts: RegistryErrorFacts,
  call: CallOptions = {},
): OperationContext {
  return {
    description,
    facts,
    secrets: new Set(),
    notes: [],
    warnings: [],
    ...(call.signal !== undefined && { signal: call.signal }),
    ...(call.credentials !== undefined && { credentials: call.credentials }),
  };
}

/** Records a response's warnings and rate limit; `onNewWarning` fires once per distinct text. */
export function observeResponse(
  ctx: OperationContext,
  res: FollowedResponse,
  onNewWarning: (host: string, text: string) => void,
): void {
  for (const text of parseWarnings(res.headers)) {
    if (!ctx.warnings.includes(text)) ctx.warnings.push(text);
    onNewWarning(res.url.host, text);
  }
  const rate = parseRateLimit(res.headers);
  if (rate !== undefined) ctx.rateLimit = rate;
}

const PHRASES: Partial<Record<RegistryErrorCode, string>> = {
  ErrManifestUnknown: 'manifest unknown',
  ErrBlobUnknown: 'blob unknown',
  ErrNameUnknown: 'repository unknown',
  ErrUnauthorized: 'authentication required or refused',
  ErrDenied: 'access denied',
  ErrTooManyRequests: 'too many requests (rate limited)',
  ErrRegistryUnavailable: 'registry unavailable',
  ErrUnsupported: 'operation not supported by the registry',
  ErrUnexpectedStatus: 'unexpected response',
};

/**
 * The typed error for a failed response: the registry's error body (at most 64 KiB read) mapped
 * to a code, with host, status, retries, rate limit and `Retry-After` in message and facts.
 */
export async function errorFromResponse(
  res: FollowedResponse,
  ctx: OperationContext,
  notFound: RegistryErrorCode,
  now: number,
): Promise<RegistryError> {
  const body = await readForMessage(res.body);
  // A redirect target's query is a credential (presigned URLs), and storage services echo the
  // request, path and query, in their error bodies.
  const secrets = res.redirects > 0 ? new Set([...ctx.secrets, ...queryParts(res.url)]) : ctx.secrets;
  const details = parseErrorBody(body, (t) => scrubSecrets(t, secrets));
  const code = codeForResponse(res.status, details, notFound);
  const rateLimit = parseRateLimit(res.headers) ?? ctx.rateLimit;
  const retryAfterMs = parseRetryAfter(headerValue(res.headers, 'retry-after'), now);

  let message = `${ctx.description}: ${PHRASES[code] ?? code} at ${res.url.host} (HTTP ${res.status}`;
  if (details.length > 0) message += `: ${describeDetails(details)}`;
  message += ')';
  if (res.crossOrigin) {
    message += ` after a redirect to ${redactUrl(res.url)}`;
    if (res.status === 401) message += "; the registry's credentials are never sent to another origin";
  }
  if (res.attempts > 1) message += `; gave up after ${res.attempts} attempts`;
  if (code === 'ErrTooManyRequests' || rateLimit?.remaining === 0) {
    const rate = describeRateLimit(rateLimit);
    if (rate !== '') message += `; rate limit: ${rate}`;
    if (retryAfterMs !== undefined) message += `; retry after ${Math.ceil(retryAfterMs / 1000)} s`;
  }
  if (ctx.notes.length > 0) message += ` (${ctx.notes.join('; ')})`;

  const facts: Record<string, unknown> = {
    ...ctx.facts,
    host: res.url.host,
    url: redactUrl(res.url),
    status: res.status,
    attempts: res.attempts,
  };
  if (details.length > 0) facts.registryErrors = details;
  if (rateLimit !== undefined) facts.rateLimit = rateLimit;
  if (retryAfterMs !== undefined) facts.retryAfterMs = retryAfterMs;
  return new RegistryError(code, scrubSecrets(message, secrets), facts as RegistryErrorFacts);
}
