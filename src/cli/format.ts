/** Human-readable sizes and durations, as docker and kubectl print them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit++;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)}${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** `sha256:0123456789ab…` → `0123456789ab`, docker's short form of a layer digest. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 13);
}

/** Rows of cells as left-aligned columns separated by three spaces (kubectl's table style); the
 * cells' control characters (newlines too) are escaped, so a hostile name stays in its cell. */
export function formatTable(header: readonly string[], cells: readonly (readonly string[])[]): string {
  const rows = cells.map((row) => row.map((c) => escapeControls(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Characters a terminal may act on: C0 controls, DEL, C1 controls (`\x9b` is CSI for some
 * terminals), and the bidirectional overrides and isolates that reorder what is shown. */

const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const CONTROL_BUT_NEWLINES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every character a terminal would act on written as a visible escape (`\x1b`,
 * `\u202e`), so that a string from a registry, a manifest, a stored name or a pod file cannot
 * move the cursor, retitle the window or hide what follows. The one escaping function every
 * human-readable printer goes through; `keepNewlines` keeps `\n` and `\t` for composed blocks.
 */
export function escapeControls(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines === true ? CONTROL_BUT_NEWLINES : CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `JSON.stringify(value)` on one line, with DEL, C1 controls and the bidirectional controls
 * escaped as `\uXXXX` too (JSON.stringify leaves them raw), so that `cat`-ing JSON is safe. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
