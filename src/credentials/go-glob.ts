/**
 * Go's `path.Match` (what `filepath.Match` is on Linux), which the kubelet applies to each host
 * label of a keyring key. `*` is any run (also empty) without `/`, `?` one character, `[...]`
 * classes with `^` negation and ranges, `\` escapes. Returns undefined for a malformed pattern,
 * which the kubelet treats as "no match".
 */
export function goPathMatch(patternText: string, nameText: string): boolean | undefined {
  let pattern = Array.from(patternText);
  let name = Array.from(nameText);
  chunks: while (pattern.length > 0) {
    const scanned = scanChunk(pattern);
    pattern = scanned.rest;
    if (scanned.star && scanned.chunk.length === 0) return !name.includes('/');
    const first = matchChunk(scanned.chunk, name);
    if (first.ok && (first.rest.length === 0 || pattern.length > 0)) {
      name = first.rest;
      continue;
    }
    if (first.bad) return undefined;
    if (scanned.star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const later = matchChunk(scanned.chunk, name.slice(i + 1));
        if (later.ok) {
          if (pattern.length === 0 && later.rest.length > 0) continue;
          name = later.rest;
          continue chunks;
        }
        if (later.bad) return undefined;
      }
    }
    // Go reports a malformed remainder even when the match has already failed.
    while (pattern.length > 0) {
      const next = scanChunk(pattern);
      pattern = next.rest;
      if (matchChunk(next.chunk, []).bad) return undefined;
    }
    return false;
  }
  return name.length === 0;
}

interface Scanned {
  readonly star: boolean;
  readonly chunk: string[];
  readonly rest: string[];
}

function scanChunk(input: string[]): Scanned {
  let start = 0;
  while (start < input.length && input[start] === '*') start++;
  const pattern = input.slice(start);
  let inRange = false;
  let i = 0;
  for (; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (i + 1 < pattern.length) i++;
    } else if (c === '[') {
      inRange = true;
    } else if (c === ']') {
      inRange = false;
    } else if (c === '*' && !inRange) {
      break;
    }
  }
  return { star: start > 0, chunk: pattern.slice(0, i), rest: pattern.slice(i) };
}

interface ChunkResult {
  readonly ok: boolean;
  readonly bad: boolean;
  readonly rest: string[];
}

const BAD: ChunkResult = { ok: false, bad: true, rest: [] };

function matchChunk(chunkIn: string[], nameIn: string[]): ChunkResult {
  let chunk = chunkIn;
  let s = nameIn;
  // Once failed, Go keeps walking the chunk only to validate its syntax.
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0];
    if (c === '[') {
      let rune = 0;
      if (!failed) {
        rune = codePoint(s[0]);
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let match = false;
      let ranges = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && ranges > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEscaped(chunk);
        if (lo === undefined) return BAD;
        chunk = lo.rest;
        let hi = lo.rune;
        if (chunk[0] === '-') {
          const high = getEscaped(chunk.slice(1));
          if (high === undefined) return BAD;
          hi = high.rune;
          chunk = high.rest;
        }
        if (lo.rune <= rune && rune <= hi) match = true;
        ranges++;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) return BAD;
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? { ok: false, bad: false, rest: [] } : { ok: true, bad: false, rest: s };
}

function getEscaped(chunkIn: string[]): { rune: number; rest: string[] } | undefined {
  let chunk = chunkIn;
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return undefined;
  if (chunk[0] === '\\') {
    chunk = chunk.slice(1);
    if (chunk.length === 0) return undefined;
  }
  const rest = chunk.slice(1);
  if (rest.length === 0) return undefined;
  return { rune: codePoint(chunk[0]), rest };
}

function codePoint(c: string | undefined): number {
  return c === undefined ? 0 : (c.codePointAt(0) ?? 0);
}
