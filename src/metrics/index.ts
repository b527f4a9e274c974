/** Prometheus text exposition: counters and histograms shared by kimg's servers. */
export { Counter, Histogram, LATENCY_BUCKETS, renderMetrics, type Labels } from './prometheus.ts';
