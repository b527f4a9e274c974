/**
 * Go's text formats that appear in the kubelet's messages: `%q` (strconv.Quote), the
 * `time.Duration` String form and the aggregate error of k8s.io/apimachinery.
 */

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's `strconv.Quote` / `%q`: double quotes, Go escapes, non-printable runes as \x, \u, \U. */
export function goQuote(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    switch (char) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      // A lone surrogate is not valid UTF-8; Go would see the replacement character's bytes.
      out += '\\ufffd';
    } else if (PRINTABLE.test(char)) {
      out += char;
    } else if (code < 0x80) {
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    } else if (code < 0x10000) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else {
      out += `\\U${code.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}

/**
 * A duration in Go's `Duration.String()` form, after truncating to whole milliseconds as the
 * kubelet does: `0s`, `390ms`, `2.266s`, `1m2.5s`, `1h0m0s`.
 */
export function formatGoDuration(ms: number): string {
  let whole = Math.trunc(ms);
  if (whole === 0) return '0s';
  const negative = whole < 0;
  if (negative) whole = -whole;
  let text: string;
  if (whole < 1000) {
    text = `${whole}ms`;
  } else {
    const hours = Math.floor(whole / 3_600_000);
    const minutes = Math.floor((whole % 3_600_000) / 60_000);
    const millis = whole % 60_000;
    const seconds = Math.floor(millis / 1000);
    const fraction = String(millis % 1000)
      .padStart(3, '0')
      .replace(/0+$/, '');
    text = `${seconds}${fraction === '' ? '' : `.${fraction}`}s`;
    if (hours > 0) text = `${hours}h${minutes}m${text}`;
    else if (minutes > 0) text = `${minutes}m${text}`;
  }
  return negative ? `-${text}` : text;
}

/**
 * `utilerrors.NewAggregate(errs).Error()`: one message as itself; several, de-duplicated in order,
 * as `[a, b]` (and a single distinct message without brackets).
 */
export function aggregateMessages(messages: readonly string[]): string {
  const seen: string[] = [];
  for (const message of messages) if (!seen.includes(message)) seen.push(message);
  if (seen.length === 0) return '';
  if (messages.length === 1 || seen.length === 1) return seen[0] ?? '';
  return `[${seen.join(', ')}]`;
}

/** kubectl's `duration.HumanDuration`, for the Age column of `kubectl describe`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return d === 0 ? `${y}y` : `${y}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}
