// What `kimg pin` and `kimg lint` print, and their exit statuses (spec §5.5–§5.8): 0 success;
// 1 findings, violations or resolution failures; 2 usage, configuration, unreadable or
// unparseable input.
import { AdmissionConfigError } from '../../admission/index.ts';
import { isKimgError } from '../../errors/index.ts';
import {
  ImageLockError,
  ManifestFileError,
  findingRecords,
  formatFindingsText,
  type Finding,
  type ImageSlot,
} from '../../manifests/index.ts';
import { formatError, parseOutputFormat, type Io, type OutputFormat } from '../io.ts';
import { UsageError } from './pin-input.ts';

/** 2 for what the user must fix before anything can run, else 1. */
export function exitStatusFor(err: unknown): 1 | 2 {
  if (err instanceof ManifestFileError) return err.code === 'ErrManifestRewrite' ? 1 : 2;
  if (err instanceof ImageLockError) return err.code === 'ErrNotInLock' ? 1 : 2;
  if (err instanceof AdmissionConfigError || err instanceof UsageError) return 2;
  if (isKimgError(err, 'ErrInvalidYaml') || isKimgError(err, 'ErrYamlTooComplex')) return 2;
  return 1;
}

/** Prints the error (`kimg: <message> (<code>)`) and returns its exit status. */
export function failWith(io: Io, err: unknown): number {
  io.stderr.write(`${formatError(err)}\n`);
  return exitStatusFor(err);
}

export function outputFormat(value: string): OutputFormat {
  try {
    return parseOutputFormat(value);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** `<file>:<doc>: <path>`: where a slot is, as every line about it starts. */
export function where(slot: ImageSlot): string {
  return `${slot.file}:${slot.doc}: ${slot.path}`;
}

/** Findings on standard output: one line each, or one JSON array. */
export function printFindings(io: Io, findings: readonly Finding[], format: OutputFormat): void {
  if (format === 'json') io.stdout.write(`${JSON.stringify(findingRecords(findings))}\n`);
  else io.stdout.write(formatFindingsText(findings));
}
