/**
 * Go's `strings.ToLower`, as far as upstream's decisions depend on it. Go maps each rune through
 * `unicode.ToLower` (simple case mapping); JavaScript's `toLowerCase` uses the full mapping, which
 * differs for U+0130 (Go: "i"; JavaScript: "i̇"). Upstream only asks two questions, answered here
 * without building the lowered string on the hot path.
 */

const DOTTED_CAPITAL_I = 0x130; // İ: Go lowers it to ASCII "i"
const KELVIN_SIGN = 0x212a; // K: Go and JavaScript lower it to ASCII "k"

/**
 * Index of the first character in `s[start, end)` that Go's `strings.ToLower` would change, or
 * -1: `strings.ToLower(x) != x` is `firstChangedByLower(x) >= 0`.
 */
export function firstChangedByLower(s: string, start = 0, end = s.length): number {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c >= 0x41 && c <= 0x5a) return i;
      continue;
    }
    // Whether a code point has a lowercase mapping at all agrees between the simple mapping Go
    // uses and the full one JavaScript uses, so toLowerCase answers "would Go change it?".
    const cp = s.codePointAt(i) ?? c;
    const ch = String.fromCodePoint(cp);
    if (ch.toLowerCase() !== ch) return i;
    if (cp > 0xffff) i++;
  }
  return -1;
}

/**
 * `strings.ToLower(s)` when that can still match the ASCII-only grammar, else undefined; also
 * undefined when lowering changes nothing (a retry would fail the same way). Every character
 * must be ASCII or one of the two non-ASCII letters Go lowers to ASCII.
 */
export function lowerForGrammar(s: string): string | undefined {
  let changed = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) changed = true;
    else if (c === DOTTED_CAPITAL_I || c === KELVIN_SIGN) changed = true;
    else if (c >= 0x80) return undefined;
  }
  if (!changed) return undefined;
  // JavaScript lowers the Kelvin sign to "k" as Go does, but İ to two characters.
  return s.replaceAll('\u0130', 'i').toLowerCase();
}
