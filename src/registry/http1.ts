/**
 * HTTP/1.1 response framing for the lean blob reader (lean-http.ts): the status line, header
 * and trailer lines, Content-Length / Transfer-Encoding, chunk-size lines. Pure functions.
 *
 * The rule is to refuse whatever Node's own parser (llhttp, strict mode, as in
 * nodejs/llhttp src/llhttp/http.ts) refuses, and a little more: a reader of hostile bytes that
 * accepts what the reference parser refuses is a smuggling gap. Where this is stricter than
 * llhttp (only `chunked` as a transfer coding, no HTTP/2.0 status lines, no 101, status codes
 * 100–599, no control characters in the reason phrase, no empty lines before a status line), the
 * differential test in lean-http.fuzz.test.ts lists it.
 */

/** Error codes follow llhttp's (`HPE_*`) or undici's (`UND_ERR_*`) so retry logic treats them alike. */
export class LeanHttpError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LeanHttpError';
  }
}

export type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

export interface ParsedHead {
  readonly version: '1.0' | '1.1';
  readonly statusCode: number;
  /** Lowercase names, repeated headers as arrays (as undici gives them). */
  readonly headers: Record<string, string | string[]>;
  readonly framing: Framing;
}

/** RFC 9110 token characters: header names, chunk extension names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value as llhttp accepts it: HTAB, SP, VCHAR, obs-text; no CR, LF, NUL or other controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A reason phrase: the same characters as a value (llhttp allows controls here; this does not). */
const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** llhttp: optional leading whitespace, digits, trailing spaces (tabs only from llhttp 9.4 on: refused). */
const CONTENT_LENGTH = /^[ \t]*([0-9]+) *$/;
/**
 * A chunk size then extensions as llhttp's strict mode takes them: no whitespace, a value is a
 * token, a quoted string, or a token followed by a quoted string; names may be empty, but the
 * line may not end in `;` (checked apart).
 */
const CHUNK_SIZE_LINE =
  /^([0-9A-Fa-f]+)((?:;[!#$%&'*+.^_`|~0-9A-Za-z-]*(?:=[!#$%&'*+.^_`|~0-9A-Za-z-]*(?:"(?:[\t !#-[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*")?)?)*)$/;

/** The bytes `\r\n\r\n` that end a head. */
export const HEAD_END = Buffer.from('\r\n\r\n');

/** One header (or trailer) line: `name: value` with the value's surrounding SP/HTAB removed. */
export function parseFieldLine(line: string, what: 'header' | 'trailer'): { name: string; raw: string; value: string } {
  const colon = line.indexOf(':');
  const name = colon > 0 ? line.slice(0, colon) : '';
  if (!TOKEN.test(name)) throw new LeanHttpError('HPE_INVALID_HEADER_TOKEN', `invalid ${what} name`);
  const raw = line.slice(colon + 1);
  if (!FIELD_VALUE.test(raw))
    throw new LeanHttpError('HPE_INVALID_HEADER_TOKEN', `invalid character in the value of ${what} ${name}`);
  return { name: name.toLowerCase(), raw, value: raw.replace(/^[ \t]+|[ \t]+$/g, '') };
}

/**
 * Parses one response head (status line and header lines, without the final empty line, as
 * latin1) and decides its body's framing. Throws {@link LeanHttpError} for anything llhttp
 * would refuse and for the stricter cases listed in the module comment.
 */
export function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const statusLine = lines[0] ?? '';
  const statusCode = parseStatusLine(statusLine);
  const headers: Record<string, string | string[]> = {};
  let contentLength: number | undefined;
  let chunked: boolean | undefined;
  for (const line of lines.slice(1)) {
    // A bare CR or LF inside a line: llhttp wants CRLF everywhere.
    if (/[\r\n]/.test(line)) throw new LeanHttpError('HPE_CR_EXPECTED', 'response head has a bare CR or LF');
    const { name, raw, value } = parseFieldLine(line, 'header');
    if (name === 'content-length') {
      if (contentLength !== undefined)
        throw new LeanHttpError('HPE_UNEXPECTED_CONTENT_LENGTH', 'response has two Content-Length headers');
      const digits = CONTENT_LENGTH.exec(raw)?.[1];
      const n = digits === undefined ? Number.NaN : Number(digits);
      if (!Number.isSafeInteger(n)) throw new LeanHttpError('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length');
      contentLength = n;
    } else if (name === 'transfer-encoding') {
      // Only a single plain `chunked` is spoken here (llhttp also takes repeated or other codings);
      // llhttp reads `chunked` followed by a tab as another coding, so that is refused too.
      if (chunked !== undefined || !/^[ \t]*chunked *$/i.test(raw))
        throw new LeanHttpError('UND_ERR_INVALID_ARG', `unsupported Transfer-Encoding ${JSON.stringify(value)}`);
      chunked = true;
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  // Both framings at once is the classic smuggling shape; llhttp refuses it for every status.
  if (chunked === true && contentLength !== undefined)
    throw new LeanHttpError('HPE_INVALID_TRANSFER_ENCODING', 'response has both Transfer-Encoding and Content-Length');
  let framing: Framing;
  if (statusCode < 200 || statusCode === 204 || statusCode === 304) framing = { kind: 'length', remaining: 0 };
  else if (chunked === true) framing = { kind: 'chunked' };
  else if (contentLength !== undefined) framing = { kind: 'length', remaining: contentLength };
  else framing = { kind: 'close' };
  return { version: statusLine.startsWith('HTTP/1.0') ? '1.0' : '1.1', statusCode, headers, framing };
}

/** The status code of a status line; the errors say which rule a refused line broke. */
function parseStatusLine(line: string): number {
  const status = STATUS_LINE.exec(line);
  if (status !== null) return Number(status[1]);
  if (line === '' || line.startsWith('\r') || line.startsWith('\n'))
    throw new LeanHttpError('HPE_INVALID_CONSTANT', 'empty line before the status line');
  if (line.includes('\n')) throw new LeanHttpError('HPE_CR_EXPECTED', 'response head has a bare LF');
  const loose = /^HTTP\/(\d\.\d) (\d{3})(?:$| (.*))/s.exec(line);
  if (loose === null) throw new LeanHttpError('HPE_INVALID_CONSTANT', 'not an HTTP/1.x status line');
  if (loose[1] !== '1.0' && loose[1] !== '1.1')
    throw new LeanHttpError('HPE_INVALID_VERSION', `HTTP version ${loose[1]} not spoken here`);
  // llhttp takes CR CR as the end of a status line; a CR belongs before an LF only.
  if (line.includes('\r')) throw new LeanHttpError('HPE_STRICT', 'bare CR in the status line');
  const code = Number(loose[2]);
  if (code < 100 || code > 599) throw new LeanHttpError('HPE_INVALID_STATUS', `status code ${code} outside 100–599`);
  throw new LeanHttpError('HPE_INVALID_STATUS', 'control character in the reason phrase');
}

/** The size in a chunk-size line (without its CRLF); extensions are checked and dropped. */
export function parseChunkSize(line: string): number {
  const match = line.endsWith(';') ? null : CHUNK_SIZE_LINE.exec(line);
  const size = match === null ? Number.NaN : Number.parseInt(match[1] as string, 16);
  if (!Number.isSafeInteger(size))
    throw new LeanHttpError('HPE_INVALID_CHUNK_SIZE', 'chunked body: invalid chunk size line');
  return size;
}

/** Checks one trailer line (without its CRLF); trailers are otherwise ignored. */
export function checkTrailerLine(line: string): void {
  const { name } = parseFieldLine(line, 'trailer');
  // llhttp refuses a Content-Length in the trailers of a chunked body.
  if (name === 'content-length')
    throw new LeanHttpError('HPE_INVALID_CONTENT_LENGTH', 'chunked body: Content-Length in the trailers');
}
