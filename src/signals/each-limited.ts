/**
 * Runs `work` over `items`, at most `limit` at a time (the copy engine's blobs, relocate's
 * images). The first failure stops the rest: no new item starts, and the signal handed to `work`
 * aborts so that work in flight can stop. It returns, or throws that first failure, only once
 * every item it started has settled, so nothing is still writing when the caller cleans up.
 * `signal` (the caller's) stops it the same way.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, stop: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const runners = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (failure === undefined && !controller.signal.aborted && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, controller.signal);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  });
  try {
    await Promise.all(runners);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
}
