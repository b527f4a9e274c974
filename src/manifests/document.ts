import type { Document } from 'yaml';
import { parseYaml, YamlError, type YamlStream } from '../yaml/index.ts';
import { ManifestFileError } from './errors.ts';

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
  readonly #stream: YamlStream;

  private constructor(stream: YamlStream) {
    this.file = stream.file;
    this.text = stream.text;
    this.documents = stream.documents;
    this.#stream = stream;
  }

  /**
   * Parses a multi-document YAML stream (JSON is YAML) with bounded work (`parseYaml`). Throws
   * ManifestFileError `ErrManifestSyntax` naming the file, the 0-based document index, the line
   * and the column; YAML whose aliases or merge keys would expand beyond bounds stays the
   * YamlError `ErrYamlTooComplex` (with the same facts).
   */
  static parse(file: string, text: string): ManifestSource {
    try {
      return new ManifestSource(parseYaml(text, file));
    } catch (err) {
      if (!(err instanceof YamlError) || err.code !== 'ErrInvalidYaml') throw err;
      throw new ManifestFileError(
        'ErrManifestSyntax',
        // file:LINE:COLUMN: as compilers print it, so that editors and terminals make it a link.
        `${file}:${err.line}:${err.column}: ${err.reason} (document ${err.doc})`,
        { file, doc: err.doc, line: err.line, column: err.column, cause: err },
      );
    }
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
    return this.#stream.position(offset);
  }
}
