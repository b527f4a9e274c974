/**
 * One async critical section per key, in-process (containerd's `internal/kmutex`): the kubelet's
 * per-image locks, the store's per-file lock before the cross-process one, `index.json` writes.
 * Waiters are served in arrival order; a waiter may leave on its signal.
 */
export class KeyedMutex {
  private readonly locked = new Set<string>();
  private readonly waiters = new Map<string, (() => void)[]>();

  /** Runs `fn` holding `key` (after every earlier holder), releasing it however `fn` ends. */
  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(key, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** The release function when `key` is free now; undefined when it is held. */
  tryAcquire(key: string): (() => void) | undefined {
    if (this.locked.has(key)) return undefined;
    this.locked.add(key);
    return this.releaser(key);
  }

  /** Waits for `key` (or rejects with the signal's reason); resolves to the release function. */
  acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    const now = this.tryAcquire(key);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolvePromise, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const queue = this.waiters.get(key) ?? [];
      this.waiters.set(key, queue);
      const onAbort = (): void => {
        const i = queue.indexOf(wake);
        if (i !== -1) queue.splice(i, 1);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolvePromise(this.releaser(key));
      };
      queue.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaser(key: string): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.get(key)?.shift();
      if (next !== undefined) {
        next(); // ownership passes on; the key stays locked
        return;
      }
      this.waiters.delete(key);
      this.locked.delete(key);
    };
  }
}
