import type { ScalarLocation, ScalarStyle } from './slots.ts';

/** Replace the scalar at `location` with `value`, written in the scalar's own style. */
export interface ScalarEdit {
  readonly location: ScalarLocation;
  readonly value: string;
}

/**
 * The new text of one scalar in the style it was written in. `original` is the scalar's current
 * text (`text.slice(start, end)`); block scalars keep their header (`|-`, `>-`, indentation
 * indicator, comment) and indentation, only the content line changes.
 */
export function renderScalar(style: ScalarStyle, original: string, value: string): string {
  switch (style) {
    case 'plain':
      return value;
    case 'single':
      return `'${value.replaceAll("'", "''")}'`;
    case 'double':
      // A JSON string is a valid YAML double-quoted scalar with the same value.
      return JSON.stringify(value);
    case 'literal':
    case 'folded':
      return renderBlockScalar(original, value);
  }
}

/**
 * A block scalar whose value is an image has one content line (anything else would put a
 * newline or a space into the value, which no image reference contains): replace that line's
 * text after its indentation, keep every other character.
 */
function renderBlockScalar(original: string, value: string): string {
  const headerEnd = original.indexOf('\n');
  if (headerEnd === -1) throw new Error(`block scalar without content: ${JSON.stringify(original)}`);
  const body = original.slice(headerEnd + 1);
  const match = /^([ \t]*)(\S[^\r\n]*?)([ \t]*)(\r?\n|$)/m.exec(body);
  if (match === null) throw new Error(`block scalar without a content line: ${JSON.stringify(original)}`);
  const contentStart = headerEnd + 1 + match.index + (match[1] ?? '').length;
  return original.slice(0, contentStart) + value + original.slice(contentStart + (match[2] ?? '').length);
}

/** Applies non-overlapping edits to `text`; edits of the same scalar (several aliases of one
 * anchor) must agree and are applied once. Every character outside the edits is kept. */
export function applyEdits(text: string, edits: readonly ScalarEdit[]): string {
  const byStart = new Map<number, ScalarEdit>();
  for (const edit of edits) {
    const other = byStart.get(edit.location.start);
    if (other !== undefined && other.value !== edit.value) {
      throw new Error(
        `conflicting rewrites of one scalar at offset ${edit.location.start}: "${other.value}" and "${edit.value}"`,
      );
    }
    byStart.set(edit.location.start, edit);
  }
  const sorted = [...byStart.values()].sort((a, b) => a.location.start - b.location.start);
  let out = '';
  let at = 0;
  for (const { location, value } of sorted) {
    if (location.start < at) throw new Error(`overlapping rewrites at offset ${location.start}`);
    out +=
      text.slice(at, location.start) + renderScalar(location.style, text.slice(location.start, location.end), value);
    at = location.end;
  }
  return out + text.slice(at);
}
