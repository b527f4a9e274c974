/** YAML streams in and out (the `yaml` package), with errors that name the file and line. */
import { parseAllDocuments, stringify } from 'yaml';
import { KimgError } from '../errors/index.ts';

/** Every document of a YAML (or JSON) stream as plain data; empty documents are skipped. */
export function parse(text: string, name: string): unknown[] {
  const out: unknown[] = [];
  for (const document of parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true })) {
    const error = document.errors[0];
    if (error !== undefined) {
      const line = error.linePos?.[0];
      throw new KimgError(
        'ErrInvalidYaml',
        `${name}${line === undefined ? '' : `:${line.line}:${line.col}`}: ${error.message.split('\n')[0] ?? error.code}`,
      );
    }
    const value: unknown = document.toJS({ maxAliasCount: 100 });
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** Documents as one YAML stream (`---` between them). */
export function stringifyAll(documents: readonly unknown[]): string {
  return documents.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
