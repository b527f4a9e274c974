/**
 * The kubelet's registry pull throttle (`throttledImageService`, docs/semantics.md kubelet §7): a token bucket of
 * `burst` tokens refilled at `qps` per second (`golang.org/x/time/rate`), starting full, asked with
 * the non-blocking `TryAccept`. No token → the pull fails at once with `pull QPS exceeded`, an
 * ordinary ErrImagePull that enters back-off. QPS 0 means no throttle; burst 0 rejects everything.
 */
import { KimgError } from '../errors/index.ts';
import type { Clock } from '../signals/index.ts';

export const PULL_QPS_EXCEEDED = 'pull QPS exceeded';

export class PullQpsExceededError extends KimgError<'kubelet.ErrPullQPSExceeded'> {
  constructor() {
    super('kubelet.ErrPullQPSExceeded', PULL_QPS_EXCEEDED);
  }
}

/**
 * The kubelet's registry pull throttle: `burst` tokens refilled at `qps` per second,
 * starting full. `tryAccept()` takes a token or answers false at once (the pull then fails with
 * `pull QPS exceeded`); qps 0 means no throttle.
 */
export class TokenBucket {
  readonly qps: number;
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, clock: Clock) {
    if (!(qps > 0)) throw new RangeError(`a token bucket needs a positive rate, got ${qps}`);
    if (!(burst >= 0)) throw new RangeError(`a token bucket needs a burst of at least 0, got ${burst}`);
    this.qps = qps;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Takes one token if one is there; never waits. */
  tryAccept(): boolean {
    const now = this.#clock.now();
    if (now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
      this.#last = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens available now (fractional), for status displays. */
  get tokens(): number {
    const elapsed = Math.max(0, this.#clock.now() - this.#last);
    return Math.min(this.burst, this.#tokens + (elapsed / 1000) * this.qps);
  }
}

/** The kubelet's throttle for `registryPullQPS`/`registryBurst`: undefined when QPS is 0. */
export function pullThrottle(qps: number, burst: number, clock: Clock): TokenBucket | undefined {
  return qps === 0 ? undefined : new TokenBucket(qps, burst, clock);
}
