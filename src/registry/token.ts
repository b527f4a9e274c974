/**
 * Bearer tokens: the requests to a token realm (OAuth2 POST, or GET with Basic), reading the
 * answer, and the token cache. As containerd's `core/remotes/docker/auth/fetch.go`
 * (`FetchToken`, `FetchTokenWithOAuth` over `TokenOptions`): free functions over one request
 * record; the Authenticator only chooses between them and caches.
 */
import { createHash } from 'node:crypto';
import { ERROR_BODY_LIMIT, TOKEN_LIMIT, BodyTooLargeError, readCapped, readForMessage } from './body.ts';
import { formatScope, mergeScopes, type Scope } from './challenge.ts';
import { RegistryError, codeForResponse, describeDetails, parseErrorBody } from './errors.ts';
import { contentLength } from './headers.ts';
import { scrubSecrets } from './redact.ts';
import { exchangeFollowingRedirects, type FollowedResponse } from './redirect.ts';
import type { HttpRequest, Transport } from './transport.ts';
import { SingleFlight } from '../signals/index.ts';
import type { Clock, Credential } from './types.ts';

/** Tokens without `expires_in`, or with less, live this long (regclient and containers/image clamp). */
export const MIN_TOKEN_LIFETIME_SECONDS = 60;
/** A cached token is replaced this long before it expires. */
export const TOKEN_REFRESH_MARGIN_MS = 5_000;

export interface BearerToken {
  /** The secret. Never logged, never put in a message. */
  readonly token: string;
  /** When we consider it issued (server's `issued_at` when plausible, else receipt), ms since epoch. */
  readonly issuedAt: number;
  /** ms since epoch. */
  readonly expiresAt: number;
}

export class TokenResponseError extends Error {}

/**
 * Reads a token server's JSON answer: `token` or `access_token` (`token` wins when both are
 * present), `expires_in` (default and floor 60 s), `issued_at` (RFC 3339). `receivedAt` is the
 * local clock when the answer arrived. Throws TokenResponseError, whose message never quotes
 * the body (it may hold a token).
 */
export function parseTokenResponse(body: Uint8Array | string, receivedAt: number): BearerToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  } catch {
    throw new TokenResponseError('the token server answered with something that is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TokenResponseError('the token server answered with JSON that is not an object');
  }
  const fields = parsed as Record<string, unknown>;
  const token = nonEmptyString(fields.token) ?? nonEmptyString(fields.access_token);
  if (token === undefined)
    throw new TokenResponseError('the token server answered without a "token" or "access_token"');
  if (/[\s"\\]/.test(token) || token.length > 64 * 1024) {
    throw new TokenResponseError('the token server answered with a token that cannot be sent in a header');
  }

  let lifetime = MIN_TOKEN_LIFETIME_SECONDS;
  if (typeof fields.expires_in === 'number' && Number.isFinite(fields.expires_in)) {
    lifetime = Math.max(MIN_TOKEN_LIFETIME_SECONDS, Math.floor(fields.expires_in));
  }
  // One day at most: a token "valid for a year" is more likely a server bug than a feature.
  lifetime = Math.min(lifetime, 24 * 60 * 60);

  let issuedAt = receivedAt;
  if (typeof fields.issued_at === 'string') {
    const t = parseRfc3339(fields.issued_at);
    // Only an earlier issue time shortens the life; a future one (clock skew) is ignored, and so
    // is one so old that the token would already be expired by our clock.
    if (t !== undefined && t <= receivedAt && t + lifetime * 1000 > receivedAt + TOKEN_REFRESH_MARGIN_MS) issuedAt = t;
  }
  return { token, issuedAt, expiresAt: issuedAt + lifetime * 1000 };
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** RFC 3339 date-time to ms since epoch; undefined when malformed. */
export function parseRfc3339(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const t = Date.parse(text.replace(' ', 'T'));
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Stands for the credential in cache keys without holding it: a hash of kind and secret.
 * Two credentials for one host never share a token.
 */
export function credentialIdentity(credential: Credential | undefined): string {
  if (credential === undefined) return 'anonymous';
  const material =
    credential.kind === 'basic'
      ? `basic\u0000${credential.username}\u0000${credential.password}`
      : credential.kind === 'identityToken'
        ? `identity\u0000${credential.username ?? ''}\u0000${credential.token}`
        : `registry\u0000${credential.token}`;
  return createHash('sha256').update(material).digest('hex').slice(0, 32);
}

export interface TokenKey {
  readonly realm: string;
  readonly service: string | undefined;
  readonly scopes: readonly Scope[];
  /** From credentialIdentity. */
  readonly identity: string;
}

/** The cache key: realm, service, sorted scope set, credential identity. */
export function tokenCacheKey(key: TokenKey): string {
  const scopes = mergeScopes(key.scopes).map(formatScope).join(' ');
  return JSON.stringify([key.realm, key.service ?? '', scopes, key.identity]);
}

/**
 * Bearer tokens by key, refreshed TOKEN_REFRESH_MARGIN_MS before expiry, with one fetch in flight
 * per key however many requests want it (N parallel blob requests ⇒ one token request).
 */
export class TokenCache {
  private readonly tokens = new Map<string, BearerToken>();
  private readonly fetches = new SingleFlight<BearerToken>();

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly refreshMarginMs = TOKEN_REFRESH_MARGIN_MS,
  ) {}

  /** A fresh cached token, or the result of the (shared) fetch. A failed fetch is not cached. */
  get(key: string, fetch: () => Promise<BearerToken>): Promise<BearerToken> {
    const cached = this.peek(key);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.fetches.run(key, async () => {
      const token = await fetch();
      this.tokens.set(key, token);
      return token;
    }).result;
  }

  /** The cached token when it is not within the refresh margin of its expiry. */
  peek(key: string): BearerToken | undefined {
    const cached = this.tokens.get(key);
    if (cached === undefined) return undefined;
    if (this.clock.now() < cached.expiresAt - this.refreshMarginMs) return cached;
    this.tokens.delete(key);
    return undefined;
  }

  /**
   * Drops the token a server rejected, but only if it is still the cached one: concurrent
   * requests that were rejected with the same old token must not discard a newer one.
   */
  invalidate(key: string, rejected: string): void {
    if (this.tokens.get(key)?.token === rejected) this.tokens.delete(key);
  }

  get size(): number {
    return this.tokens.size;
  }
}

/** One token request: where, for what, as whom. */
export interface TokenRequest {
  /** The challenge's realm, resolved against the URL that sent it. */
  readonly realm: URL;
  readonly service?: string;
  readonly scopes: readonly Scope[];
  /** Undefined = anonymous. A registry token never gets here (it is sent to the registry as is). */
  readonly credential?: Credential;
  /** OAuth2 `client_id`. */
  readonly clientId: string;
}

/** What every request to the realm shares: TLS, names for errors, address policy. */
export type TokenRequestBase = Pick<HttpRequest, 'tls' | 'description' | 'facts' | 'allowedAddressClasses'>;

/** The realm statuses after which a password POST is not tried again (containerd's rule: the
 * server does not do OAuth2 password grants; GET with Basic instead). */
export const POST_REFUSED_STATUSES: readonly number[] = [400, 401, 404, 405];

/** The credential's secrets, and the Basic header GET would send: scrubbed from any message. */
function secretsOf(credential: Credential | undefined): Set<string> {
  const secrets = new Set<string>();
  if (credential?.kind === 'basic') {
    secrets.add(credential.password);
    secrets.add(basicHeader(credential.username, credential.password));
  }
  if (credential?.kind === 'identityToken' || credential?.kind === 'registryToken') secrets.add(credential.token);
  return secrets;
}

/** `Authorization: Basic …` for a username and password. */
export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/**
 * OAuth2 POST to the realm: `grant_type=refresh_token` for an identity token, `password` for a
 * username and password (the caller falls back to GET on POST_REFUSED_STATUSES).
 */
export function postForToken(
  transport: Transport,
  request: TokenRequest,
  base: TokenRequestBase,
): Promise<FollowedResponse> {
  const { credential } = request;
  const body = new URLSearchParams(
    credential?.kind === 'identityToken'
      ? { grant_type: 'refresh_token', refresh_token: credential.token }
      : credential?.kind === 'basic'
        ? { grant_type: 'password', username: credential.username, password: credential.password }
        : {},
  );
  if (request.service !== undefined) body.set('service', request.service);
  if (request.scopes.length > 0) body.set('scope', request.scopes.map(formatScope).join(' '));
  body.set('client_id', request.clientId);
  return exchangeFollowingRedirects(transport, {
    ...base,
    url: request.realm,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: body.toString(),
  });
}

/** GET of the realm with `service` and one `scope` per scope, Basic credentials when there are any. */
export function getForToken(
  transport: Transport,
  request: TokenRequest,
  base: TokenRequestBase,
): Promise<FollowedResponse> {
  const url = new URL(request.realm);
  if (request.service !== undefined) url.searchParams.append('service', request.service);
  for (const scope of request.scopes) url.searchParams.append('scope', formatScope(scope));
  const headers: Record<string, string> = { accept: 'application/json' };
  const { credential } = request;
  if (credential?.kind === 'basic') headers.authorization = basicHeader(credential.username, credential.password);
  return exchangeFollowingRedirects(transport, { ...base, url, method: 'GET', headers });
}

/**
 * The token in a realm's answer: a refusal becomes ErrUnauthorized (or the code its error body
 * names) with the server's words, scrubbed; the body is read up to TOKEN_LIMIT and parsed with
 * parseTokenResponse at `now`.
 */
export async function readTokenResponse(
  res: FollowedResponse,
  request: TokenRequest,
  base: TokenRequestBase,
  now: number,
): Promise<BearerToken> {
  const { realm, credential } = request;
  const facts = { ...base.facts, status: res.status, attempts: res.attempts };
  if (res.status !== 200) {
    const secrets = secretsOf(credential);
    const details = parseErrorBody(await readForMessage(res.body, ERROR_BODY_LIMIT), (t) => scrubSecrets(t, secrets));
    const code =
      res.status === 401 || res.status === 403
        ? 'ErrUnauthorized'
        : codeForResponse(res.status, details, 'ErrUnauthorized');
    const who = credential === undefined ? 'anonymous access' : 'the credentials';
    const retried = res.attempts > 1 ? `; gave up after ${res.attempts} attempts` : '';
    throw new RegistryError(
      code,
      `${base.description}: the token server ${realm.host} refused ${who} (HTTP ${res.status}${details.length > 0 ? `: ${describeDetails(details)}` : ''})${retried}`,
      { ...facts, registryErrors: details },
    );
  }
  let body: Buffer;
  try {
    body = await readCapped(res.body, TOKEN_LIMIT, contentLength(res.headers));
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      throw new RegistryError(
        'ErrBodyTooLarge',
        `${base.description}: the token response from ${realm.host} is larger than ${TOKEN_LIMIT} bytes`,
        facts,
      );
    }
    throw err;
  }
  try {
    return parseTokenResponse(body, now);
  } catch (err) {
    if (err instanceof TokenResponseError)
      throw new RegistryError('ErrInvalidTokenResponse', `${base.description}: ${err.message}`, facts);
    throw err;
  }
}
