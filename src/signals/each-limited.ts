/**
 * Runs `work` over `items`, at most `limit` at a time (the copy engine's blobs, relocate's
 * images). The first failure stops the rest: no new item starts, and the signal handed to `work`
 * aborts so that work in flight can stop. It returns, or throws that first failure, only once
 * every item it started has settled, so nothing is still writing when the caller cleans up.
 * `signal` (the caller's) stops it the same way.
 *
 * `release`, handed to `work`, gives the item's place to the next item before the work settles:
 * the part that the limit is for is over and only a wait remains (an upload whose bytes are all
 * sent, waiting for the registry to commit them). Its outcome still counts as above.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, stop: AbortSignal, release: () => void) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  /** Every item started, settled or not (none rejects: a failure is kept above). */
  const started: Promise<void>[] = [];
  const runners = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (failure === undefined && !controller.signal.aborted && next < items.length) {
      const item = items[next++] as T;
      let release = (): void => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      const settled = work(item, controller.signal, release).catch((error: unknown) => {
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
      });
      started.push(settled);
      await Promise.race([settled, released]);
    }
  });
  try {
    await Promise.all(runners);
    await Promise.all(started);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
}
