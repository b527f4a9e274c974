// What `kimg pin` and `kimg lint` print, and their exit statuses (docs/semantics.md admission §5.5–§5.8): 0 success;
// 1 findings, violations or resolution failures; 2 usage, configuration, unreadable or
// unparseable input.
import { AdmissionConfigError } from '../../admission/index.ts';
import {
  ImageLockError,
  ManifestFileError,
  findingRecords,
  formatFindingsText,
  type Finding,
  type ImageSlot,
} from '../../manifests/index.ts';
import { escapeControls } from '../format.ts';
import {
  exitStatusFor as usageOrFailure,
  formatError,
  parseOutputFormat,
  printRecords,
  writeLine,
  type Io,
  type OutputFormat,
} from '../io.ts';

/** 2 for what the user must fix before anything can run, else 1. */
export function exitStatusFor(err: unknown): 1 | 2 {
  if (err instanceof ManifestFileError) return err.code === 'ErrManifestRewrite' ? 1 : 2;
  if (err instanceof ImageLockError) return err.code === 'ErrNotInLock' ? 1 : 2;
  if (err instanceof AdmissionConfigError) return 2;
  return usageOrFailure(err);
}

/** Prints the error (`kimg: <message> (<code>)`) and returns its exit status. */
export function failWith(io: Io, err: unknown): number {
  io.stderr.write(`${formatError(err)}\n`);
  return exitStatusFor(err);
}

export function outputFormat(value: string): OutputFormat {
  return parseOutputFormat(value);
}

/** `<file>:<line>:<column>: <path>`: where a slot is (1-based, counted in the file, as compilers
 * print it), as every line about it starts; control characters escaped. */
export function where(slot: ImageSlot): string {
  return escapeControls(`${slot.file}:${slot.line}:${slot.column}: ${slot.path}`);
}

/** Findings on standard output: one line each, or JSON Lines / a YAML stream, one record each. */
export async function printFindings(io: Io, findings: readonly Finding[], format: OutputFormat): Promise<void> {
  if (format !== 'text') return printRecords(io, format, findingRecords(findings));
  // One line per finding, each escaped whole: an image string cannot start a line of its own.
  for (const finding of findings) writeLine(io.stdout, escapeControls(formatFindingsText([finding]).trimEnd()));
}
