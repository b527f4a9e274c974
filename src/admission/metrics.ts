/**
 * Prometheus metrics in the text exposition format (0.0.4): decisions by webhook and reason,
 * request and registry-lookup latency histograms, and the digest cache's hits, misses and hit
 * ratio.
 */
import { Counter, Histogram, renderMetrics } from '../metrics/index.ts';
import type { PinnerStats } from './pinner.ts';

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
    return renderMetrics(
      [
        this.decisions,
        this.badRequests,
        this.requestDuration,
        this.lookupDuration,
        this.lookupFailures,
        this.staleServes,
      ],
      out,
    );
  }
}
