/**
 * Prometheus metrics in the text exposition format (0.0.4): decisions by webhook and reason,
 * request and registry-lookup latency histograms, and the digest cache's hits, misses and hit
 * ratio. A few counters and histograms need no client library.
 */
import type { PinnerStats } from './pinner.ts';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Identifies a series cheaply (labels are always given in the same order); the text is made at scrape time. */
function seriesKey(labels: Readonly<Record<string, string>>): string {
  let key = '';
  for (const name in labels) key += `${labels[name] ?? ''}\u0000`;
  return key;
}

class Histogram {
  private readonly series = new Map<
    string,
    { labels: Record<string, string>; counts: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {}

  observe(labels: Record<string, string>, seconds: number): void {
    const key = seriesKey(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (seconds <= (this.buckets[i] ?? Infinity)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) =>
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i] ?? 0}`),
      );
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(
        `${this.name}_sum${labelText(s.labels)} ${s.sum}`,
        `${this.name}_count${labelText(s.labels)} ${s.count}`,
      );
    }
  }
}

class Counter {
  private readonly series = new Map<string, { labels: Record<string, string>; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Record<string, string>, by = 1): void {
    const key = seriesKey(labels);
    const s = this.series.get(key);
    if (s === undefined) this.series.set(key, { labels, value: by });
    else s.value += by;
  }

  get(labels: Record<string, string>): number {
    return this.series.get(seriesKey(labels))?.value ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values()) out.push(`${this.name}${labelText(s.labels)} ${s.value}`);
  }
}

export class WebhookMetrics {
  readonly decisions = new Counter(
    'kimg_admission_decisions_total',
    'Admission decisions by webhook (mutate, validate) and reason.',
  );
  readonly badRequests = new Counter(
    'kimg_admission_bad_requests_total',
    'Requests answered 4xx (not an AdmissionReview, wrong method or path).',
  );
  readonly requestDuration = new Histogram(
    'kimg_admission_request_duration_seconds',
    'Time to answer an AdmissionReview, by webhook.',
  );
  readonly lookupDuration = new Histogram(
    'kimg_registry_lookup_duration_seconds',
    'Registry lookups (HEAD, GET fallback, index GET in platform mode), by result.',
  );
  private readonly lookupFailures = new Counter(
    'kimg_registry_lookup_failures_total',
    'Failed registry lookups by cause (not found, auth, timeout, HTTP status, network error).',
  );
  private readonly staleServes = new Counter(
    'kimg_digest_stale_served_total',
    'Failed lookups answered with an expired cached digest (staleIfErrorSeconds), by the cause of the failure (timeout, HTTP 503, ECONNREFUSED, …).',
  );
  private cacheStats: (() => PinnerStats) | undefined;
  private cacheEntries: (() => number) | undefined;

  /** Reads the digest cache figures from a Pinner at scrape time. */
  watchCache(stats: () => PinnerStats, entries: () => number): void {
    this.cacheStats = stats;
    this.cacheEntries = entries;
  }

  decision(webhook: 'mutate' | 'validate', reason: string, seconds: number): void {
    this.decisions.inc({ webhook, reason });
    this.requestDuration.observe({ webhook }, seconds);
  }

  lookup(ms: number, ok: boolean, reason?: string): void {
    this.lookupDuration.observe({ result: ok ? 'ok' : 'error' }, ms / 1000);
    if (!ok) this.lookupFailures.inc({ cause: reason ?? 'error' });
  }

  /** One answer served stale because its lookup failed with `reason`. */
  staleServe(reason: string): void {
    this.staleServes.inc({ cause: reason });
  }

  render(): string {
    const out: string[] = [];
    this.decisions.render(out);
    this.badRequests.render(out);
    this.requestDuration.render(out);
    this.lookupDuration.render(out);
    this.lookupFailures.render(out);
    this.staleServes.render(out);
    const stats = this.cacheStats?.();
    if (stats !== undefined) {
      const total = stats.cacheHits + stats.cacheMisses;
      out.push(
        '# HELP kimg_digest_cache_requests_total Digest answers from the cache (hit) or the registry (miss; coalesced = joined a lookup in flight).',
        '# TYPE kimg_digest_cache_requests_total counter',
        `kimg_digest_cache_requests_total{result="hit"} ${stats.cacheHits}`,
        `kimg_digest_cache_requests_total{result="miss"} ${stats.cacheMisses}`,
        `kimg_digest_cache_requests_total{result="coalesced"} ${stats.coalesced}`,
        '# HELP kimg_digest_cache_hit_ratio Hits over all digest answers since start (NaN before the first).',
        '# TYPE kimg_digest_cache_hit_ratio gauge',
        `kimg_digest_cache_hit_ratio ${total === 0 ? 'NaN' : stats.cacheHits / total}`,
        '# HELP kimg_registry_lookups_total Registry lookups started.',
        '# TYPE kimg_registry_lookups_total counter',
        `kimg_registry_lookups_total ${stats.lookups}`,
      );
    }
    const entries = this.cacheEntries?.();
    if (entries !== undefined) {
      out.push(
        '# HELP kimg_digest_cache_entries Cached tag → digest answers.',
        '# TYPE kimg_digest_cache_entries gauge',
        `kimg_digest_cache_entries ${entries}`,
      );
    }
    return `${out.join('\n')}\n`;
  }
}
