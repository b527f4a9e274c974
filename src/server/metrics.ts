/**
 * The server's Prometheus metrics, in the text exposition format 0.0.4: requests by method,
 * route and status, bytes served, and pull-through hits, misses and upstream fetches.
 */
import { Counter, renderMetrics } from '../metrics/index.ts';

/**
 * The registry server's Prometheus counters (requests by method, route and status, bytes
 * served, pull-through hits, misses and upstream fetches) and their text exposition.
 */
export class ServerMetrics {
  readonly requests = new Counter(
    'kimg_registry_requests_total',
    'HTTP requests answered, by method, route and status.',
  );
  readonly bytesServed = new Counter(
    'kimg_registry_bytes_served_total',
    'Manifest and blob body bytes sent to clients.',
  );
  readonly pullThrough = new Counter(
    'kimg_registry_pull_through_total',
    'Pull-through lookups by kind (manifest, tag, blob) and result (hit: served from the store, miss: fetched upstream, stale: stored tag served while upstream failed, absent: upstream has none, error).',
  );
  readonly upstreamBytes = new Counter('kimg_registry_upstream_bytes_total', 'Blob bytes received from upstream.');
  readonly uploads = new Counter('kimg_registry_uploads_total', 'Blob uploads finished, by result.');

  render(): string {
    return renderMetrics([this.requests, this.bytesServed, this.pullThrough, this.upstreamBytes, this.uploads]);
  }
}
