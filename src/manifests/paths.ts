import { ManifestFileError } from './errors.ts';

/** One step of a field path: a map key, a list index, or every list item (`[*]`). */
export type PathSegment = { readonly key: string } | { readonly index: number } | { readonly each: true };

/** A concrete step (no wildcard), as found in a document. */
export type ConcreteSegment = { readonly key: string } | { readonly index: number };

/**
 * Parses a dotted field path: `spec.template.spec`, `spec.jobs[0].image`, `images[*]`,
 * `metadata.annotations["kimg.dev/image"]` (a quoted key may hold dots). Throws
 * ManifestFileError `ErrManifestPath` naming the path and the offset of the problem.
 */
export function parseFieldPath(path: string, what = 'field path'): PathSegment[] {
  const segments: PathSegment[] = [];
  const fail = (offset: number, reason: string): never => {
    throw new ManifestFileError('ErrManifestPath', `invalid ${what} "${path}": ${reason} (offset ${offset})`, {
      file: path,
    });
  };
  let i = 0;
  let expectKey = true;
  while (i < path.length) {
    const c = path[i];
    if (c === '[') {
      const close = path.indexOf(']', i);
      if (close === -1) fail(i, '"[" without "]"');
      const inner = path.slice(i + 1, close);
      if (inner === '*') segments.push({ each: true });
      else if (/^(0|[1-9][0-9]*)$/.test(inner)) segments.push({ index: Number(inner) });
      else if (/^"(?:[^"\\]|\\.)*"$/.test(inner)) segments.push({ key: JSON.parse(inner) as string });
      else fail(i, `"[${inner}]" is not [N], [*] or ["key"]`);
      i = close + 1;
      expectKey = false;
    } else if (c === '.') {
      if (expectKey) fail(i, 'empty key');
      i++;
      expectKey = true;
      if (i === path.length) fail(i, 'ends with "."');
    } else {
      if (!expectKey) fail(i, 'a key must follow "." ');
      let end = i;
      while (end < path.length && path[end] !== '.' && path[end] !== '[') end++;
      segments.push({ key: path.slice(i, end) });
      i = end;
      expectKey = false;
    }
  }
  if (segments.length === 0) fail(0, 'empty');
  return segments;
}

/** The path as reports print it: `spec.template.spec.containers[0].image`. Keys that would
 * not read back as one key are quoted: `metadata.annotations["kimg.dev/image"]`. */
export function formatFieldPath(segments: readonly ConcreteSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if ('index' in segment) out += `[${segment.index}]`;
    else if (/^[^.[\]"]+$/.test(segment.key)) out += out === '' ? segment.key : `.${segment.key}`;
    else out += `[${JSON.stringify(segment.key)}]`;
  }
  return out;
}
