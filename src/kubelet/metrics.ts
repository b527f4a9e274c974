/**
 * The image manager's metrics (docs/semantics.md kubelet §3, §10) and the pod start-up latency tracker hooks.
 * `MetricsRegistry` keeps counters and observations in memory and renders Prometheus text.
 */
import type { Clock } from '../signals/index.ts';

export const METRIC_ENSURE_IMAGE_REQUESTS = 'kubelet_image_manager_ensure_image_requests_total';
export const METRIC_IMAGE_PULL_DURATION = 'kubelet_image_pull_duration_seconds';
export const METRIC_MUSTPULL_CHECKS = 'kubelet_imagemanager_image_mustpull_checks_total';

export type Labels = Readonly<Record<string, string>>;

export interface MetricsSink {
  inc(name: string, labels: Labels): void;
  observe(name: string, labels: Labels, value: number): void;
}

function key(name: string, labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${parts.join(',')}}`;
}

/**
 * An in-memory `MetricsSink` for the image manager's counters and observations, rendered as
 * Prometheus text by `render()`.
 */
export class MetricsRegistry implements MetricsSink {
  readonly #counters = new Map<string, number>();
  readonly #observations = new Map<string, number[]>();

  inc(name: string, labels: Labels): void {
    const k = key(name, labels);
    this.#counters.set(k, (this.#counters.get(k) ?? 0) + 1);
  }

  observe(name: string, labels: Labels, value: number): void {
    const k = key(name, labels);
    const list = this.#observations.get(k) ?? [];
    list.push(value);
    this.#observations.set(k, list);
  }

  counter(name: string, labels: Labels): number {
    return this.#counters.get(key(name, labels)) ?? 0;
  }

  observations(name: string, labels: Labels): readonly number[] {
    return this.#observations.get(key(name, labels)) ?? [];
  }

  /** Every counter as `name{labels} value` and every observation series as `_count`/`_sum`. */
  render(): string {
    const lines: string[] = [];
    for (const [k, v] of [...this.#counters].sort()) lines.push(`${k} ${v}`);
    for (const [k, values] of [...this.#observations].sort()) {
      const brace = k.indexOf('{');
      lines.push(`${k.slice(0, brace)}_count${k.slice(brace)} ${values.length}`);
      lines.push(`${k.slice(0, brace)}_sum${k.slice(brace)} ${values.reduce((a, b) => a + b, 0)}`);
    }
    return lines.join('\n');
  }
}

const MB = 1024 * 1024;
const GB = 1024 * MB;
const SIZE_BUCKETS: readonly [number, string][] = [
  [0, '0-10MB'],
  [10 * MB, '10MB-100MB'],
  [100 * MB, '100MB-500MB'],
  [500 * MB, '500MB-1GB'],
  [1 * GB, '1GB-5GB'],
  [5 * GB, '5GB-10GB'],
  [10 * GB, '10GB-20GB'],
  [20 * GB, '20GB-30GB'],
  [30 * GB, '30GB-40GB'],
  [40 * GB, '40GB-60GB'],
  [60 * GB, '60GB-100GB'],
  [100 * GB, 'GT100GB'],
];

/** The `image_size_in_bytes` label of the pull duration histogram; `N/A` for size 0. */
export function imageSizeBucket(bytes: number): string {
  if (bytes <= 0) return 'N/A';
  for (let i = SIZE_BUCKETS.length - 1; i >= 0; i--) {
    const bucket = SIZE_BUCKETS[i];
    if (bucket !== undefined && bytes > bucket[0]) return bucket[1];
  }
  return '';
}

/** The start-up latency tracker's image hooks. */
export interface PullLatencyTracker {
  startedPulling(podUID: string): void;
  finishedPulling(podUID: string): void;
}

/**
 * The kubelet's pod start-up latency tracker, image part: the first start of pulling per pod and
 * the last finish, a finish counting only for a pod whose start it saw earlier.
 */
export class PodStartupLatencyTracker implements PullLatencyTracker {
  readonly #clock: Clock;
  readonly #pods = new Map<string, { firstStartedPulling: number; lastFinishedPulling?: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  startedPulling(podUID: string): void {
    if (!this.#pods.has(podUID)) this.#pods.set(podUID, { firstStartedPulling: this.#clock.now() });
  }

  finishedPulling(podUID: string): void {
    const state = this.#pods.get(podUID);
    if (state !== undefined) state.lastFinishedPulling = this.#clock.now();
  }

  /** The pod's image pulling window, when both ends were seen. */
  pulling(podUID: string): { firstStartedPulling: number; lastFinishedPulling: number | undefined } | undefined {
    const state = this.#pods.get(podUID);
    return state === undefined
      ? undefined
      : { firstStartedPulling: state.firstStartedPulling, lastFinishedPulling: state.lastFinishedPulling };
  }

  forget(podUID: string): void {
    this.#pods.delete(podUID);
  }
}
