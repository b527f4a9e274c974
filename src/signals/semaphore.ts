/**
 * At most `permits` holders at once; the rest wait in order (the copy engine's bodies in flight,
 * the server's `htpasswd -v` runs). With `maxWaiting`, a caller past that many waiting is refused
 * at once instead of queued, so a flood cannot grow the queue without bound.
 */
export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly permits: number,
    private readonly maxWaiting = Number.POSITIVE_INFINITY,
  ) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`a semaphore of ${permits} permits`);
  }

  /**
   * A permit, once one is free: the function that gives it back (calling it again does nothing).
   * Undefined when `maxWaiting` callers already wait. Rejects with the signal's reason if it
   * aborts first, and then takes nothing.
   */
  async acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    signal?.throwIfAborted();
    if (this.held < this.permits) {
      this.held++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxWaiting) return undefined;
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
