import type { Command } from 'commander';
import { defaultPullPolicy } from '../../kubelet/index.ts';
import { familiarString, parseDockerRef, tryParseNormalizedNamed, type NamedReference } from '../../reference/index.ts';
import {
  OUTPUT_OPTION,
  formatError,
  parseOutputFormat,
  readLines,
  recordPrinter,
  writeLine,
  type Io,
  type OutputFormat,
} from '../io.ts';

/** What `kimg ref` reports for one valid input. */
export interface RefReport {
  readonly input: string;
  readonly normalized: string;
  readonly pull: string;
  readonly familiar: string;
  readonly domain: string;
  readonly path: string;
  readonly tag: string | null;
  readonly digest: string | null;
  readonly pullPolicy: string;
}

export function describeReference(input: string, ref: NamedReference): RefReport {
  return {
    input,
    normalized: ref.toString(),
    pull: parseDockerRef(input).toString(),
    familiar: familiarString(ref),
    domain: ref.domain,
    path: ref.path,
    tag: ref.tag ?? null,
    digest: ref.digest ?? null,
    pullPolicy: defaultPullPolicy(input),
  };
}

const LABELS: [keyof RefReport, string][] = [
  ['normalized', 'normalized'],
  ['pull', 'pull'],
  ['familiar', 'familiar'],
  ['domain', 'domain'],
  ['path', 'path'],
  ['tag', 'tag'],
  ['digest', 'digest'],
  ['pullPolicy', 'pull policy'],
];

function printText(io: Io, report: RefReport): void {
  writeLine(io.stdout, report.input);
  for (const [key, label] of LABELS) writeLine(io.stdout, `  ${label.padEnd(13)}${report[key] ?? '-'}`);
}

/** Reports every input; invalid ones go to stderr (and, in JSON and YAML, as an error record
 * so that output records stay aligned with input lines). Returns the exit status. */
export async function runRef(
  io: Io,
  inputs: AsyncIterable<string> | Iterable<string>,
  format: OutputFormat,
): Promise<number> {
  let failed = false;
  let first = true;
  const print = format === 'text' ? undefined : recordPrinter(io, format);
  for await (const input of inputs) {
    const parsed = tryParseNormalizedNamed(input);
    if (!parsed.ok) {
      failed = true;
      writeLine(io.stderr, formatError(parsed.error));
      await print?.({ input, error: { code: parsed.error.code, message: parsed.error.message } });
      continue;
    }
    const report = describeReference(input, parsed.value);
    if (print !== undefined) {
      await print(report);
    } else {
      if (!first) writeLine(io.stdout);
      printText(io, report);
    }
    first = false;
  }
  return failed ? 1 : 0;
}

export function registerRef(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('ref')
    .description(
      'normalize image references as Kubernetes does: full name, familiar form, domain, path, tag, digest, default pull policy',
    )
    .argument('<reference...>', 'image references; "-" reads them one per line from standard input')
    .option(...OUTPUT_OPTION)
    .action(async (refs: string[], options: { output: string }) => {
      const format = parseOutputFormat(options.output);
      const inputs = refs.length === 1 && refs[0] === '-' ? readLines(io.stdin) : refs;
      setExit(await runRef(io, inputs, format));
    });
}
