/**
 * Go's `encoding/base64` standard-alphabet decoders: `StdEncoding` (padded, exact padding) and
 * `RawStdEncoding` (no `=` at all). CR and LF are skipped anywhere; any other foreign character,
 * misplaced padding or a final group of one character is an error; unused low bits of the last
 * character are tolerated (Go's non-strict mode). Node's `Buffer.from(s, 'base64')` silently
 * skips garbage, so it cannot be used where Go rejects.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUES = new Map([...ALPHABET].map((c, i) => [c, i]));

/** The bytes, or the offset (in `input`) where Go would report `illegal base64 data at input byte N`. */
export type Base64Result =
  { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly offset: number };

export function decodeGoBase64(input: string, padded: boolean): Base64Result {
  const chars: string[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const c = input.charAt(i);
    if (c === '\r' || c === '\n') continue;
    chars.push(c);
    offsets.push(i);
  }
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (c !== '=' && !VALUES.has(c)) return { ok: false, offset: offsets[i] ?? input.length };
  }
  let end = chars.length;
  const firstPad = chars.indexOf('=');
  if (padded) {
    if (firstPad >= 0) {
      // Padding may only close the final group: "xx==" or "xxx=".
      const group = firstPad % 4;
      const padding = chars.length - firstPad;
      if (group < 2 || padding !== 4 - group || chars.slice(firstPad).some((c) => c !== '=')) {
        return { ok: false, offset: offsets[firstPad] ?? input.length };
      }
      end = firstPad;
    } else if (chars.length % 4 !== 0) {
      return { ok: false, offset: input.length };
    }
  } else {
    if (firstPad >= 0) return { ok: false, offset: offsets[firstPad] ?? input.length };
    if (chars.length % 4 === 1) return { ok: false, offset: input.length };
  }
  const bytes: number[] = [];
  let accumulator = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    accumulator = ((accumulator << 6) | (VALUES.get(chars[i] ?? '') ?? 0)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((accumulator >> bits) & 0xff);
    }
  }
  return { ok: true, bytes: Buffer.from(bytes) };
}

/** Go's `base64.StdEncoding.EncodeToString`. */
export function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
