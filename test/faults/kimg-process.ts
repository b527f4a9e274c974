/**
 * `kimg` child processes for crash and concurrency tests: started ahead of time (pull-child.ts
 * loads the CLI and waits), told what to run, watched line by line (`--progress json` events),
 * killed with SIGKILL at a chosen moment, and measured (peak RSS from /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PullEvent } from '../../src/pull/index.ts';
import { trackChild } from '../harness/index.ts';

const CHILD = fileURLToPath(new URL('./pull-child.ts', import.meta.url));

export interface KimgProcess {
  readonly pid: number;
  /** Resolves once the CLI is loaded. */
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every stdout line so far. */
  readonly lines: string[];
  /** Events of `--progress json` output so far. */
  readonly events: PullEvent[];
  stderr(): string;
  /** Runs `kimg ARGV…` (once). */
  run(argv: readonly string[]): void;
  /** Resolves true at the first event matching `test`, false if the process exits first. */
  waitForEvent(test: (event: PullEvent) => boolean): Promise<boolean>;
  kill(): void;
  /** Highest resident set size seen (VmHWM, kB), sampled every few ms until exit. */
  peakRssKb(): number;
  /** Resident set size when it said `ready`. */
  readyRssKb(): number;
}

async function readStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Starts a `kimg` process with `env` (merged over this process's). */
export function startKimg(env: NodeJS.ProcessEnv): KimgProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  trackChild(child);
  const pid = child.pid ?? 0;
  const lines: string[] = [];
  const events: PullEvent[] = [];
  let stderr = '';
  let peak = 0;
  let readyRss = 0;
  let waiters: Array<() => void> = [];
  const notify = () => {
    const current = waiters;
    waiters = [];
    for (const wake of current) wake();
  };
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      running = false;
      notify();
      resolve({ code, signal });
    }),
  );
  const sampler = setInterval(() => {
    void readStatusKb(pid, 'VmHWM').then((kb) => {
      if (kb !== undefined) peak = Math.max(peak, kb);
    });
  }, 10);
  void exited.then(() => clearInterval(sampler));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    void exited.then(({ code, signal }) =>
      reject(new Error(`kimg exited (${code ?? signal}) before it was ready: ${stderr}`)),
    );
  });
  ready.catch(() => undefined);
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line === 'ready' && lines.length === 0) {
      void readStatusKb(pid, 'VmRSS').then((kb) => (readyRss = kb ?? 0));
      lines.push(line);
      onReady();
      return;
    }
    lines.push(line);
    if (line.startsWith('{')) {
      try {
        events.push(JSON.parse(line) as PullEvent);
      } catch {
        // not an event
      }
    }
    notify();
  });

  return {
    pid,
    ready,
    exited,
    lines,
    events,
    stderr: () => stderr,
    run(argv) {
      child.stdin?.end(`${JSON.stringify(argv)}\n`);
    },
    async waitForEvent(test) {
      for (let seen = 0; ;) {
        for (; seen < events.length; seen++) if (test(events[seen] as PullEvent)) return true;
        if (!running) return false;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    kill() {
      if (running) child.kill('SIGKILL');
    },
    peakRssKb: () => peak,
    readyRssKb: () => readyRss,
  };
}
