// Small helpers shared by the benchmarks: figures (best, median, rates), tables, and the CPU
// time of processes read from /proc, so that a figure can be put next to what it cost.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The built CLI, as users run it (see buildCli). */
export const CLI = join(ROOT, 'bin', 'kimg.js');

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export function best(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.min(...values);
}

/** Decimal megabytes per second, as skopeo and curl count them. */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export const fmtRate = (bytes: number, ms: number): string => (Number.isFinite(ms) ? mbps(bytes, ms).toFixed(0) : '-');
export const fmtSeconds = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '-');
export const fmtRatio = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-');

export function fmtBytes(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(1)} MiB`;
  return `${+(bytes / 1024).toFixed(0)} KiB`;
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}

const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number.parseInt(out.stdout ?? '', 10);
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a running process has used so far; NaN when it is gone. */
export function cpuSecondsOf(pid: number): number {
  const f = statFields(pid);
  // After the name: state(0) … utime(11) stime(12).
  return f === undefined ? NaN : (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** CPU seconds of this process's children that have exited and been waited for (cutime + cstime). */
export function childrenCpuSeconds(): number {
  const f = statFields('self');
  return f === undefined ? NaN : (Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
}

/** CPU seconds this process has used (all threads). */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** CPU seconds the main thread of this process has run (the event loop: a pull's JavaScript). */
export function mainThreadSeconds(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return NaN;
  }
}

/** `VmHWM` (peak resident set) of a process in bytes, from /proc; undefined when unreadable. */
export function peakRss(pid: number | 'self'): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Runs `jobs` at most `width` at a time. */
export async function inPool<T>(items: readonly T[], width: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await job(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
}

/** Wall milliseconds and CPU seconds of `fn`, CPU read by `cpu` before and after. */
export async function timed(
  fn: () => Promise<unknown>,
  cpu: () => number = ownCpuSeconds,
): Promise<{ ms: number; cpu: number }> {
  const cpu0 = cpu();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  return { ms, cpu: cpu() - cpu0 };
}

/** What `runChild` saw of a process. */
export interface ChildRun {
  readonly ms: number;
  /** CPU seconds of the process (user + system, all threads), from this process's children
   * totals: nothing else of ours exits while it runs. */
  readonly cpu: number;
  /** Peak resident bytes (VmHWM), sampled every 20 ms until it exits. */
  readonly peakRss: number;
  readonly stdout: string;
}

/** Runs a command to completion, reading its CPU time and peak RSS from /proc while it runs. */
export function runChild(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const cpu0 = childrenCpuSeconds();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let peak = 0;
    const sample = () => {
      // Undefined once the child is gone.
      if (child.pid !== undefined) peak = Math.max(peak, peakRss(child.pid) ?? 0);
    };
    const timer = setInterval(sample, 20);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      clearInterval(timer);
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-400)}`));
      else resolve({ ms: performance.now() - started, cpu: childrenCpuSeconds() - cpu0, peakRss: peak, stdout });
    });
  });
}

/** Builds dist/ (the published CLI) when it is missing or older than the sources. */
export function buildCli(): void {
  const built = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (built.status !== 0 || !existsSync(join(ROOT, 'dist/cli/main.js')))
    throw new Error('building the CLI (tsc -p tsconfig.build.json) failed');
}
