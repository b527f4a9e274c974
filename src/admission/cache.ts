/**
 * The digest cache (spec §4.9): entries live `ttlMs` (0 disables caching), the oldest go first
 * beyond `maxEntries`; and single-flight, so concurrent identical lookups share one registry
 * call. A caller that gives up (its signal aborts) leaves; the shared call is aborted only when
 * every caller has left. Failures are never cached.
 *
 * With `staleMs` > 0 an expired entry is kept that much longer, never answered by `get`, only
 * by `stale` (stale-while-error: the caller asks for it after a lookup failed).
 */

/** An entry past its lifetime but inside the stale window. */
export interface StaleEntry<T> {
  readonly value: T;
  /** How long ago the value was stored (looked up). */
  readonly ageMs: number;
}

export class TtlCache<T> {
  private readonly entries = new Map<
    string,
    { readonly value: T; readonly stored: number; readonly expires: number }
  >();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
    private readonly staleMs = 0,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value while it is fresh. */
  get(key: string): T | undefined {
    if (this.ttlMs <= 0 && this.staleMs <= 0) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (entry.expires <= now) {
      // Kept for `stale` until the stale window closes too.
      if (entry.expires + this.staleMs <= now) this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** The value, fresh or expired less than `staleMs` ago; undefined beyond that or without a stale window. */
  stale(key: string): StaleEntry<T> | undefined {
    if (this.staleMs <= 0) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (entry.expires + this.staleMs <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value, ageMs: now - entry.stored };
  }

  set(key: string, value: T): void {
    // With a TTL of 0 and a stale window, entries are stored expired: never fresh, stale only.
    if (this.ttlMs <= 0 && this.staleMs <= 0) return;
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { value, stored: now, expires: now + Math.max(0, this.ttlMs) });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Joins the call for `key`, starting it when none runs. `joined` tells whether an existing
   * call was joined. The caller's `signal` ends only the caller's wait.
   */
  run(
    key: string,
    start: (signal: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
  ): { readonly result: Promise<T>; readonly joined: boolean } {
    if (signal?.aborted === true) return { result: Promise.reject(signal.reason as Error), joined: false };
    let flight = this.flights.get(key);
    const joined = flight !== undefined;
    if (flight === undefined) {
      const controller = new AbortController();
      let started: Promise<T>;
      try {
        started = start(controller.signal);
      } catch (err) {
        started = Promise.reject(err as Error);
      }
      const created: Flight<T> = {
        promise: started.finally(() => {
          if (this.flights.get(key) === created) this.flights.delete(key);
        }),
        controller,
        waiters: 0,
      };
      // Every waiter may have left before it settles: never an unhandled rejection.
      created.promise.catch(() => undefined);
      this.flights.set(key, created);
      flight = created;
    }
    return { result: this.wait(key, flight, signal), joined };
  }

  private wait(key: string, flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    flight.waiters++;
    if (signal === undefined) {
      return flight.promise.finally(() => {
        flight.waiters--;
      });
    }
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = () => {
        if (left) return false;
        left = true;
        flight.waiters--;
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = () => {
        if (!leave()) return;
        if (flight.waiters === 0) {
          if (this.flights.get(key) === flight) this.flights.delete(key);
          flight.controller.abort(signal.reason);
        }
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          if (leave()) resolve(value);
        },
        (err: unknown) => {
          if (leave()) reject(err as Error);
        },
      );
    });
  }
}
