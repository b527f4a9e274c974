/**
 * Time, injectable: every rule with a duration (retry back-off, token lifetimes, the kubelet's
 * back-off, QPS and GC ages) reads a Clock, so tests drive it with a ManualClock instead of
 * waiting in wall time.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Wall time and real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export interface ManualClockOptions {
  /**
   * Every `sleep` moves time forward by its own length and resolves on the next turn of the
   * event loop, as if the wait had passed: for code that must not block a test (retries, back-off)
   * where the test only checks which waits were asked for (`sleeps`). Default false: sleepers
   * wait for `advance`.
   */
  readonly autoAdvance?: boolean;
}

interface Sleeper {
  readonly wakeAt: number;
  readonly resolve: () => void;
}

/** A clock that only moves when told to: `advance(ms)` wakes the sleepers whose time has come. */
export class ManualClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  readonly #autoAdvance: boolean;
  /** Every wait asked for, in order (ms). */
  readonly sleeps: number[] = [];

  constructor(start = Date.UTC(2025, 0, 2, 3, 4, 5), options: ManualClockOptions = {}) {
    this.#now = start;
    this.#autoAdvance = options.autoAdvance === true;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    if (this.#autoAdvance) {
      this.advance(Math.max(0, ms));
      // Let other work run, as a real wait would.
      return new Promise((resolve) => setImmediate(resolve));
    }
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = { wakeAt: this.#now + ms, resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward (never back) and wakes every sleeper due by then, earliest first. */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a ManualClock never goes back');
    this.#now += ms;
    const due = this.#sleepers.filter((s) => s.wakeAt <= this.#now).sort((a, b) => a.wakeAt - b.wakeAt);
    this.#sleepers = this.#sleepers.filter((s) => s.wakeAt > this.#now);
    for (const sleeper of due) sleeper.resolve();
  }

  /** Moves time forward to `ms` since the epoch. */
  set(ms: number): void {
    this.advance(ms - this.#now);
  }

  /** How many sleeps are waiting. */
  get sleepers(): number {
    return this.#sleepers.length;
  }
}
