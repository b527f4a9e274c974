/**
 * A single-pass scanner for the reference grammar (docs/semantics.md references §1). Upstream uses regular expressions;
 * we scan by hand so every input, however hostile, costs time linear in its length (docs/semantics.md references §8), and
 * so a failure can say which character was wrong.
 *
 * Every function reads UTF-16 code units. The grammar is ASCII-only, so any other code unit
 * simply fails the character tests, and `.length` equals Go's byte length for every valid name.
 */

/** What a failed scan found wrong; errors.ts turns it into words. */
export type Problem =
  | 'component' // a path component must start here
  | 'separator' // a separator must be followed by a lowercase letter or digit
  | 'name-end' // a character no repository name may contain
  | 'tag' // a tag must start here
  | 'tag-char' // a character no tag may contain
  | 'tag-length'
  | 'digest' // the digest grammar failed here
  | 'digest-short';

const DASH = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const AT = 0x40;
const LEFT_BRACKET = 0x5b;
const RIGHT_BRACKET = 0x5d;
const UNDERSCORE = 0x5f;

/** Longest tag the grammar allows: `[\w][\w.-]{0,127}`. */
const TAG_MAX_LENGTH = 128;
/** Fewest hex digits the reference grammar accepts in a digest (a pre-filter; see digest.ts). */
const DIGEST_MIN_HEX = 32;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isLowerAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

function isAlnum(c: number): boolean {
  return isLowerAlnum(c) || (c >= 0x41 && c <= 0x5a);
}

/** `\w` in RE2 without the Unicode flag. */
function isWordChar(c: number): boolean {
  return isAlnum(c) || c === UNDERSCORE;
}

function isTagChar(c: number): boolean {
  return isWordChar(c) || c === DOT || c === DASH;
}

/** `[[:xdigit:]]`. */
function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function isIpv6Char(c: number): boolean {
  return isHex(c) || c === COLON;
}

/**
 * The outcome of one scan. On success the `*End`/`*Start` indices locate the parts; on failure
 * `offset` is the first character that cannot be part of a match and `problem` says why.
 */
export class Scan {
  /** Index of the path's first character: 0, or just past the `/` that ends the domain. */
  pathStart = 0;
  /** Index just past the repository name. */
  nameEnd = -1;
  /** Index of the tag's first character (after `:`), or -1. */
  tagStart = -1;
  /** Index of the digest's first character (after `@`), or -1. */
  digestStart = -1;
  offset = -1;
  problem: Problem = 'name-end';

  get ok(): boolean {
    return this.offset < 0;
  }

  fail(offset: number, problem: Problem): false {
    this.offset = offset;
    this.problem = problem;
    return false;
  }
}

/**
 * Whether `s[start, end)` is a whole `domainAndPort`: a DNS-ish name (components of letters,
 * digits and inner dashes, joined by dots; uppercase allowed) or a bracketed IPv6 address of hex
 * digits and colons, then an optional `:port` of any number of digits.
 */
export function isDomainAndPort(s: string, start: number, end: number): boolean {
  let i = start;
  if (i >= end) return false;
  if (s.charCodeAt(i) === LEFT_BRACKET) {
    i++;
    const first = i;
    while (i < end && isIpv6Char(s.charCodeAt(i))) i++;
    if (i === first || i >= end || s.charCodeAt(i) !== RIGHT_BRACKET) return false;
    i++;
  } else {
    for (;;) {
      if (i >= end || !isAlnum(s.charCodeAt(i))) return false;
      i++;
      while (i < end) {
        const c = s.charCodeAt(i);
        if (!isAlnum(c) && c !== DASH) break;
        i++;
      }
      // A component may hold dashes but neither begin nor end with one.
      if (s.charCodeAt(i - 1) === DASH) return false;
      if (i < end && s.charCodeAt(i) === DOT) {
        i++;
        continue;
      }
      break;
    }
  }
  if (i === end) return true;
  if (s.charCodeAt(i) !== COLON) return false;
  i++;
  if (i >= end) return false;
  while (i < end) {
    if (!isDigit(s.charCodeAt(i))) return false;
    i++;
  }
  return true;
}

/**
 * Scans a `remote-name` (path components joined by `/`) from `start` and returns the index of
 * the first character past it, which the caller must judge (`:`, `@`, end, or junk); -1 when a
 * component or separator is malformed. Each separator is consumed whole (`.`, `_`, `__`, one or
 * more `-`) and must be followed by a letter or digit, so no text can be split two ways.
 */
export function scanRemoteName(scan: Scan, s: string, start: number): number {
  const n = s.length;
  let i = start;
  for (;;) {
    if (i >= n || !isLowerAlnum(s.charCodeAt(i))) {
      scan.fail(i, 'component');
      return -1;
    }
    i++;
    while (i < n && isLowerAlnum(s.charCodeAt(i))) i++;
    if (i >= n) return i;
    const c = s.charCodeAt(i);
    if (c === SLASH) {
      i++;
      continue;
    }
    if (c === DOT) {
      i++;
    } else if (c === UNDERSCORE) {
      i++;
      if (i < n && s.charCodeAt(i) === UNDERSCORE) i++;
    } else if (c === DASH) {
      i++;
      while (i < n && s.charCodeAt(i) === DASH) i++;
    } else {
      return i;
    }
    if (i >= n || !isLowerAlnum(s.charCodeAt(i))) {
      scan.fail(i, 'separator');
      return -1;
    }
  }
}

/**
 * Scans a tag from `start` and returns the index past it (the caller judges what follows), or
 * -1 when no tag starts there or it is longer than 128 characters.
 */
export function scanTag(scan: Scan, s: string, start: number): number {
  const n = s.length;
  if (start >= n || !isWordChar(s.charCodeAt(start))) {
    scan.fail(start, 'tag');
    return -1;
  }
  let i = start + 1;
  while (i < n && isTagChar(s.charCodeAt(i))) i++;
  if (i - start > TAG_MAX_LENGTH) {
    scan.fail(start + TAG_MAX_LENGTH, 'tag-length');
    return -1;
  }
  return i;
}

/**
 * Whether `s[start..]` is, to its end, a digest by the reference grammar:
 * `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
 */
export function scanDigest(scan: Scan, s: string, start: number): boolean {
  const n = s.length;
  let i = start;
  for (;;) {
    if (i >= n || !isLetter(s.charCodeAt(i))) return scan.fail(i, 'digest');
    i++;
    while (i < n && isAlnum(s.charCodeAt(i))) i++;
    if (i >= n) return scan.fail(i, 'digest');
    const c = s.charCodeAt(i);
    if (c === DASH || c === UNDERSCORE || c === 0x2b || c === DOT) {
      i++;
      continue;
    }
    if (c !== COLON) return scan.fail(i, 'digest');
    break;
  }
  const hexStart = ++i;
  while (i < n && isHex(s.charCodeAt(i))) i++;
  if (i < n) return scan.fail(i, 'digest');
  if (i - hexStart < DIGEST_MIN_HEX) return scan.fail(n, 'digest-short');
  return true;
}

/**
 * Scans `^(name)(?::(tag))?(?:@(digest))?$`. Because no part after the name may contain `/`,
 * and no path component may contain `:` or `@`, the group boundaries are unique: RE2's
 * leftmost-first choice has nothing to choose between, except the domain (see pathStartOf).
 *
 * With `pathStart` given, the name is taken to have no domain of its own and to start there
 * (the caller has settled the domain, as normalization does for Docker Hub).
 */
export function scanReference(s: string, pathStart = pathStartOf(s)): Scan {
  const scan = new Scan();
  const n = s.length;
  scan.pathStart = pathStart;
  let i = scanRemoteName(scan, s, pathStart);
  if (i < 0) return scan;
  scan.nameEnd = i;
  if (i < n && s.charCodeAt(i) === COLON) {
    scan.tagStart = i + 1;
    i = scanTag(scan, s, i + 1);
    if (i < 0) return scan;
    if (i < n && s.charCodeAt(i) !== AT) {
      scan.fail(i, 'tag-char');
      return scan;
    }
  }
  if (i < n && s.charCodeAt(i) === AT) {
    scan.digestStart = i + 1;
    scanDigest(scan, s, i + 1);
    return scan;
  }
  if (i < n) scan.fail(i, 'name-end');
  return scan;
}

/**
 * Where the remote name starts in a name that begins at 0: just past the first `/` when the text
 * before it is a whole `domainAndPort`, else 0. This is RE2's leftmost-first choice for the
 * greedy `(?:(domainAndPort)/)?`: taking the domain is tried first, and it succeeds exactly when
 * the first component is domain-shaped, because a `domainAndPort` contains no `/` and the rest
 * must match `remote-name` either way. So `foo/bar` has domain `foo`; `test_com/foo` has none.
 */
export function pathStartOf(s: string): number {
  const slash = s.indexOf('/');
  if (slash > 0 && isDomainAndPort(s, 0, slash)) return slash + 1;
  return 0;
}

/** `^(?:(domainAndPort)/)?(remote-name)$` as [domain, path], or undefined. */
export function splitAnchoredName(s: string): [domain: string, path: string] | undefined {
  const pathStart = pathStartOf(s);
  const scan = new Scan();
  if (scanRemoteName(scan, s, pathStart) !== s.length) return undefined;
  return pathStart === 0 ? ['', s] : [s.slice(0, pathStart - 1), s.slice(pathStart)];
}

/** Whether `s` is wholly a tag; on failure `scan` says where. */
export function scanWholeTag(scan: Scan, s: string): boolean {
  const end = scanTag(scan, s, 0);
  if (end < 0) return false;
  if (end < s.length) return scan.fail(end, 'tag-char');
  return true;
}

/** `^[a-f0-9]{64}$`: an image ID, which Docker refuses as a repository name. */
export function isIdentifier(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}
