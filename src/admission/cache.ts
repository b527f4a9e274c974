/**
 * The digest cache (docs/semantics.md admission §4.9): entries live `ttlMs` (0 disables caching), the oldest go first
 * beyond `maxEntries`. (Concurrent identical lookups share one registry call through
 * `signals/SingleFlight`.) Failures are never cached.
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
