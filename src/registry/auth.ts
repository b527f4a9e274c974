/**
 * Authentication (docs/semantics.md registry §6, S4, S13, R1): answers a registry's Basic or Bearer challenge with the
 * credential for the host actually contacted, exchanges it for tokens at a realm the policy
 * accepts, caches tokens per (realm, service, scopes, credential), and re-authenticates at most
 * once per request when a token is rejected. A 401 from a host we were redirected to is never
 * answered.
 */
import { Readable } from 'node:stream';
import { SingleFlight, raceSignal } from '../signals/index.ts';
import { classifyHost, checkRealm, type AddressClass } from './realm.ts';
import {
  ChallengeTooLargeError,
  formatScope,
  mergeScopes,
  parseChallenges,
  parseScopes,
  pickChallenge,
  type Challenge,
  type Scope,
} from './challenge.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { ERROR_BODY_LIMIT, discard, readForMessage } from './body.ts';
import type { OperationContext } from './context.ts';
import { RegistryError, factsOf } from './errors.ts';
import { headerValue, headerValues } from './headers.ts';
import { redactUrl, scrubSecrets } from './redact.ts';
import { exchangeFollowingRedirects, sameOrigin, tlsForOtherOrigin, type FollowedResponse } from './redirect.ts';
import {
  POST_REFUSED_STATUSES,
  TokenCache,
  basicHeader,
  credentialIdentity,
  getForToken,
  postForToken,
  readTokenResponse,
  tokenCacheKey,
  type BearerToken,
  type TokenRequest,
  type TokenRequestBase,
} from './token.ts';
import type { HttpMethod, HttpRequest, RequestBody, Transport } from './transport.ts';
import type { Clock, Credential, CredentialSource, EventSink } from './types.ts';

export interface AuthOptions {
  /** Credentials per contacted host; none = anonymous everywhere. */
  readonly credentials?: CredentialSource;
  /** Realm hosts always accepted and trusted with credentials. */
  readonly realmAllowList?: readonly string[];
  /**
   * Also refuse realms whose DNS name resolves to a loopback, private, link-local or unspecified
   * address at connect time (unless the registry is on such an address class itself). Has no
   * effect through an HTTP proxy, which resolves names itself.
   */
  readonly strictRealmAddresses?: boolean;
  /** How a username/password is exchanged: OAuth2 POST first, GET on 400/401/404/405
   * (containerd's rule, the default), or GET with Basic directly (ctr 1.6, skopeo). */
  readonly passwordTokenExchange?: 'post-then-get' | 'get';
  /** OAuth2 `client_id`; default `kimg`. */
  readonly clientId?: string;
  /** How long a looked-up credential is reused; default 60 s. */
  readonly credentialCacheMs?: number;
}

export interface PingResult {
  /** The endpoint's base URL. */
  readonly endpoint: string;
  readonly status: number;
  /** Challenges from a 401 (realm, service, scope: no secrets). */
  readonly challenges: readonly Challenge[];
  /** `Docker-Distribution-Api-Version`, when sent. */
  readonly apiVersion?: string;
  /** 200 or 401: the registry API is there. */
  readonly supportsV2: boolean;
}

interface KnownChallenge {
  readonly challenge: Challenge;
  /** The Bearer realm resolved against the URL that sent it. */
  readonly realm?: URL;
}

type AuthUsed =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic' | 'registryToken'; readonly header: string }
  | { readonly kind: 'bearer'; readonly header: string; readonly key: string; readonly token: string };

export interface AuthorizedRequest {
  readonly url: URL;
  readonly method: HttpMethod;
  readonly headers: Readonly<Record<string, string>>;
  /** A write's body; a function is called again when the request is re-sent with a new token. */
  readonly body?: RequestBody;
  /** See {@link HttpRequest.noRetry}. */
  readonly noRetry?: boolean;
  readonly bodyTimeoutMs?: number;
  /** See {@link HttpRequest.bulk}. */
  readonly bulk?: boolean;
}

/** How long a scope whose fresh token was rejected too fails without asking for another. */
const TWICE_REJECTED_MS = 60_000;

/**
 * Answers registry challenges for one `RegistryClient`: it learns each host's
 * `WWW-Authenticate` challenge, attaches Basic credentials or a Bearer token for the host
 * actually contacted (never a mirror's or a redirect target's), fetches tokens only from realms
 * the policy accepts and caches them per (realm, service, scopes, credential). `send` performs one
 * request with authorization and re-authenticates at most once when a token is rejected; a 401
 * from a host reached by redirect is returned, not answered.
 */
export class Authenticator {
  private readonly challenges = new Map<string, KnownChallenge>();
  /** Each endpoint's ping answer, by label, kept once it came (a failed ping is asked again). */
  private readonly pings = new Map<string, PingResult>();
  private readonly pingFlights = new SingleFlight<PingResult>();
  /** Token cache keys whose freshly fetched token was rejected as well, and when. */
  private readonly twiceRejected = new Map<string, number>();
  /** Looked-up credentials by host, and when the lookup started (a failed one is not kept). */
  private readonly credentialCache = new Map<string, { at: number; value: Credential | undefined }>();
  private readonly credentialLookups = new SingleFlight<Credential | undefined>();
  /** Realms that refused the OAuth2 password POST: GET from then on. */
  private readonly noPost = new Set<string>();

  constructor(
    private readonly transport: Transport,
    private readonly tokens: TokenCache,
    private readonly clock: Clock,
    private readonly options: AuthOptions,
    private readonly onEvent: EventSink | undefined,
  ) {}

  /**
   * Sends a request to an endpoint with the right `Authorization`, following redirects. On a
   * 401 from the endpoint itself it learns the challenge (falling back to the ping's when the
   * 401 has none), fetches a token, and retries; a rejected token is dropped and replaced once,
   * with the challenge's scope merged. Returns the final response, which may still be a 401.
   */
  async send(
    ep: PreparedEndpoint,
    request: AuthorizedRequest,
    scopes: readonly Scope[],
    ctx: OperationContext,
  ): Promise<FollowedResponse> {
    let extra: Scope[] = [];
    let rejections = 0;
    let learned = false;
    for (;;) {
      const auth = await this.authorization(ep, mergeScopes(scopes, extra), ctx);
      const headers: Record<string, string> = { ...request.headers };
      if (auth.kind !== 'none') headers.authorization = auth.header;
      const req: HttpRequest = {
        url: request.url,
        method: request.method,
        headers,
        tls: ep.tls,
        description: ctx.description,
        facts: { ...ctx.facts, host: ep.host },
        ...(ctx.signal !== undefined && { signal: ctx.signal }),
        ...(request.bodyTimeoutMs !== undefined && { bodyTimeoutMs: request.bodyTimeoutMs }),
        ...(request.bulk === true && { bulk: true }),
        ...(request.body !== undefined && { body: request.body }),
        ...(request.noRetry === true && { noRetry: true }),
      };
      const received = await exchangeFollowingRedirects(this.transport, req);
      if (received.status !== 401 || received.crossOrigin) return received;
      // Read the (small) 401 body now: the host slot must be free before any ping or token
      // request to the same host, and the caller may still want the body for its message.
      const body = await readForMessage(received.body, ERROR_BODY_LIMIT);
      const res: FollowedResponse = { ...received, body: Readable.from([body]) };

      let challenge: KnownChallenge | undefined = this.challengeFrom(res, ep, ctx);
      // GCR answers some 401s without a challenge: use the one from the ping.
      if (challenge === undefined) {
        await this.ping(ep, ctx);
        challenge = this.challenges.get(ep.label);
      }
      if (challenge === undefined) return res;
      // Rejected Basic credentials or a registry token would be rejected again.
      if (auth.kind === 'basic' || auth.kind === 'registryToken') return res;
      if (auth.kind === 'bearer') {
        rejections++;
        // A fresh token was rejected too: requests that start later must not fetch a third
        // (R1: at most two token requests per scope against a registry that rejects them all).
        if (rejections >= 2 || this.rejectedTwice(auth.key)) {
          this.twiceRejected.set(auth.key, this.clock.now());
          return res;
        }
        this.tokens.invalidate(auth.key, auth.token);
      } else {
        if (learned) return res;
        learned = true;
        // Basic without a username/password: asking again cannot succeed.
        if (challenge.challenge.scheme === 'basic' && (await this.credentialFor(ep, ctx))?.kind !== 'basic') {
          this.challenges.set(ep.label, challenge);
          return res;
        }
      }
      this.challenges.set(ep.label, challenge);
      extra = mergeScopes(extra, parseScopes(challenge.challenge.params.scope));
    }
  }

  private rejectedTwice(key: string): boolean {
    const at = this.twiceRejected.get(key);
    return at !== undefined && this.clock.now() - at < TWICE_REJECTED_MS;
  }

  /**
   * `GET /v2/` without credentials; learns and caches the endpoint's challenge. Callers that ask
   * while a ping runs share it, each leaving on its own signal; the ping stops when all left.
   */
  ping(ep: PreparedEndpoint, ctx: OperationContext): Promise<PingResult> {
    const known = this.pings.get(ep.label);
    if (known !== undefined) return Promise.resolve(known);
    return this.pingFlights.run(
      ep.label,
      async (signal) => {
        const result = await this.doPing(ep, ctx, signal);
        this.pings.set(ep.label, result);
        return result;
      },
      ctx.signal,
    ).result;
  }

  private async doPing(ep: PreparedEndpoint, ctx: OperationContext, signal: AbortSignal): Promise<PingResult> {
    const res = await exchangeFollowingRedirects(this.transport, {
      url: apiUrl(ep, ''),
      method: 'GET',
      headers: {},
      tls: ep.tls,
      description: `ping ${ep.label}`,
      facts: { registry: ep.registry, host: ep.host },
      signal,
    });
    await discard(res.body);
    const apiVersion = headerValue(res.headers, 'docker-distribution-api-version');
    let challenges: Challenge[] = [];
    if (res.status === 401 && !res.crossOrigin) {
      const known = this.challengeFrom(res, ep, ctx);
      challenges = this.parseOrThrow(res, ep, ctx);
      if (known !== undefined) this.challenges.set(ep.label, known);
    }
    return {
      endpoint: ep.label,
      status: res.status,
      challenges,
      ...(apiVersion !== undefined && { apiVersion }),
      supportsV2: res.status === 200 || res.status === 401,
    };
  }

  private parseOrThrow(res: FollowedResponse, ep: PreparedEndpoint, ctx: OperationContext): Challenge[] {
    try {
      return parseChallenges(headerValues(res.headers, 'www-authenticate'));
    } catch (err) {
      if (err instanceof ChallengeTooLargeError) {
        throw new RegistryError('ErrInvalidChallenge', `${ctx.description}: ${ep.host} sent ${err.message}`, {
          ...ctx.facts,
          host: ep.host,
        });
      }
      throw err;
    }
  }

  /** The challenge to answer from a 401, its realm resolved against the responding URL. */
  private challengeFrom(
    res: FollowedResponse,
    ep: PreparedEndpoint,
    ctx: OperationContext,
  ): KnownChallenge | undefined {
    const challenge = pickChallenge(this.parseOrThrow(res, ep, ctx));
    if (challenge === undefined) return undefined;
    if (challenge.scheme !== 'bearer') return { challenge };
    const realmText = challenge.params.realm;
    let realm: URL | undefined;
    try {
      realm = realmText === undefined || realmText === '' ? undefined : new URL(realmText, res.url);
    } catch {
      realm = undefined;
    }
    if (realm === undefined) {
      throw new RegistryError(
        'ErrInvalidChallenge',
        `${ctx.description}: ${ep.host} sent a Bearer challenge without a valid realm`,
        {
          ...ctx.facts,
          host: ep.host,
        },
      );
    }
    return { challenge, realm };
  }

  private async authorization(
    ep: PreparedEndpoint,
    scopes: readonly Scope[],
    ctx: OperationContext,
  ): Promise<AuthUsed> {
    const credential = await this.credentialFor(ep, ctx);
    if (credential?.kind === 'registryToken') {
      ctx.secrets.add(credential.token);
      return { kind: 'registryToken', header: `Bearer ${credential.token}` };
    }
    const known = this.challenges.get(ep.label);
    if (known === undefined) return { kind: 'none' };
    if (known.challenge.scheme === 'basic') {
      if (credential?.kind !== 'basic') {
        if (credential !== undefined)
          ctx.notes.push(`the registry asks for Basic auth but the credential for ${ep.host} is a token`);
        return { kind: 'none' };
      }
      ctx.secrets.add(credential.password);
      const header = basicHeader(credential.username, credential.password);
      ctx.secrets.add(header);
      return { kind: 'basic', header };
    }

    const realm = known.realm as URL;
    const decision = checkRealm(
      realm,
      ep.base,
      this.options.realmAllowList === undefined ? {} : { allowList: this.options.realmAllowList },
    );
    if (!decision.ok) {
      throw new RegistryError(
        'ErrRealmRefused',
        `${ctx.description}: ${ep.host} named the token realm ${redactUrl(realm)}, refused: ${decision.reason}`,
        { ...ctx.facts, host: ep.host, url: redactUrl(realm) },
      );
    }
    const usable = decision.sendCredentials ? credential : undefined;
    if (credential !== undefined && !decision.sendCredentials && decision.withheldReason !== undefined)
      ctx.notes.push(decision.withheldReason);
    if (credential?.kind === 'basic') ctx.secrets.add(credential.password);
    if (credential?.kind === 'identityToken') ctx.secrets.add(credential.token);
    const service = known.challenge.params.service;
    const key = tokenCacheKey({ realm: realm.href, service, scopes, identity: credentialIdentity(usable) });
    let token: BearerToken;
    try {
      token = await raceSignal(
        this.tokens.get(key, () => this.fetchToken(ep, realm, service, scopes, usable)),
        ctx.signal,
      );
    } catch (err) {
      if (err instanceof RegistryError) {
        const notes = ctx.notes.length > 0 ? ` (${ctx.notes.join('; ')})` : '';
        throw new RegistryError(
          err.code,
          scrubSecrets(`${ctx.description}: ${err.message}${notes}`, ctx.secrets),
          { ...ctx.facts, ...factsOf(err) },
          { cause: err },
        );
      }
      throw err;
    }
    ctx.secrets.add(token.token);
    return { kind: 'bearer', header: `Bearer ${token.token}`, key, token: token.token };
  }

  /**
   * The credential for the host contacted: the call's own source when it brought one (asked
   * every time, never cached here), else the client's, cached per host for `credentialCacheMs`.
   */
  private async credentialFor(ep: PreparedEndpoint, ctx: OperationContext): Promise<Credential | undefined> {
    if (ctx.credentials !== undefined)
      return ctx.credentials(ep.host, { registry: ep.registry, endpoint: ep.endpoint });
    const source = this.options.credentials;
    if (source === undefined) return undefined;
    const ttl = this.options.credentialCacheMs ?? 60_000;
    const cached = this.credentialCache.get(ep.host);
    if (cached !== undefined && this.clock.now() - cached.at < ttl) return cached.value;
    const at = this.clock.now();
    // Not tied to a caller's signal (a credential helper runs to its end): callers wait as before.
    return this.credentialLookups.run(ep.host, async () => {
      const value = await source(ep.host, { registry: ep.registry, endpoint: ep.endpoint });
      this.credentialCache.set(ep.host, { at, value });
      return value;
    }).result;
  }

  /**
   * One token request. Not tied to any caller's signal: it is shared by every request waiting
   * for the same key (timeouts bound it). An identity token is exchanged with POST; a password
   * with POST unless `passwordTokenExchange` says GET or the realm refused the POST before (then
   * GET with Basic, remembered per realm); anonymous with GET.
   */
  private async fetchToken(
    ep: PreparedEndpoint,
    realm: URL,
    service: string | undefined,
    scopes: readonly Scope[],
    credential: Credential | undefined,
  ): Promise<BearerToken> {
    const request: TokenRequest = {
      realm,
      ...(service !== undefined && { service }),
      scopes,
      ...(credential !== undefined && { credential }),
      clientId: this.options.clientId ?? 'kimg',
    };
    const base = this.tokenRequestBase(ep, request);
    let res: FollowedResponse | undefined;
    if (credential?.kind === 'identityToken') {
      res = await postForToken(this.transport, request, base);
    } else if (
      credential?.kind === 'basic' &&
      (this.options.passwordTokenExchange ?? 'post-then-get') === 'post-then-get' &&
      !this.noPost.has(realm.href)
    ) {
      res = await postForToken(this.transport, request, base);
      if (POST_REFUSED_STATUSES.includes(res.status)) {
        await discard(res.body);
        this.noPost.add(realm.href);
        res = undefined;
      }
    }
    res ??= await getForToken(this.transport, request, base);
    const token = await readTokenResponse(res, request, base, this.clock.now());
    this.onEvent?.({
      type: 'tokenFetched',
      realm: redactUrl(realm),
      ...(service !== undefined && { service }),
      scopes: scopes.map(formatScope),
    });
    return token;
  }

  /** TLS for the realm (the endpoint's own settings only on the endpoint's origin, its CAs
   * anywhere), names for errors, and the strict-realm address policy. */
  private tokenRequestBase(ep: PreparedEndpoint, request: TokenRequest): TokenRequestBase {
    const { realm } = request;
    const allowListed = (this.options.realmAllowList ?? []).includes(realm.hostname.toLowerCase());
    const registryClass = classifyHost(ep.base.hostname);
    const allowedAddressClasses: AddressClass[] | undefined =
      this.options.strictRealmAddresses === true && !allowListed
        ? ['public', ...(registryClass === 'public' ? [] : [registryClass])]
        : undefined;
    const tls = sameOrigin(realm, ep.base) ? ep.tls : tlsForOtherOrigin(ep.tls);
    const scopeText = request.scopes.map(formatScope).join(' ');
    return {
      ...(tls !== undefined && { tls }),
      description: `token request to ${realm.host} for ${scopeText || 'registry access'}`,
      facts: { registry: ep.registry, host: realm.host, url: redactUrl(realm) },
      ...(allowedAddressClasses !== undefined && { allowedAddressClasses }),
    };
  }
}
