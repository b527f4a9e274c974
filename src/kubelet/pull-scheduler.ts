/**
 * The kubelet's image pullers (docs/semantics.md kubelet §7): serial — one worker and a FIFO queue of 10 (a Go
 * channel of capacity 10: ten requests wait besides the one being pulled, further callers block
 * until there is room) — or parallel — at most `maxParallelImagePulls` pulls at once (unset =
 * unlimited); extra requests wait, never fail. Identical requests are not de-duplicated. The
 * pull time (`<pull>` in the Pulled event) starts when the puller picks the request.
 */
import { Semaphore, type Clock } from '../signals/index.ts';

export const SERIAL_QUEUE_CAPACITY = 10;

/** What a pull run by a scheduler reports back (`pullResult`). */
export interface ScheduledPullResult<T> {
  readonly value?: T;
  readonly error?: unknown;
  readonly ok: boolean;
  /** From when the puller picked the request to its end. */
  readonly pullMs: number;
}

export interface PullScheduler {
  readonly mode: 'serial' | 'parallel';
  /** Runs `task` when the puller gets to it. Never rejects: failures are in the result. */
  schedule<T>(task: () => Promise<T>): Promise<ScheduledPullResult<T>>;
  /** Requests running, waiting in the queue, and (serial) callers blocked on a full queue. */
  stats(): { running: number; queued: number; blocked: number };
}

interface Job {
  readonly run: () => Promise<void>;
}

async function timed<T>(clock: Clock, task: () => Promise<T>): Promise<ScheduledPullResult<T>> {
  const started = clock.now();
  try {
    const value = await task();
    return { ok: true, value, pullMs: clock.now() - started };
  } catch (error) {
    return { ok: false, error, pullMs: clock.now() - started };
  }
}

/**
 * The kubelet's serial puller: one pull at a time from a FIFO queue of `capacity` waiting
 * requests (10 in the kubelet); callers past that wait for room. Identical requests are not
 * merged; a pull's time starts when the worker picks it.
 */
export class SerialPullScheduler implements PullScheduler {
  readonly mode = 'serial' as const;
  readonly capacity: number;
  readonly #clock: Clock;
  readonly #queue: Job[] = [];
  readonly #blocked: Job[] = [];
  #running = false;

  constructor(clock: Clock, capacity = SERIAL_QUEUE_CAPACITY) {
    this.#clock = clock;
    this.capacity = capacity;
  }

  schedule<T>(task: () => Promise<T>): Promise<ScheduledPullResult<T>> {
    return new Promise((resolve) => {
      const job: Job = { run: async () => resolve(await timed(this.#clock, task)) };
      if (this.#queue.length < this.capacity) this.#queue.push(job);
      else this.#blocked.push(job);
      void this.#work();
    });
  }

  stats(): { running: number; queued: number; blocked: number } {
    return { running: this.#running ? 1 : 0, queued: this.#queue.length, blocked: this.#blocked.length };
  }

  async #work(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let job = this.#take(); job !== undefined; job = this.#take()) await job.run();
    } finally {
      this.#running = false;
    }
  }

  #take(): Job | undefined {
    const job = this.#queue.shift();
    const unblocked = this.#blocked.shift();
    if (unblocked !== undefined) this.#queue.push(unblocked);
    return job;
  }
}

/**
 * The kubelet's parallel puller: at most `maxParallel` pulls at once (undefined: unlimited);
 * further requests wait, never fail. Identical requests are not merged.
 */
export class ParallelPullScheduler implements PullScheduler {
  readonly mode = 'parallel' as const;
  /** Undefined = unlimited. */
  readonly maxParallel: number | undefined;
  readonly #clock: Clock;
  readonly #slots: Semaphore;

  constructor(clock: Clock, maxParallel?: number) {
    if (maxParallel !== undefined && !(Number.isInteger(maxParallel) && maxParallel >= 1)) {
      throw new RangeError(`maxParallelImagePulls must be a positive whole number, got ${maxParallel}`);
    }
    this.#clock = clock;
    this.maxParallel = maxParallel;
    this.#slots = new Semaphore(maxParallel ?? Number.POSITIVE_INFINITY);
  }

  async schedule<T>(task: () => Promise<T>): Promise<ScheduledPullResult<T>> {
    const release = await this.#slots.acquire();
    try {
      return await timed(this.#clock, task);
    } finally {
      release();
    }
  }

  stats(): { running: number; queued: number; blocked: number } {
    return { running: this.#slots.inUse, queued: this.#slots.queued, blocked: 0 };
  }
}

/** The puller the kubelet configuration selects. */
export function pullSchedulerFor(
  config: { serializeImagePulls: boolean; maxParallelImagePulls?: number | undefined },
  clock: Clock,
): PullScheduler {
  return config.serializeImagePulls
    ? new SerialPullScheduler(clock)
    : new ParallelPullScheduler(clock, config.maxParallelImagePulls);
}
