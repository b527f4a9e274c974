/**
 * The server's Prometheus metrics, in the text exposition format 0.0.4: requests by method,
 * route and status, bytes served, and pull-through hits, misses and upstream fetches. Counters
 * only, so no client library.
 */

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Counter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  add(labels: Labels, amount = 1): void {
    let key = '';
    for (const name in labels) key += `${labels[name] ?? ''}\u0000`;
    const found = this.series.get(key);
    if (found !== undefined) found.value += amount;
    else this.series.set(key, { labels, value: amount });
  }

  value(labels: Labels = {}): number {
    let total = 0;
    for (const s of this.series.values())
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    return total;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values()) {
      const parts = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      out.push(`${this.name}${parts.length === 0 ? '' : `{${parts.join(',')}}`} ${s.value}`);
    }
  }
}

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
    const out: string[] = [];
    for (const c of [this.requests, this.bytesServed, this.pullThrough, this.upstreamBytes, this.uploads])
      c.render(out);
    return `${out.join('\n')}\n`;
  }
}
