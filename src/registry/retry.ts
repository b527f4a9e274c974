/**
 * Retry decisions, back-off and per-host admission (docs/semantics.md registry §8, R2, R4). Time comes from an
 * injectable Clock so tests never wait in wall time.
 */
import { Semaphore } from '../signals/index.ts';
import { errorCode } from './redact.ts';
import type { Clock } from './types.ts';

export interface RetryPolicy {
  /** Attempts per request, the first included (default 5). */
  readonly maxAttempts: number;
  /** First back-off (default 500 ms), doubled per attempt… */
  readonly baseDelayMs: number;
  /** …up to this (default 30 s). */
  readonly maxDelayMs: number;
  /** Longest `Retry-After` honoured (default 120 s); a longer one fails at once. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/**
 * Errors worth another try: the connection broke or timed out. Refused connections and DNS
 * failures are not retried (the next endpoint is tried instead), nor are TLS failures.
 */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

export function isRetryableTransportError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|ERR_OSSL_|HOSTNAME_MISMATCH)/;

export function isTlsError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && TLS_CODE.test(code);
}

/**
 * A TLS handshake answered with plain HTTP: OpenSSL reads the start of an HTTP response as a TLS
 * record of a wrong version, or of an impossible length. Go says "server gave HTTP response to
 * HTTPS client" here; this is that case.
 */
export function isPlainHttpAnswer(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  const message = err instanceof Error ? err.message : String(err);
  return (
    /WRONG_VERSION_NUMBER|HTTP_REQUEST/.test(code) ||
    ((code === 'EPROTO' || TLS_CODE.test(code)) &&
      /wrong version number|packet length too long|http request/i.test(message))
  );
}

/**
 * `Retry-After` as a delay in ms from `now`: delta-seconds or an HTTP-date. Undefined when
 * absent or malformed. A date in the past yields 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // IMF-fixdate, RFC 850 and asctime forms all parse with Date.parse; require a GMT/weekday shape
  // so arbitrary text is not taken as a date.
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Jittered exponential back-off for the given failed attempt (1-based): base × 2^(attempt-1),
 * capped, then scaled into [50 %, 100 %] so concurrent clients spread out.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number; readonly reason: string }
  | { readonly retry: false; readonly reason: string; readonly retryAfterMs?: number };

/**
 * Whether to retry after `attempt` (1-based) ended with a status or a transport error, and
 * how long to wait. `Retry-After` beyond the policy's maximum fails at once rather than block.
 */
export function decideRetry(
  outcome: { readonly status: number; readonly retryAfter?: string } | { readonly error: unknown },
  attempt: number,
  policy: RetryPolicy,
  now: number,
  random: () => number = Math.random,
): RetryDecision {
  if ('error' in outcome) {
    const reason = errorCode(outcome.error) ?? 'transport error';
    if (!isRetryableTransportError(outcome.error)) return { retry: false, reason };
    if (attempt >= policy.maxAttempts) return { retry: false, reason };
    return { retry: true, delayMs: backoffDelay(attempt, policy, random), reason };
  }
  const reason = `HTTP ${outcome.status}`;
  if (!isRetryableStatus(outcome.status)) return { retry: false, reason };
  const retryAfterMs = parseRetryAfter(outcome.retryAfter, now);
  if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs)
    return { retry: false, reason, retryAfterMs };
  if (attempt >= policy.maxAttempts) {
    return retryAfterMs === undefined ? { retry: false, reason } : { retry: false, reason, retryAfterMs };
  }
  const delayMs = Math.max(backoffDelay(attempt, policy, random), retryAfterMs ?? 0);
  return { retry: true, delayMs, reason };
}

/**
 * Admission to one host: at most `limit` requests in flight, and a back-off deadline shared by
 * every request to the host, so one 429 slows the whole pull instead of multiplying load.
 */
export class HostGate {
  private readonly slots: Semaphore;
  /** No request starts before this time (ms since epoch). */
  private notBefore = 0;

  constructor(
    readonly limit: number,
    private readonly clock: Clock,
  ) {
    this.slots = new Semaphore(limit);
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  get backoffUntil(): number {
    return this.notBefore;
  }

  /** Pushes the host's shared back-off deadline out to at least now + delayMs. */
  backOff(delayMs: number): void {
    this.notBefore = Math.max(this.notBefore, this.clock.now() + delayMs);
  }

  /** Waits out the shared back-off, then for a free slot; returns the slot's release function. */
  async enter(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      const wait = this.notBefore - this.clock.now();
      if (wait > 0) {
        await this.clock.sleep(wait, signal);
        continue;
      }
      signal?.throwIfAborted();
      const release = await this.slots.acquire(signal);
      // Another request may have pushed the back-off out while this one queued for a slot.
      if (this.notBefore <= this.clock.now()) return release;
      release();
    }
  }
}

/** Wall-clock time and timers. */
export { systemClock } from '../signals/index.ts';
