// KRM functions (kpt `fn eval --exec`, kustomize): a ResourceList comes in on standard input and
// goes out on standard output, with what the function found in `results`.
import { isMap, isSeq, stringify, type Document } from 'yaml';
import { ManifestSource } from './document.ts';
import { ManifestFileError } from './errors.ts';
import type { ImageSlot } from './slots.ts';

export type KrmSeverity = 'error' | 'warning' | 'info';

/** A `results` entry (kpt's `framework.Result`). */
export interface KrmResult {
  readonly message: string;
  readonly severity: KrmSeverity;
  readonly resourceRef?: {
    readonly apiVersion: string;
    readonly kind: string;
    readonly name?: string;
    readonly namespace?: string;
  };
  readonly field?: { readonly path: string };
  readonly file?: { readonly path: string; readonly index?: number };
  readonly tags?: Readonly<Record<string, string>>;
}

/** Parses a ResourceList; throws ManifestFileError `ErrManifestSyntax` when the input is not one. */
export function readResourceList(text: string, file = '-'): ManifestSource {
  const source = ManifestSource.parse(file, text);
  const docs = source.documents.filter((d) => d.contents !== null);
  const doc = docs[0];
  const kind: unknown = doc !== undefined && isMap(doc.contents) ? doc.contents.get('kind') : undefined;
  if (docs.length !== 1 || kind !== 'ResourceList') {
    throw new ManifestFileError(
      'ErrManifestSyntax',
      `${file}: a KRM function reads one ResourceList document (kind: ResourceList) on standard input`,
      { file },
    );
  }
  return source;
}

/** A result about one image slot, placed on its resource, field and file as kpt shows them. */
export function slotResult(slot: ImageSlot, message: string, severity: KrmSeverity, rule?: string): KrmResult {
  const object = slot.object;
  const annotations = object?.annotations ?? {};
  const path = annotations['internal.config.kubernetes.io/path'] ?? annotations['config.kubernetes.io/path'];
  const index = annotations['internal.config.kubernetes.io/index'] ?? annotations['config.kubernetes.io/index'];
  return {
    message,
    severity,
    ...(object !== undefined && {
      resourceRef: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        ...(object.name !== undefined && { name: object.name }),
        ...(object.namespace !== undefined && { namespace: object.namespace }),
      },
    }),
    field: { path: slot.fieldPath },
    ...(path !== undefined && {
      file: { path, ...(index !== undefined && /^\d+$/.test(index) && { index: Number(index) }) },
    }),
    ...(rule !== undefined && { tags: { rule, image: slot.image } }),
  };
}

/**
 * The ResourceList text with `results` added. Without new results the text is returned as it
 * is, byte for byte; otherwise a `results:` key is inserted after the list's last key and every
 * other byte stays (re-serializing would move comments, which kpt then duplicates). Only when
 * results from earlier functions are there already is the list re-serialized to append to them.
 */
export function withResults(text: string, results: readonly KrmResult[]): string {
  if (results.length === 0) return text;
  const source = ManifestSource.parse('-', text);
  const doc = source.documents.find((d) => d.contents !== null);
  const map = doc?.contents;
  if (isMap(map) && !map.flow && !map.has('results') && map.range !== undefined) {
    const at = map.range[1];
    const indent = ' '.repeat(source.position(map.range[0]).column - 1);
    const newline = text.includes('\r\n') ? '\r\n' : '\n';
    const block = stringify({ results }, { lineWidth: 0 })
      .trimEnd()
      .split('\n')
      .map((line) => indent + line)
      .join(newline);
    const before = text.slice(0, at);
    const lead = before === '' || before.endsWith('\n') ? '' : newline;
    return `${before}${lead}${block}${newline}${text.slice(at)}`;
  }
  return doc === undefined ? text : reserializedWithResults(doc, results);
}

function reserializedWithResults(doc: Document.Parsed, results: readonly KrmResult[]): string {
  const existing = doc.get('results', true);
  if (isSeq(existing)) {
    for (const result of results) existing.add(doc.createNode(result));
  } else {
    doc.set('results', doc.createNode(results));
  }
  return doc.toString({ lineWidth: 0 });
}
