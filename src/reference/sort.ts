/** Go's `reference.Sort`: the order containerd lists an image's names in. */
import { Buffer } from 'node:buffer';
import { ReferenceFailure } from './errors.ts';
import { tryParseAnyReference } from './normalize.ts';
import type { ParseOptions, Reference } from './reference.ts';

/** Most specific first: name+tag+digest, name+tag, name+digest, name, digest. */
const RANK = { 'name+tag+digest': 1, 'name+tag': 2, 'name+digest': 3, name: 4, digest: 5 } as const;

/**
 * Parses each entry with parseAnyReference and returns the normalized strings, most specific
 * kind first and then in byte order, followed by the entries that do not parse (byte order).
 */
export function sort(references: readonly string[], options?: ParseOptions): string[] {
  const parsed: { rank: number; text: string }[] = [];
  const unparseable: string[] = [];
  for (const entry of references) {
    const result = tryParseAnyReference(entry, options);
    if (result instanceof ReferenceFailure) unparseable.push(entry);
    else parsed.push(ranked(result.value));
  }
  // Parsed strings are ASCII, where UTF-16 order is byte order; the rejects may be anything.
  parsed.sort((a, b) => a.rank - b.rank || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  unparseable.sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  return [...parsed.map((entry) => entry.text), ...unparseable];
}

function ranked(ref: Reference): { rank: number; text: string } {
  return { rank: RANK[ref.kind], text: ref.toString() };
}
