/**
 * At most `permits` holders at once; the rest wait in order, and a permit given back passes
 * straight to the first of them (the copy engine's bodies in flight, a registry host's requests,
 * the kubelet's parallel pulls, the server's `htpasswd -v` runs).
 */
export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly permits: number) {
    if (!(Number.isInteger(permits) || permits === Number.POSITIVE_INFINITY) || permits < 0)
      throw new RangeError(`a semaphore of ${permits} permits`);
  }

  /** Permits held now. */
  get inUse(): number {
    return this.held;
  }

  /** Callers waiting for a permit now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A permit, once one is free: the function that gives it back (calling it again does nothing).
   * Rejects with the signal's reason if it aborts first, and then takes nothing.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.held < this.permits) {
      this.held++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(wake);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiting.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // The permit came from the one who gave it back (held did not change).
    return this.releaser();
  }

  /** As {@link acquire}, but undefined at once when `maxWaiting` callers already wait: a flood
   * cannot grow the queue without bound. */
  async acquireUnlessQueued(maxWaiting: number, signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (this.held >= this.permits && this.waiting.length >= maxWaiting) return undefined;
    return this.acquire(signal);
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.held--;
    };
  }
}
