/**
 * Keeps secrets out of messages, events and thrown objects (spec S12): presigned blob URLs carry
 * their signature in the query, so no URL is ever shown with its query, user info or fragment.
 */

/** `https://host/path?X-Amz-Signature=…` → `https://host/path?<redacted>`; user info dropped. */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return '<invalid URL>';
  }
  const query = parsed.search === '' ? '' : '?<redacted>';
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}${query}`;
}

/** Every URL in free text (e.g. a server's error message) with its query and user info hidden. */
export function redactUrlsInText(text: string): string {
  // A URL redacted before ends in `?` followed by `<redacted>`: keep its `?`.
  return text.replace(/\bhttps?:\/\/[^\s"'<>]+/gi, (match, offset: number, whole: string) =>
    match.endsWith('?') && whole.startsWith('<redacted>', offset + match.length)
      ? `${redactUrl(match)}?`
      : redactUrl(match),
  );
}

/**
 * The secret-bearing parts of a URL's query, to scrub from text that may echo them: the whole
 * raw query, each raw `name=value` pair, and each value (raw and decoded) of 8 characters or
 * more. Empty without a query.
 */
export function queryParts(url: URL): string[] {
  if (url.search.length <= 1) return [];
  const raw = url.search.slice(1);
  const parts = new Set<string>([raw, ...raw.split('&')]);
  // Values alone only when long enough not to blank ordinary words (`3600`, `true`) elsewhere.
  const values = [...raw.split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)), ...url.searchParams.values()];
  for (const value of values) if (value.length >= 8) parts.add(value);
  // Longest first, so a pair is hidden whole before its value alone is.
  return [...parts].filter((p) => p.length >= 4).sort((a, b) => b.length - a.length);
}

/**
 * Hides each secret (password, token, `Authorization` value) wherever it occurs in `text`, also
 * in its base64 and URL-encoded forms, then hides URL queries. Secrets shorter than 4 characters
 * are not searched for (they would blank out ordinary words).
 */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')])) {
      out = out.split(form).join('<redacted>');
    }
  }
  return redactUrlsInText(out);
}

/** Cuts text for a message, noting how much was left out. */
export function truncateText(text: string, max = 512): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/**
 * A plain Error standing in for a lower-level error (undici, node:net, TLS) as a `cause`: only
 * its name, code and a redacted message survive, never request options, headers or sockets.
 */
export function sanitizeCause(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(redactUrlsInText(String(err)));
  const copy = new Error(redactUrlsInText(err.message));
  copy.name = err.name;
  const code = errorCode(err);
  if (code !== undefined) (copy as Error & { code?: string }).code = code;
  return copy;
}

/** The `code` of an error or of the first error in its cause chain that has one. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
