/**
 * Go's `time.ParseDuration` (what `metav1.Duration` decodes with): `[-+]?([0-9]*(\.[0-9]*)?unit)+`
 * with units ns, us, µs, μs, ms, s, m, h, or a bare `0`. Returns nanoseconds as a bigint, or
 * undefined where Go returns an error (including overflow of int64).
 */
const UNIT_NANOSECONDS = new Map<string, bigint>([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n],
  ['\u03bcs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const MAX_INT64 = (1n << 63n) - 1n;

/**
 * Parses a duration as Go's `time.ParseDuration` does (`1m30s`, `250ms`, a bare `0`):
 * nanoseconds as a bigint, or undefined wherever Go returns an error, overflow included.
 */
export function parseGoDuration(input: string): bigint | undefined {
  let s = input;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return undefined;
  let total = 0n;
  while (s !== '') {
    const match = /^([0-9]*)(?:\.([0-9]*))?/.exec(s);
    const whole = match?.[1] ?? '';
    const fraction = match?.[2];
    if (whole === '' && (fraction === undefined || fraction === '')) return undefined;
    s = s.slice(match?.[0].length ?? 0);
    const unitMatch = /^[^0-9.]+/.exec(s);
    if (unitMatch === null) return undefined;
    const unit = UNIT_NANOSECONDS.get(unitMatch[0]);
    if (unit === undefined) return undefined;
    s = s.slice(unitMatch[0].length);

    const wholeValue = whole === '' ? 0n : BigInt(whole);
    if (wholeValue > (1n << 63n) / unit) return undefined;
    let value = wholeValue * unit;
    if (fraction !== undefined && fraction !== '') {
      // Go keeps fraction digits until they would overflow, then scales in float64.
      const digits = fraction.replace(/0+$/, '').slice(0, 18);
      if (digits !== '') {
        const scaled = (Number(BigInt(digits)) * Number(unit)) / 10 ** digits.length;
        value += BigInt(Math.floor(scaled));
      }
      if (value > 1n << 63n) return undefined;
    }
    total += value;
    if (total > 1n << 63n) return undefined;
  }
  if (negative) return -total;
  return total > MAX_INT64 ? undefined : total;
}

/** Milliseconds (fractional) of a Go duration string, or undefined. */
export function parseGoDurationMs(input: string): number | undefined {
  const ns = parseGoDuration(input);
  return ns === undefined ? undefined : Number(ns) / 1e6;
}
