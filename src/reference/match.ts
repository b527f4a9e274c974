/**
 * Go's `path.Match`, transcribed (docs/semantics.md references §3: "implement exactly, do not use a glob library"). Go
 * matches UTF-8 bytes, decoding a rune only for `?` and `[…]`, and after `*` it retries at every
 * byte, even inside a rune; so we match the UTF-8 encodings, and the edge cases agree.
 */
import { Buffer } from 'node:buffer';
import { ReferenceFailure } from './errors.ts';
import { familiarName, familiarString } from './normalize.ts';
import type { Reference } from './reference.ts';

const STAR = 0x2a;
const QUESTION = 0x3f;
const BACKSLASH = 0x5c;
const LEFT_BRACKET = 0x5b;
const RIGHT_BRACKET = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;
const SLASH = 0x2f;
const RUNE_ERROR = 0xfffd;

/** Go's path.Match: true/false, or the byte offset in the pattern where its syntax is bad. */
export type MatchOutcome = boolean | { readonly badPatternAt: number };

export function pathMatch(pattern: string, name: string): MatchOutcome {
  return matchBytes(Buffer.from(pattern, 'utf8'), Buffer.from(name, 'utf8'));
}

function matchBytes(p: Uint8Array, n: Uint8Array): MatchOutcome {
  let pi = 0;
  let ni = 0;
  pattern: while (pi < p.length) {
    const star = p[pi] === STAR;
    while (pi < p.length && p[pi] === STAR) pi++;
    const chunkStart = pi;
    pi = chunkEnd(p, pi);
    if (star && chunkStart === pi) {
      // A trailing * matches the rest of the name unless it has a /.
      return n.indexOf(SLASH, ni) < 0;
    }
    // Match at the current position; if this is the last chunk, it must consume the whole name.
    let rest = matchChunk(p, chunkStart, pi, n, ni);
    if (rest >= 0 && (rest === n.length || pi < p.length)) {
      ni = rest;
      continue;
    }
    if (rest < -1) return { badPatternAt: -rest - 2 };
    if (star) {
      // Retry one byte further on each time; * cannot skip a /.
      for (let i = ni; i < n.length && n[i] !== SLASH; i++) {
        rest = matchChunk(p, chunkStart, pi, n, i + 1);
        if (rest >= 0) {
          if (pi === p.length && rest < n.length) continue;
          ni = rest;
          continue pattern;
        }
        if (rest < -1) return { badPatternAt: -rest - 2 };
      }
    }
    // Before answering false, check the rest of the pattern is well-formed, as Go does.
    while (pi < p.length) {
      while (pi < p.length && p[pi] === STAR) pi++;
      const start = pi;
      pi = chunkEnd(p, pi);
      const check = matchChunk(p, start, pi, n, n.length);
      if (check < -1) return { badPatternAt: -check - 2 };
    }
    return false;
  }
  return ni === n.length;
}

/** Go's scanChunk: the end of the chunk that starts at `start` (up to an unbracketed `*`). */
function chunkEnd(p: Uint8Array, start: number): number {
  let inRange = false;
  let i = start;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === BACKSLASH) {
      if (i + 1 < p.length) i++;
    } else if (c === LEFT_BRACKET) {
      inRange = true;
    } else if (c === RIGHT_BRACKET) {
      inRange = false;
    } else if (c === STAR && !inRange) {
      break;
    }
  }
  return i;
}

/**
 * Go's matchChunk over `p[start, end)` against `n` from `ni`. Returns the index in `n` after the
 * match, -1 for no match, or -(offset + 2) for a syntax error at pattern byte `offset`. Once the
 * match has failed Go keeps parsing the chunk, to report syntax errors anyway; so do we.
 */
function matchChunk(p: Uint8Array, start: number, end: number, n: Uint8Array, ni: number): number {
  let failed = false;
  let c = start;
  let s = ni;
  while (c < end) {
    if (!failed && s >= n.length) failed = true;
    const pc = p[c];
    if (pc === LEFT_BRACKET) {
      let r = 0;
      if (!failed) {
        r = decodeRune(n, s);
        s += runeSize;
      }
      c++;
      let negated = false;
      if (c < end && p[c] === CARET) {
        negated = true;
        c++;
      }
      let matched = false;
      let ranges = 0;
      for (;;) {
        if (c < end && p[c] === RIGHT_BRACKET && ranges > 0) {
          c++;
          break;
        }
        const lo = classChar(p, c, end);
        if (lo < 0) return lo;
        c = escEnd;
        let hi = lo;
        if (p[c] === DASH) {
          hi = classChar(p, c + 1, end);
          if (hi < 0) return hi;
          c = escEnd;
        }
        if (lo <= r && r <= hi) matched = true;
        ranges++;
      }
      if (matched === negated) failed = true;
    } else if (pc === QUESTION) {
      if (!failed) {
        if (n[s] === SLASH) failed = true;
        decodeRune(n, s);
        s += runeSize;
      }
      c++;
    } else {
      if (pc === BACKSLASH) {
        c++;
        if (c >= end) return -(c - 1) - 2;
      }
      if (!failed) {
        if (p[c] !== n[s]) failed = true;
        s++;
      }
      c++;
    }
  }
  return failed ? -1 : s;
}

// Out-parameters of decodeRune and classChar, to keep the matcher free of allocations.
let runeSize = 0;
let escEnd = 0;

/**
 * Go's getEsc: one (possibly escaped) character of a class at `c`, as a rune, with `escEnd` set
 * past it; or -(offset + 2) when the class is malformed there (`-` or `]` where a character
 * must be, a dangling `\`, or the pattern ending inside the class).
 */
function classChar(p: Uint8Array, c: number, end: number): number {
  if (c >= end || p[c] === DASH || p[c] === RIGHT_BRACKET) return -Math.min(c, end) - 2;
  if (p[c] === BACKSLASH) {
    c++;
    if (c >= end) return -c - 2;
  }
  const r = decodeRune(p, c);
  if (r === RUNE_ERROR && runeSize === 1) return -c - 2;
  escEnd = c + runeSize;
  if (escEnd >= end) return -end - 2;
  return r;
}

/** Go's utf8.DecodeRune at `i` (setting `runeSize`); an invalid sequence is U+FFFD of size 1. */
function decodeRune(b: Uint8Array, i: number): number {
  if (i >= b.length) {
    runeSize = 0;
    return RUNE_ERROR;
  }
  runeSize = 1;
  const b0 = b[i] ?? 0;
  if (b0 < 0x80) return b0;
  let more: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [more, min] = [1, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [more, min] = [2, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [more, min] = [3, 0x10000];
  else return RUNE_ERROR;
  if (i + more >= b.length) return RUNE_ERROR;
  let r = b0 & (0x7f >> (more + 1));
  for (let k = 1; k <= more; k++) {
    const bk = b[i + k] ?? 0;
    if ((bk & 0xc0) !== 0x80) return RUNE_ERROR;
    r = (r << 6) | (bk & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid for Go too.
  if (r < min || (r >= 0xd800 && r <= 0xdfff) || r > 0x10ffff) return RUNE_ERROR;
  runeSize = more + 1;
  return r;
}

/**
 * Whether `pattern` (Go path.Match syntax) matches the familiar string of `ref`, or for a named
 * reference also its familiar name, so `library/*` matches `ubuntu:22.04` through its name.
 * Throws InvalidReferenceError `path.ErrBadPattern` when the pattern is malformed, even if the
 * match had already failed before the bad part.
 */
export function familiarMatch(pattern: string, ref: Reference): boolean {
  const first = pathMatch(pattern, familiarString(ref));
  if (typeof first === 'object') {
    throw new ReferenceFailure('path.ErrBadPattern', pattern, utf16Offset(pattern, first.badPatternAt), 'pattern')
      .error;
  }
  if (first || ref.kind === 'digest') return first;
  return pathMatch(pattern, familiarName(ref)) === true;
}

/** The UTF-16 index in `s` of UTF-8 byte `offset`. */
function utf16Offset(s: string, offset: number): number {
  return Buffer.from(s, 'utf8').subarray(0, offset).toString('utf8').length;
}
