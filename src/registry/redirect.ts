/**
 * Redirects, followed by hand (docs/semantics.md registry §9, S5, S6): at most 10 hops, relative `Location` resolved,
 * https → http refused, and `Authorization` / cookies dropped for good as soon as the scheme,
 * host or port changes. Presigned storage URLs also break when they receive `Authorization`.
 */
import { discard } from './body.ts';
import { RegistryError } from './errors.ts';
import { headerValue } from './headers.ts';
import { redactUrl } from './redact.ts';
import type { HttpRequest, HttpResponse, Transport } from './transport.ts';

export const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

export interface FollowedResponse extends HttpResponse {
  /** The response came from another origin than the request's: it must never be answered with
   * the original credentials. */
  readonly crossOrigin: boolean;
  readonly redirects: number;
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
    let next: URL;
    try {
      next = new URL(location, req.url);
    } catch {
      throw new RegistryError(
        'ErrUnexpectedStatus',
        `${req.description}: ${req.url.host} redirected to an invalid Location`,
        facts,
      );
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new RegistryError(
        'ErrInsecureRedirect',
        `${req.description}: ${req.url.host} redirected to a ${next.protocol} URL, refused`,
        facts,
      );
    }
    if (req.url.protocol === 'https:' && next.protocol === 'http:') {
      throw new RegistryError(
        'ErrInsecureRedirect',
        `${req.description}: ${redactUrl(req.url)} redirected from https to plain http (${redactUrl(next)}), refused`,
        facts,
      );
    }
    next.username = '';
    next.password = '';
    const sameOrigin = next.origin === req.url.origin;
    if (!sameOrigin) crossOrigin = true;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (crossOrigin && CREDENTIAL_HEADERS.includes(name.toLowerCase())) continue;
      headers[name] = value;
    }
    // skipVerify belongs to the endpoint's own origin; extra CAs may serve its storage too.
    const tls = sameOrigin ? req.tls : req.tls?.ca === undefined ? undefined : { ca: req.tls.ca };
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
