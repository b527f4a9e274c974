import { createInterface } from 'node:readline';
import { parseGoDuration } from '../credentials/index.ts';
import { isKimgError, KimgError } from '../errors/index.ts';
import { escapeControls, jsonLine } from './format.ts';

/** Where a command writes; injectable so the CLI runs in-process too (tests, the demo). */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };

/**
 * Writes one line of human-readable text. Control characters in it (from registries, manifests,
 * stored names, pod files) are escaped so that they cannot drive the terminal; newlines and tabs
 * the printer composed stay.
 */
export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${escapeControls(line, { keepNewlines: true })}\n`);
}

/** Writes bytes that are the command's data (a manifest, JSON, a shell script) unchanged. */
export function writeRaw(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text);
}

/** A command line that cannot work as given: a bad flag value, a missing path (exit status 2). */
export class UsageError extends KimgError<'ErrUsage'> {
  constructor(message: string) {
    super('ErrUsage', message);
  }
}

/** Codes that mean "the command line, or a file it names, is wrong", not "the work failed". */
const USAGE_CODES: ReadonlySet<string> = new Set([
  'ErrUsage',
  'ErrInvalidFlag',
  'ErrInvalidConfig',
  'ErrInvalidYaml',
  'ErrYamlTooComplex',
  'ErrInvalidManifest',
  'kubelet.ErrInvalidConfiguration',
]);

/** The exit status for a failure: 2 for usage and configuration errors, else 1. */
export function exitStatusFor(err: unknown): 1 | 2 {
  return isKimgError(err) && USAGE_CODES.has(err.code) ? 2 : 1;
}

/** One line for a failure: `kimg: <message> (<code>)`, control characters escaped. */
export function formatError(err: unknown): string {
  const message = isKimgError(err) ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
  return `kimg: ${escapeControls(message, { keepNewlines: true })}`;
}

/** Prints `formatError(err)` on standard error and returns the exit status for it. */
export function reportError(io: Io, err: unknown): 1 | 2 {
  io.stderr.write(`${formatError(err)}\n`);
  return exitStatusFor(err);
}

/** Non-empty, non-comment lines of a stream, trimmed. */
export async function* readLines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const raw of lines) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) yield line;
  }
}

/**
 * A time flag in Go's duration grammar (`90s`, `1m30s`, `500ms`, `2h`), the grammar of every
 * duration kimg reads (kubelet configuration, credential provider cache durations); milliseconds.
 */
export function durationFlag(flag: string, value: string, options: { allowZero?: boolean } = {}): number {
  const ns = parseGoDuration(value);
  if (ns === undefined || ns < 0n || (ns === 0n && options.allowZero !== true))
    throw new UsageError(
      `${flag} must be a duration such as 30s, 500ms, 1m30s or 2h (Go's syntax), got ${JSON.stringify(value)}`,
    );
  return Number(ns / 1_000_000n);
}

/** A whole-number flag from `min` to `max`. */
export function wholeNumberFlag(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(
      `${flag} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** A flag whose value is one of `choices`. */
export function choiceFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
}

/** What `-o/--output` selects: text for people, JSON (JSON Lines for lists) or YAML for programs. */
export type OutputFormat = 'text' | 'json' | 'yaml';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'yaml'];

/** `-o`'s value; anything else is a usage error. */
export function parseOutputFormat(value: string): OutputFormat {
  return choiceFlag('-o/--output', value, OUTPUT_FORMATS);
}

/** The `-o, --output` option every command takes, described the same way everywhere. */
export const OUTPUT_OPTION = ['-o, --output <format>', 'text, json (one object per line) or yaml', 'text'] as const;

/**
 * Prints records for programs: each as one JSON line (a list is JSON Lines), or each as a YAML
 * document (a list is a YAML stream, documents separated by `---`). The shapes are documented in
 * docs/cli-output.md and kept stable.
 */
export async function printRecords(io: Io, format: 'json' | 'yaml', records: Iterable<unknown>): Promise<void> {
  const print = recordPrinter(io, format);
  for (const record of records) await print(record);
}

/** One record: `printRecords` of a list of one. */
export function printRecord(io: Io, format: 'json' | 'yaml', record: unknown): Promise<void> {
  return printRecords(io, format, [record]);
}

/** Prints records one at a time as they come (a stream read from standard input), in the
 * format of `printRecords`. */
export function recordPrinter(io: Io, format: 'json' | 'yaml'): (record: unknown) => Promise<void> {
  let first = true;
  return async (record) => {
    if (format === 'json') {
      writeRaw(io.stdout, `${jsonLine(record)}\n`);
      return;
    }
    writeRaw(io.stdout, `${first ? '' : '---\n'}${await yamlDocument(record)}`);
    first = false;
  };
}

async function yamlDocument(record: unknown): Promise<string> {
  // Loaded only here: the commands that print no YAML do not pay for the parser at start-up.
  const { Document, visit } = await import('yaml');
  const doc = new Document(record);
  // Strings a terminal would act on are double-quoted, where every character can be escaped.
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string' && (UNSAFE_IN_YAML.test(node.value) || /[\x00-\x1f]/.test(node.value)))
        node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc
    .toString({ lineWidth: 0 })
    .replace(UNSAFE_IN_YAML_G, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What the YAML printer leaves raw inside double quotes: DEL, C1 and bidirectional controls. */
const UNSAFE_IN_YAML = /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_IN_YAML_G = new RegExp(UNSAFE_IN_YAML.source, 'g');
