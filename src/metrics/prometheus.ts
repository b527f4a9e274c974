/**
 * Prometheus counters and histograms in the text exposition format 0.0.4
 * (prometheus/docs content/docs/instrumenting/exposition_formats.md): the few kinds kimg's
 * servers expose, so no client library. Label values are escaped; series keep the order they
 * first appeared in.
 */

/** A series' labels, always given in the same order for one metric. */
export type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Identifies a series cheaply (labels come in the same order); the text is made at scrape time. */
function seriesKey(labels: Labels): string {
  let key = '';
  for (const name in labels) key += `${labels[name] ?? ''}\u0000`;
  return key;
}

/** A counter with labelled series. */
export class Counter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    const key = seriesKey(labels);
    const s = this.series.get(key);
    if (s === undefined) this.series.set(key, { labels, value: by });
    else s.value += by;
  }

  /** The series with exactly these labels (0 when none). */
  get(labels: Labels): number {
    return this.series.get(seriesKey(labels))?.value ?? 0;
  }

  /** The total of every series whose labels include these (all series for `{}`). */
  sum(filter: Labels = {}): number {
    let total = 0;
    for (const s of this.series.values())
      if (Object.entries(filter).every(([k, v]) => s.labels[k] === v)) total += s.value;
    return total;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values()) out.push(`${this.name}${labelText(s.labels)} ${s.value}`);
  }
}

/** Request and lookup latencies, in seconds. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** A histogram with labelled series (cumulative buckets, `_sum` and `_count`). */
export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {}

  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] ?? Infinity)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
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

/** The exposition of `metrics` in order, newline-terminated. */
export function renderMetrics(
  metrics: readonly { render(out: string[]): void }[],
  extra: readonly string[] = [],
): string {
  const out: string[] = [];
  for (const m of metrics) m.render(out);
  out.push(...extra);
  return `${out.join('\n')}\n`;
}
