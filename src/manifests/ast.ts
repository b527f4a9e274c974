// Reading the yaml package's syntax tree the way Kubernetes reads the same text: aliases are
// followed and `<<` merge keys supply the keys a map does not set itself.
import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Scalar, type YAMLMap } from 'yaml';
import { aliasTarget } from '../yaml/index.ts';
import type { ConcreteSegment, PathSegment } from './paths.ts';

/** Deep enough for any real manifest; stops alias cycles, which YAML itself forbids anyway. */
const MAX_DEPTH = 64;

export function deref(node: unknown, doc: Document.Parsed, depth = 0): Node | undefined {
  if (depth > MAX_DEPTH) return undefined;
  if (isAlias(node)) return deref(aliasTarget(doc, node), doc, depth + 1);
  return isMap(node) || isSeq(node) || isScalar(node) ? node : undefined;
}

/** The value node of `key` in a map: its own pair first, then its merge sources in order. */
export function mapGet(node: unknown, key: string, doc: Document.Parsed, depth = 0): Node | undefined {
  const map = deref(node, doc);
  if (!isMap(map) || depth > MAX_DEPTH) return undefined;
  for (const pair of map.items) {
    if (isScalar(pair.key) && pair.key.value === key) return deref(pair.value, doc);
  }
  for (const source of mergeSources(map, doc)) {
    const found = mapGet(source, key, doc, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function mergeSources(map: YAMLMap, doc: Document.Parsed): Node[] {
  const sources: Node[] = [];
  for (const pair of map.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'symbol') continue;
    const value = deref(pair.value, doc);
    if (isSeq(value)) {
      for (const item of value.items) {
        const resolved = deref(item, doc);
        if (resolved !== undefined) sources.push(resolved);
      }
    } else if (value !== undefined) {
      sources.push(value);
    }
  }
  return sources;
}

/** A list's items in order (an item that is no node, e.g. a dangling alias, stays a hole so
 * that indexes match the text). */
export function seqItems(node: unknown, doc: Document.Parsed): (Node | undefined)[] | undefined {
  const seq = deref(node, doc);
  if (!isSeq(seq)) return undefined;
  return seq.items.map((item) => deref(item, doc));
}

/** Keys of a map that hold a value, own keys first, then merged ones not overridden. */
export function mapKeys(node: unknown, doc: Document.Parsed, depth = 0): string[] {
  const map = deref(node, doc);
  if (!isMap(map) || depth > MAX_DEPTH) return [];
  const keys: string[] = [];
  for (const pair of map.items) {
    if (isScalar(pair.key) && typeof pair.key.value === 'string') keys.push(pair.key.value);
  }
  for (const source of mergeSources(map, doc)) {
    for (const key of mapKeys(source, doc, depth + 1)) if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** The scalar node holding a string, or undefined for anything else (numbers, maps, null). */
export function stringScalar(node: unknown, doc: Document.Parsed): Scalar<string> | undefined {
  const resolved = deref(node, doc);
  return isScalar(resolved) && typeof resolved.value === 'string' ? (resolved as Scalar<string>) : undefined;
}

export function stringAt(node: unknown, key: string, doc: Document.Parsed): string | undefined {
  return stringScalar(mapGet(node, key, doc), doc)?.value;
}

/** Every node a path reaches (a `[*]` fans out), with the concrete path to it. */
export function* walkPath(
  node: unknown,
  segments: readonly PathSegment[],
  doc: Document.Parsed,
  at: readonly ConcreteSegment[] = [],
): Generator<{ node: Node; path: ConcreteSegment[] }> {
  const resolved = deref(node, doc);
  if (resolved === undefined) return;
  const [head, ...rest] = segments;
  if (head === undefined) {
    yield { node: resolved, path: [...at] };
    return;
  }
  if ('key' in head) {
    yield* walkPath(mapGet(resolved, head.key, doc), rest, doc, [...at, head]);
    return;
  }
  const items = seqItems(resolved, doc);
  if (items === undefined) return;
  if ('index' in head) {
    yield* walkPath(items[head.index], rest, doc, [...at, head]);
    return;
  }
  for (const [index, item] of items.entries()) yield* walkPath(item, rest, doc, [...at, { index }]);
}
