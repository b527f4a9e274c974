/**
 * The kubelet's image pull back-off (`flowcontrol.Backoff` as the image manager uses it,
 * docs/semantics.md kubelet §5): per key, a window that starts at `initial` and doubles to `max`, no jitter.
 * A key is in back-off while `now − lastUpdate < window` (strict); an entry not updated for more
 * than `2·max` (strict) has expired and starts over. Success does not reset a key: it only
 * collects expired entries (`gc`).
 */
import type { Clock } from '../signals/index.ts';

export const IMAGE_BACKOFF_INITIAL_MS = 10_000;
export const IMAGE_BACKOFF_MAX_MS = 300_000;

export interface BackoffEntry {
  /** The current window in ms. */
  readonly windowMs: number;
  /** When the last failure was recorded. */
  readonly lastUpdate: number;
}

export interface BackoffState extends BackoffEntry {
  /** When the window ends: the first moment a new pull is allowed. */
  readonly retryAt: number;
  readonly inBackOff: boolean;
}

/**
 * The kubelet's image pull back-off: per key (pod and image), a window that starts at
 * `initialMs` and doubles to `maxMs`. A key is in back-off while less than its window has passed
 * since its last failure; an entry untouched for more than twice `maxMs` expires and starts over.
 * A success does not reset a key; `gc` only drops expired entries.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly clock: Clock;
  readonly #entries = new Map<string, BackoffEntry>();

  constructor(initialMs: number, maxMs: number, clock: Clock) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.clock = clock;
  }

  /** `IsInBackOffSinceUpdate(key, now)`. */
  isInBackOffSinceUpdate(key: string, eventTime = this.clock.now()): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#expired(eventTime, entry)) return false;
    return eventTime - entry.lastUpdate < entry.windowMs;
  }

  /** `Next(key, now)`: a failure. New or expired → `initial`; else `min(2·window, max)`. */
  next(key: string, eventTime = this.clock.now()): void {
    const entry = this.#entries.get(key);
    const windowMs =
      entry === undefined || this.#expired(eventTime, entry)
        ? this.initialMs
        : Math.min(2 * entry.windowMs, this.maxMs);
    this.#entries.set(key, { windowMs, lastUpdate: this.clock.now() });
  }

  /** `GC()`: forgets entries not updated for more than `2·max`. */
  gc(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.#entries) if (this.#expired(now, entry)) this.#entries.delete(key);
  }

  /** Forgets one key (kimg's explicit reset, e.g. after fixing a secret; the kubelet has none). */
  reset(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** The entry of a key as of `now`, for status displays; undefined when none is live. */
  state(key: string, now = this.clock.now()): BackoffState | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#expired(now, entry)) return undefined;
    return { ...entry, retryAt: entry.lastUpdate + entry.windowMs, inBackOff: now - entry.lastUpdate < entry.windowMs };
  }

  get size(): number {
    return this.#entries.size;
  }

  #expired(eventTime: number, entry: BackoffEntry): boolean {
    return eventTime - entry.lastUpdate > 2 * this.maxMs;
  }
}

/** The kubelet's back-off key: pods never share back-off, containers of one pod with one image do. */
export function backOffKey(podUID: string, image: string): string {
  return `${podUID}_${image}`;
}
