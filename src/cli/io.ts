import { createInterface } from 'node:readline';
import { isKimgError } from '../errors/index.ts';

/** Where a command writes; injectable so the CLI runs in-process too (tests, the demo). */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };

export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`);
}

/** One line for a failure: `kimg: <message>`, with the code for typed errors. */
export function formatError(err: unknown): string {
  if (isKimgError(err)) return `kimg: ${err.message} (${err.code})`;
  if (err instanceof Error) return `kimg: ${err.message}`;
  return `kimg: ${String(err)}`;
}

/** Non-empty, non-comment lines of a stream, trimmed. */
export async function* readLines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const raw of lines) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) yield line;
  }
}

export type OutputFormat = 'text' | 'json';

export function parseOutputFormat(value: string): OutputFormat {
  if (value === 'text' || value === 'json') return value;
  throw new Error(`unknown output format "${value}": use text or json`);
}
