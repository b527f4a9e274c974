/**
 * A Docker registry token server (the `realm` of `Bearer` challenges) for token-auth tests
 * against Distribution 2.8. It issues real ES256 JWTs that the registry verifies against
 * `certFile` (its `rootcertbundle`): the header's `kid` is the libtrust key ID of the signing
 * key, signatures are raw r||s, and `aud` is a string — all three are 2.8.2 requirements.
 *
 * Serves `GET <realm>?service=…&scope=…` (optionally with Basic credentials) and the OAuth2
 * `POST` form (grant_type=password / refresh_token). Every request is recorded, and `failWith`
 * turns every answer into that status for fault tests.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  randomUUID,
  sign,
  type KeyObject,
} from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from './certs.ts';
import { removeAtExit } from './processes.ts';

/** One requested or granted resource (`repository:NAME:pull,push`). */
export interface ResourceScope {
  type: string;
  name: string;
  actions: string[];
}

export interface GrantContext extends ResourceScope {
  /** The authenticated user; undefined for anonymous requests. */
  user: string | undefined;
}

export interface TokenServerOptions {
  /** user → password. When given, presented credentials must match (else 401). */
  users?: Record<string, string>;
  /** Anonymous requests (no credentials) get tokens; default true. */
  allowAnonymous?: boolean;
  /** The token's `iss`; the registry's `auth.token.issuer`. Default `test-issuer`. */
  issuer?: string;
  /** The token's `aud`; the registry's `auth.token.service`. Default `test-registry`. */
  service?: string;
  /** Token lifetime in seconds; default 300. */
  expiresIn?: number;
  /** Answer every request with this HTTP status (fault tests); change later with `setFailWith`. */
  failWith?: number;
  /** Actions to grant for a requested scope; default: everything asked. */
  grant?: (context: GrantContext) => string[];
  /** Serve HTTPS with this certificate instead of HTTP. */
  tls?: { certPem: string; keyPem: string };
  /** URL path of the realm; default `/token`. */
  path?: string;
  /** Where the signing key and certificate go; default a temp dir removed by `stop()`. */
  dir?: string;
}

export interface TokenRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  query: Record<string, string[]>;
  /** Parsed `application/x-www-form-urlencoded` body of a POST. */
  form?: Record<string, string>;
  /** The user whose credentials were accepted. */
  user?: string;
  status: number;
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: ResourceScope[];
}

export interface IssuedToken {
  token: string;
  claims: TokenClaims;
}

export interface TokenServer {
  /** The realm URL (`http://127.0.0.1:PORT/token`); same as `realm`. */
  url: string;
  realm: string;
  /** `host:port`. */
  host: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key (the registry's `rootcertbundle`). */
  certFile: string;
  certPem: string;
  /** libtrust key ID of the signing key (the JWT header's `kid`). */
  keyId: string;
  requests: TokenRequest[];
  issued: IssuedToken[];
  /** Mints a token directly (e.g. to call the registry without going through a client). */
  issueToken(access: ResourceScope[], subject?: string): IssuedToken;
  setFailWith(status: number | undefined): void;
  stop(): Promise<void>;
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding. */
function base32(data: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of data) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The libtrust key ID Distribution 2.8 matches a JWT `kid` against: sha256 of the DER
 * SubjectPublicKeyInfo, first 30 bytes, base32 (48 chars), in 12 groups of 4 joined by `:`.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const encoded = base32(createHash('sha256').update(spki).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)?.join(':') ?? encoded;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `repository:NAME:pull,push` (NAME may contain `:`), `registry:catalog:*`. */
export function parseScope(scope: string): ResourceScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const match = header === undefined ? null : /^Basic\s+(\S+)$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

/** Starts a token server on 127.0.0.1 (random port) with a fresh ES256 signing key. */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const {
    users,
    allowAnonymous = true,
    issuer = 'test-issuer',
    service = 'test-registry',
    expiresIn = 300,
    grant = (context: GrantContext) => context.actions,
    path = '/token',
  } = options;
  let failWith = options.failWith;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kimg-token-')));
  const forgetDir = ownDir ? removeAtExit(dir) : () => undefined;
  const keys = await createSelfSigned(dir, {
    name: 'token',
    commonName: 'kimg test token signer',
    keyType: 'ec',
    ca: false,
  });
  const privateKey = createPrivateKey(keys.keyPem);
  const keyId = libtrustKeyId(createPublicKey(privateKey));
  const requests: TokenRequest[] = [];
  const issued: IssuedToken[] = [];
  const refreshTokens = new Map<string, string>();

  function issueToken(access: ResourceScope[], subject = ''): IssuedToken {
    const now = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const header = { typ: 'JWT', alg: 'ES256', kid: keyId };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const token: IssuedToken = { token: `${signingInput}.${base64url(signature)}`, claims };
    issued.push(token);
    return token;
  }

  function authenticate(user: string, password: string): string {
    if (users && users[user] !== password)
      throw new TokenRequestError(401, 'unauthorized', 'invalid username or password');
    return user;
  }

  function grantAll(user: string | undefined, scopes: string[]): ResourceScope[] {
    const access: ResourceScope[] = [];
    for (const text of scopes) {
      const scope = parseScope(text);
      if (!scope) throw new TokenRequestError(400, 'invalid_scope', `malformed scope ${JSON.stringify(text)}`);
      const actions = grant({ ...scope, user }).filter(
        (action) => scope.actions.includes(action) || scope.actions.includes('*'),
      );
      if (actions.length) access.push({ type: scope.type, name: scope.name, actions });
    }
    return access;
  }

  function checkService(requested: string | undefined): void {
    if (requested !== undefined && requested !== service) {
      throw new TokenRequestError(400, 'invalid_request', `unknown service ${JSON.stringify(requested)}`);
    }
  }

  async function answer(req: IncomingMessage, record: TokenRequest): Promise<Record<string, unknown>> {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== path) throw new TokenRequestError(404, 'not_found', `no such endpoint ${url.pathname}`);
    if (failWith !== undefined)
      throw new TokenRequestError(failWith, 'injected_failure', `token server told to fail with ${failWith}`);

    if (req.method === 'GET') {
      checkService(url.searchParams.get('service') ?? undefined);
      const basic = parseBasic(req.headers.authorization);
      let user: string | undefined;
      if (basic) user = authenticate(basic.user, basic.password);
      else if (!allowAnonymous) throw new TokenRequestError(401, 'unauthorized', 'credentials required');
      record.user = user;
      const scopes = url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      const { token, claims } = issueToken(grantAll(user, scopes), user ?? '');
      const reply: Record<string, unknown> = {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(claims.iat * 1000).toISOString(),
      };
      if (user !== undefined && url.searchParams.get('offline_token') === 'true') {
        const refresh = randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, user);
        reply.refresh_token = refresh;
      }
      return reply;
    }

    if (req.method === 'POST') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      record.form = form;
      checkService(form.service);
      let user: string;
      if (form.grant_type === 'password') {
        if (form.username === undefined || form.password === undefined) {
          throw new TokenRequestError(400, 'invalid_request', 'password grant needs username and password');
        }
        user = authenticate(form.username, form.password);
      } else if (form.grant_type === 'refresh_token') {
        const known = form.refresh_token === undefined ? undefined : refreshTokens.get(form.refresh_token);
        if (known === undefined) throw new TokenRequestError(401, 'invalid_grant', 'unknown refresh token');
        user = known;
      } else {
        throw new TokenRequestError(
          400,
          'unsupported_grant_type',
          `unsupported grant_type ${JSON.stringify(form.grant_type)}`,
        );
      }
      record.user = user;
      const scopes = (form.scope ?? '').split(' ').filter(Boolean);
      const { token, claims } = issueToken(grantAll(user, scopes), user);
      const reply: Record<string, unknown> = {
        access_token: token,
        token,
        expires_in: expiresIn,
        issued_at: new Date(claims.iat * 1000).toISOString(),
        scope: scopes.join(' '),
      };
      if (form.access_type === 'offline' || form.grant_type === 'refresh_token') {
        const refresh =
          form.grant_type === 'refresh_token' && form.refresh_token
            ? form.refresh_token
            : randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, user);
        reply.refresh_token = refresh;
      }
      return reply;
    }
    throw new TokenRequestError(405, 'method_not_allowed', `method ${req.method} not allowed`);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const query: Record<string, string[]> = {};
    for (const [key, value] of url.searchParams) (query[key] ??= []).push(value);
    const record: TokenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      query,
      status: 0,
    };
    requests.push(record);
    answer(req, record).then(
      (reply) => {
        record.status = 200;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      },
      (err: unknown) => {
        const failure =
          err instanceof TokenRequestError ? err : new TokenRequestError(500, 'server_error', String(err));
        record.status = failure.status;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (failure.status === 401) headers['www-authenticate'] = 'Basic realm="kimg-test-token-server"';
        res
          .writeHead(failure.status, headers)
          .end(JSON.stringify({ error: failure.error, error_description: failure.message }));
      },
    );
  }

  const server = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handle)
    : http.createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const realm = `${options.tls ? 'https' : 'http'}://${host}${path}`;
  let stopped: Promise<void> | undefined;

  return {
    url: realm,
    realm,
    host,
    service,
    issuer,
    certFile: keys.certFile,
    certPem: keys.certPem,
    keyId,
    requests,
    issued,
    issueToken,
    setFailWith(status) {
      failWith = status;
    },
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        if (ownDir) {
          await rm(dir, { recursive: true, force: true });
          forgetDir();
        }
      })();
      return stopped;
    },
  };
}
