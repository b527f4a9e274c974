import { KimgError } from '../errors/index.ts';

export type YamlErrorCode =
  /** Not YAML (or JSON): syntax, a duplicate key, an alias to no anchor, a non-scalar key. */
  | 'ErrInvalidYaml'
  /** Aliases and `<<` merge keys that would expand far beyond the text (an "alias bomb"), or an
   * alias inside the node it names. */
  | 'ErrYamlTooComplex';

/**
 * A YAML text kimg refuses to read. `file` is the name as given (`-` for standard input); `doc`
 * is the 0-based document index in the stream, `line` and `column` are 1-based and counted in
 * the whole file (UTF-16 code units, as editors count them).
 */
export class YamlError extends KimgError<YamlErrorCode> {
  readonly file: string;
  readonly doc: number;
  readonly line: number;
  readonly column: number;
  /** What was wrong, without the location (the message is `<file>:<line>:<column>: <reason>`). */
  readonly reason: string;

  constructor(
    code: YamlErrorCode,
    reason: string,
    facts: { file: string; doc: number; line: number; column: number; cause?: unknown },
  ) {
    super(
      code,
      `${facts.file}:${facts.line}:${facts.column}: ${reason}`,
      facts.cause === undefined ? undefined : { cause: facts.cause },
    );
    this.file = facts.file;
    this.doc = facts.doc;
    this.line = facts.line;
    this.column = facts.column;
    this.reason = reason;
  }
}
