/**
 * Redirects, followed by hand (docs/semantics.md registry §9, S5, S6): at most 10 hops, relative `Location` resolved,
 * https → http refused, and `Authorization` / cookies dropped for good as soon as the scheme,
 * host or port changes. Presigned storage URLs also break when they receive `Authorization`.
 */
import { discard } from './body.ts';
import { RegistryError, type RegistryErrorFacts } from './errors.ts';
import { headerValue } from './headers.ts';
import { redactUrl } from './redact.ts';
import type { HttpRequest, HttpResponse, Transport } from './transport.ts';
import type { EndpointTls } from './types.ts';

export const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

export interface FollowedResponse extends HttpResponse {
  /** The response came from another origin than the request's: it must never be answered with
   * the original credentials. */
  readonly crossOrigin: boolean;
  readonly redirects: number;
}

/** Where a `Location` came from, for the errors about it. */
export interface LocationSource {
  /** What it is, in messages: `redirect`, `upload Location`. */
  readonly what: string;
  /** The host that sent it. */
  readonly host: string;
  readonly description: string;
  readonly facts: RegistryErrorFacts;
}

/**
 * The URL a `Location` names (a redirect's, or an upload session's), relative or absolute,
 * resolved against the URL it answers: only http or https, never from https down to plain http
 * (ErrInsecureRedirect), and without user info or fragment. ErrUnexpectedStatus when it is not
 * a URL. Whether credentials may follow it is {@link sameOrigin}'s to say.
 */
export function resolveLocation(location: string, from: URL, source: LocationSource): URL {
  const { what, host, description, facts } = source;
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new RegistryError(
      'ErrUnexpectedStatus',
      `${description}: the ${what} from ${host} is not a valid URL`,
      facts,
    );
  }
  if (next.protocol !== 'https:' && next.protocol !== 'http:') {
    throw new RegistryError(
      'ErrInsecureRedirect',
      `${description}: the ${what} from ${host} is a ${next.protocol} URL, refused`,
      facts,
    );
  }
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw new RegistryError(
      'ErrInsecureRedirect',
      `${description}: the ${what} from ${host} moves from https to plain http (${redactUrl(next)}), refused`,
      facts,
    );
  }
  next.username = '';
  next.password = '';
  next.hash = '';
  return next;
}

/**
 * The credentials rule (S5): `Authorization`, cookies and the endpoint's TLS exceptions go to
 * `url` only when it has the origin (scheme, host, port) of `origin`.
 */
export function sameOrigin(url: URL, origin: URL): boolean {
  return url.origin === origin.origin;
}

/** The TLS settings a request to another origin keeps: the extra CAs (an endpoint's storage may
 * be served under them), never `skipVerify`, which belongs to the endpoint's own origin. */
export function tlsForOtherOrigin(tls: EndpointTls | undefined): EndpointTls | undefined {
  return tls?.ca === undefined ? undefined : { ca: tls.ca };
}

export async function exchangeFollowingRedirects(
  transport: Transport,
  request: HttpRequest,
  maxRedirects = MAX_REDIRECTS,
): Promise<FollowedResponse> {
  let req = request;
  let crossOrigin = false;
  for (let hops = 0; ; hops++) {
    const res = await transport.exchange(req);
    const location = headerValue(res.headers, 'location');
    // Only reads follow redirects: a write's Location is the upload session or the new content.
    if (
      !REDIRECT_STATUSES.has(res.status) ||
      location === undefined ||
      (req.method !== 'GET' && req.method !== 'HEAD')
    ) {
      return { ...res, crossOrigin, redirects: hops };
    }
    await discard(res.body);
    const facts = { ...req.facts, host: req.url.host, url: redactUrl(req.url), status: res.status };
    if (hops >= maxRedirects) {
      throw new RegistryError(
        'ErrTooManyRedirects',
        `${req.description}: more than ${maxRedirects} redirects, the last from ${redactUrl(req.url)}`,
        facts,
      );
    }
    const next = resolveLocation(location, req.url, {
      what: 'redirect',
      host: req.url.host,
      description: req.description,
      facts,
    });
    const same = sameOrigin(next, req.url);
    if (!same) crossOrigin = true;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (crossOrigin && CREDENTIAL_HEADERS.includes(name.toLowerCase())) continue;
      headers[name] = value;
    }
    const tls = same ? req.tls : tlsForOtherOrigin(req.tls);
    req = {
      ...req,
      url: next,
      method: res.status === 303 && req.method !== 'HEAD' ? 'GET' : req.method,
      headers,
      ...(tls === undefined ? { tls: undefined } : { tls }),
      facts: { ...req.facts, host: next.host, url: redactUrl(next) },
    };
  }
}
