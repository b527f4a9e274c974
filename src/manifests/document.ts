import { isAlias, parseAllDocuments, visit, YAMLParseError, type Document } from 'yaml';
import { ManifestFileError } from './errors.ts';

/** How every manifest is parsed: YAML 1.2 core with `<<` merge keys, which Kubernetes' YAML
 * reader (go-yaml) honours; duplicate keys are errors, as `kubectl apply` makes them. */
const PARSE_OPTIONS = { merge: true, uniqueKeys: true, prettyErrors: false, strict: true } as const;

/** A 1-based line and column (in UTF-16 code units, as editors count them). */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** One manifest file (or standard input) as read: its exact text and its parsed documents. */
export class ManifestSource {
  readonly file: string;
  readonly text: string;
  readonly documents: readonly Document.Parsed[];
  #lineStarts: number[] | undefined;

  private constructor(file: string, text: string, documents: readonly Document.Parsed[]) {
    this.file = file;
    this.text = text;
    this.documents = documents;
  }

  /**
   * Parses a multi-document YAML stream (JSON is YAML). Throws ManifestFileError
   * `ErrManifestSyntax` naming the file, the 0-based document index, the line and the column.
   */
  static parse(file: string, text: string): ManifestSource {
    const documents = parseAllDocuments(text, PARSE_OPTIONS) as Document.Parsed[];
    const source = new ManifestSource(file, text, documents);
    documents.forEach((doc, index) => {
      const error = doc.errors[0];
      if (error !== undefined) throw source.syntaxError(index, error);
      source.checkAliases(doc, index);
    });
    return source;
  }

  /** Decodes bytes as UTF-8 (keeping a byte-order mark) and parses them; bytes that are not
   * UTF-8 are refused, since writing the text back would not give the same bytes. */
  static fromBytes(file: string, bytes: Uint8Array): ManifestSource {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (cause) {
      throw new ManifestFileError(
        'ErrManifestEncoding',
        `${file}: not UTF-8 text; kimg reads YAML and JSON manifests in UTF-8 only`,
        { file, cause },
      );
    }
    return ManifestSource.parse(file, text);
  }

  /** Line and column of a character offset into `text`. */
  position(offset: number): Position {
    const starts = (this.#lineStarts ??= lineStarts(this.text));
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (starts[low] ?? 0) + 1 };
  }

  /** An alias to an anchor the document lacks (anchors do not cross `---`) is an error for
   * Kubernetes' reader; the yaml package reports it only when converting, so check here. */
  private checkAliases(doc: Document.Parsed, index: number): void {
    visit(doc, {
      Alias: (_key, node) => {
        if (isAlias(node) && node.resolve(doc) === undefined) {
          const offset = node.range?.[0] ?? 0;
          throw this.syntaxError(
            index,
            new YAMLParseError(
              [offset, offset + 1],
              'BAD_ALIAS',
              `unknown anchor "${node.source}" (anchors hold within one document)`,
            ),
          );
        }
      },
    });
  }

  private syntaxError(doc: number, error: YAMLParseError): ManifestFileError {
    const { line, column } = this.position(error.pos[0]);
    const reason = error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
    return new ManifestFileError(
      'ErrManifestSyntax',
      `${this.file}: document ${doc}, line ${line}, column ${column}: ${reason}`,
      { file: this.file, doc, line, column, cause: error },
    );
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}
