/**
 * Child processes and leftovers of the harness. Every long-lived child is tracked so that none
 * outlives the test process: on exit (and on SIGINT/SIGTERM/SIGHUP) tracked children get SIGKILL
 * by PID and registered temp dirs are removed. Short commands run through `run()`, which captures
 * output and keeps secrets out of error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';

const trackedChildren = new Set<ChildProcess>();
const exitCleanups = new Set<() => void>();
let hooksInstalled = false;

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function cleanUpNow(): void {
  for (const child of trackedChildren) {
    if (isRunning(child) && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  trackedChildren.clear();
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // best effort: the process is exiting
    }
  }
  exitCleanups.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpNow();
      // Re-raise for the default action unless someone else (e.g. the test runner) handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Kills `child` (SIGKILL) if it is still running when this process exits. */
export function trackChild(child: ChildProcess): void {
  installExitHooks();
  trackedChildren.add(child);
  child.once('exit', () => trackedChildren.delete(child));
}

/** Runs `cleanup` (synchronously) at process exit unless the returned function is called first. */
export function onExit(cleanup: () => void): () => void {
  installExitHooks();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

/** Removes `dir` at process exit; call the returned function once the dir is gone or kept. */
export function removeAtExit(dir: string): () => void {
  return onExit(() => rmSync(dir, { recursive: true, force: true }));
}

/**
 * Stops `child` by its PID: SIGTERM, up to `graceMs` for it to exit, then SIGKILL.
 * Resolves once the process has exited (and been reaped).
 */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (!isRunning(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([exited.then(() => 'exited' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout' && isRunning(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Strings (passwords, `user:pass`) replaced by `***` in error messages. */
  secrets?: readonly string[];
}

export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/** Replaces every secret in `text` by `***`. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}

/** Runs `command args…` to completion; rejects with the command line and stderr tail on failure. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 120_000, secrets = [] } = options;
  const commandLine = redact([command, ...args].join(' '), secrets);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    trackChild(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${commandLine}: ${redact(err.message, secrets)}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const errText = Buffer.concat(stderr).toString('utf8');
      if (code === 0) {
        resolve({ stdout: Buffer.concat(stdout), stderr: errText });
        return;
      }
      const why = timedOut ? `timed out after ${timeoutMs} ms` : signal ? `killed by ${signal}` : `exit status ${code}`;
      const tail = redact(errText.trim().split('\n').slice(-15).join('\n'), secrets);
      reject(new Error(`${commandLine} failed (${why})${tail ? `:\n${tail}` : ''}`));
    });
  });
}
