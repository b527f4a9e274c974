/** Small pieces of HTTP the server needs: `Range`, `Accept`, and query parameters. */
import { stripMediaTypeParameters } from '../oci/index.ts';

/** A byte range to serve, inclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * One `Range: bytes=…` against a blob of `size` bytes (RFC 9110 §14): a range to serve,
 * `'unsatisfiable'` (416), or undefined to serve the whole blob (no header, several ranges or a
 * malformed one, which a server may ignore).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d{0,16})\s*-\s*(\d{0,16})\s*$/i.exec(header);
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // A suffix: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Number(last);
  if (end < start) return undefined;
  return { start, end: Math.min(end, size - 1) };
}

/** Accept headers seen, parsed: a client sends the same one on every request. */
const acceptSeen = new Map<string, ReadonlySet<string> | undefined>();
const MAX_ACCEPT_SEEN = 256;

/** The media types an `Accept` header lists (parameters dropped); undefined = anything. */
export function acceptedTypes(header: string | string[] | undefined): ReadonlySet<string> | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text === undefined) return undefined;
  const seen = acceptSeen.get(text);
  if (seen !== undefined || acceptSeen.has(text)) return seen;
  const types = parseAccept(text);
  if (text.length <= 4096) {
    if (acceptSeen.size >= MAX_ACCEPT_SEEN) acceptSeen.clear();
    acceptSeen.set(text, types);
  }
  return types;
}

function parseAccept(text: string): ReadonlySet<string> | undefined {
  if (text.trim() === '') return undefined;
  const types = new Set<string>();
  for (const part of text.split(',').slice(0, 64)) {
    const type = stripMediaTypeParameters(part);
    if (type === '*/*' || type === 'application/*') return undefined;
    if (type !== '') types.add(type);
  }
  return types.size === 0 ? undefined : types;
}

/** A whole number query parameter within bounds, or undefined when absent. */
export function queryNumber(value: string | null, max: number): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value)) return Number.NaN;
  return Math.min(Number(value), max);
}
