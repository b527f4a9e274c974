/** Reading response headers: single values, lengths, warnings, rate limits. Pure. */
import type { RateLimit } from './errors.ts';

/** Response headers as undici gives them: lowercase names, repeated headers as arrays. */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Every value of a header (repeated headers kept apart). */
export function headerValues(headers: ResponseHeaders, name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The single value of a header; undefined when absent or repeated with different values
 * (two `Content-Length`s or `Docker-Content-Digest`s are a smuggling signal, not a choice).
 */
export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const values = headerValues(headers, name);
  if (values.length === 0) return undefined;
  const first = values[0]?.trim();
  return values.every((v) => v.trim() === first) ? first : undefined;
}

/** `Content-Length` as a safe integer; undefined when absent or malformed. */
export function contentLength(headers: ResponseHeaders): number | undefined {
  const value = headerValue(headers, 'content-length');
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Most bytes of `Warning` headers read per response. */
export const MAX_WARNING_BYTES = 4096;

/**
 * The texts of `Warning: 299 - "text"` headers (RFC 7234 §5.5, as the distribution spec uses
 * them for deprecation notices). Other codes are ignored; at most 4096 bytes are read.
 */
export function parseWarnings(headers: ResponseHeaders): string[] {
  const out: string[] = [];
  let budget = MAX_WARNING_BYTES;
  for (const raw of headerValues(headers, 'warning')) {
    if (budget <= 0) break;
    const value = raw.slice(0, budget);
    budget -= raw.length;
    // A header may hold several comma-separated warnings; each is `code agent "text" [date]`.
    const re = /(\d{3})\s+\S+\s+"((?:[^"\\]|\\.)*)"/g;
    for (let m = re.exec(value); m !== null; m = re.exec(value)) {
      if (m[1] !== '299') continue;
      const text = (m[2] ?? '')
        .replace(/\\(.)/g, '$1')
        .replace(/[\u0000-\u001f\u007f]/g, ' ')
        .trim();
      if (text !== '' && !out.includes(text)) out.push(text);
    }
  }
  return out;
}

/**
 * Docker Hub's rate-limit headers: `ratelimit-limit: 100;w=21600`, `ratelimit-remaining:
 * 76;w=21600`, `docker-ratelimit-source`. Undefined when the response has none.
 */
export function parseRateLimit(headers: ResponseHeaders): RateLimit | undefined {
  const limit = parseQuota(headerValue(headers, 'ratelimit-limit'));
  const remaining = parseQuota(headerValue(headers, 'ratelimit-remaining'));
  const source = headerValue(headers, 'docker-ratelimit-source');
  if (limit === undefined && remaining === undefined) return undefined;
  const out: { limit?: number; remaining?: number; windowSeconds?: number; source?: string } = {};
  if (limit !== undefined) out.limit = limit.value;
  if (remaining !== undefined) out.remaining = remaining.value;
  const window = limit?.window ?? remaining?.window;
  if (window !== undefined) out.windowSeconds = window;
  if (source !== undefined && source.length <= 100) out.source = source;
  return out;
}

function parseQuota(value: string | undefined): { value: number; window?: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d{1,12})\s*(?:;\s*w\s*=\s*(\d{1,12}))?/.exec(value);
  if (!m) return undefined;
  return m[2] === undefined ? { value: Number(m[1]) } : { value: Number(m[1]), window: Number(m[2]) };
}

/** `100 of 100 pulls left per 21600 s` for messages. */
export function describeRateLimit(rate: RateLimit | undefined): string {
  if (rate === undefined) return '';
  const parts: string[] = [];
  if (rate.remaining !== undefined && rate.limit !== undefined)
    parts.push(`${rate.remaining} of ${rate.limit} requests left`);
  else if (rate.limit !== undefined) parts.push(`limit ${rate.limit} requests`);
  else if (rate.remaining !== undefined) parts.push(`${rate.remaining} requests left`);
  if (rate.windowSeconds !== undefined) parts.push(`per ${rate.windowSeconds} s`);
  return parts.join(' ');
}
