/**
 * Sharing work in flight: callers asking for the same key while a call runs join it instead of
 * starting another. Each caller leaves on its own signal; the work's own signal aborts only when
 * the last caller has left.
 */

/** How a SingleFlight treats the last caller to leave. */
export interface SingleFlightOptions {
  /**
   * The last caller to abort is answered (rejected) only once the aborted work has settled, so
   * nothing of the work runs after the rejection (the Puller's rule: partial downloads are kept
   * and locks released before the caller hears of it). Default false: rejected at once.
   */
  readonly settleBeforeLastLeaves?: boolean;
}

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
}

/** One call per key at a time, shared by every caller that asks for the key while it runs. */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  constructor(private readonly options: SingleFlightOptions = {}) {}

  /** Calls running now. */
  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Joins the call for `key`, starting it when none runs. `joined` tells whether an existing
   * call was joined. The caller's `signal` ends only the caller's wait (rejecting with its
   * reason); when every caller has left, the call's own signal aborts and a later `run` starts
   * afresh. A failure is not kept: the next `run` after it starts a new call.
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
        const last = flight.waiters === 0;
        if (last) {
          if (this.flights.get(key) === flight) this.flights.delete(key);
          flight.controller.abort(signal.reason);
        }
        if (last && this.options.settleBeforeLastLeaves === true) {
          const answer = () => reject(signal.reason as Error);
          flight.promise.then(answer, answer);
        } else {
          reject(signal.reason as Error);
        }
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
