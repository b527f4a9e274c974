/**
 * Runs a credential program (Docker credential helper or kubelet credential provider plugin):
 * request on stdin, bounded stdout/stderr, a hard timeout that kills the program and anything it
 * started. The I/O edge of the module; everything that interprets the output is pure.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunProgramOptions {
  readonly input: string;
  /** The whole environment of the child (PATH from here also locates a bare command name). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs: number;
  /** Cap on stdout and on stderr each; the program is killed beyond it. */
  readonly maxOutputBytes?: number;
}

export type ProgramOutcome =
  | { readonly kind: 'exited'; readonly exitCode: number; readonly stdout: Buffer; readonly stderr: Buffer }
  | { readonly kind: 'signalled'; readonly signal: string }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'not-executable'; readonly code: string }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'output-too-large' };

/** Runs a program; it is never handed a shell, so names and arguments are taken literally. */
export type ProgramRunner = (
  file: string,
  args: readonly string[],
  options: RunProgramOptions,
) => Promise<ProgramOutcome>;

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

export const runProgram: ProgramRunner = (file, args, options) =>
  new Promise((resolve) => {
    const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.env)) if (value !== undefined) env[name] = value;

    // Its own process group, so a timeout also ends what a shell-script helper started.
    const child = spawn(file, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, windowsHide: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrBytes = 0;
    let done = false;

    const finish = (outcome: ProgramOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const abort = (outcome: ProgramOutcome): void => {
      killGroup(child);
      child.stdout.destroy();
      child.stderr.destroy();
      finish(outcome);
    };

    const timer = setTimeout(() => abort({ kind: 'timeout' }), options.timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutput) abort({ kind: 'output-too-large' });
      else stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderrBytes += chunk.length;
      if (stderrBytes <= maxOutput) stderr.push(chunk);
    });
    // A program that exits without reading its input makes the write fail with EPIPE.
    child.stdin.on('error', () => undefined);

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') finish({ kind: 'not-found' });
      else finish({ kind: 'not-executable', code: err.code ?? 'unknown' });
    });
    child.on('close', (code, signal) => {
      if (signal !== null) finish({ kind: 'signalled', signal });
      else
        finish({ kind: 'exited', exitCode: code ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
    });

    child.stdin.end(options.input);
  });

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
