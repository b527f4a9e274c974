/**
 * The webhook server (docs/semantics.md admission §4.16): HTTPS only, with the certificate and key read from files and
 * reloaded when they change (a Secret mount's symlink swap included); `POST /mutate`,
 * `POST /validate`, `/healthz`, `/readyz` and Prometheus `/metrics`. A bad request gets a 4xx
 * and a reason; nothing a client sends crashes the process.
 *
 * Who may ask: a review names a namespace, and the lookup uses that namespace's pull Secrets, so
 * anyone who can post one learns whether private tags exist. With `clientCaFile` the reviews
 * (`/mutate`, `/validate`) are answered only for a caller whose TLS client certificate that CA
 * signed: the apiserver presents one when its admission kubeconfig names it (kubernetes
 * `--admission-control-config-file`, `WebhookAdmissionConfiguration.kubeConfigFile`). The probes
 * and `/metrics` stay open: the kubelet's probes present no certificate.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { KimgError } from '../errors/index.ts';
import type { AdmissionHandler, Decision } from './handler.ts';
import { WebhookMetrics } from './metrics.ts';
import { formatReview } from './review-log.ts';
import { parseAdmissionReview, parseTimeoutParameter, reviewOf } from './review.ts';

export interface WebhookServerOptions {
  readonly handler: AdmissionHandler;
  /** PEM certificate (chain) and key files, re-read every `reloadIntervalMs`. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM CA bundle: when set, `/mutate` and `/validate` need a client certificate it signed
   * (HTTP 403 otherwise). Re-read with the key pair. */
  readonly clientCaFile?: string;
  /** Default `0.0.0.0`. */
  readonly host?: string;
  /** Default 8443; 0 = any free port. */
  readonly port?: number;
  readonly metrics?: WebhookMetrics;
  /** Default 10 s. */
  readonly reloadIntervalMs?: number;
  /** Largest AdmissionReview accepted; default 8 MiB (the apiserver's own request limit is 3 MiB). */
  readonly maxBodyBytes?: number;
  /** Extra readiness condition (e.g. the Secret informer has synced); undefined = ready. Returns why not. */
  readonly notReady?: () => string | undefined;
  /** One line per notable event (certificate reloads, failures); default none. */
  readonly log?: (line: string) => void;
  /** Also one `log` line per review: uid, kind, namespace, decision, registry look-ups, ms. */
  readonly logReviews?: boolean;
}

interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CAs that sign callers' client certificates, when they are verified. */
  readonly ca: Buffer | undefined;
  readonly hash: string;
}

async function readPair(certFile: string, keyFile: string, clientCaFile: string | undefined): Promise<KeyPair> {
  const [cert, key, ca] = await Promise.all([
    readFile(certFile),
    readFile(keyFile),
    clientCaFile === undefined ? undefined : readFile(clientCaFile),
  ]);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`the client CA file ${clientCaFile} holds no PEM certificate`);
  // Fails here (not at the first handshake) when the pair does not fit.
  createSecureContext(contextOf({ cert, key, ca }));
  const hash = createHash('sha256').update(cert).update('\u0000').update(key).update('\u0000');
  return { cert, key, ca, hash: hash.update(ca ?? '').digest('hex') };
}

function contextOf(pair: { cert: Buffer; key: Buffer; ca: Buffer | undefined }) {
  return {
    cert: pair.cert,
    key: pair.key,
    ...(pair.ca !== undefined && { ca: pair.ca }),
    minVersion: 'TLSv1.2' as const,
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `the body is larger than ${limit} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `the body is larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size)),
    );
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
  extra: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length, ...extra });
  res.end(bytes);
}

/**
 * The admission webhook's HTTPS server: `POST /mutate` and `POST /validate` through an
 * `AdmissionHandler`, `/healthz`, `/readyz` and `/metrics`; the certificate and key are read from
 * files and reloaded when they change. A malformed request gets a 4xx with a reason; nothing a
 * client sends crashes the process. `WebhookServer.start` listens, `close()` stops it.
 */
export class WebhookServer {
  readonly metrics: WebhookMetrics;
  private readonly server: Server;
  private readonly options: WebhookServerOptions;
  private pair: KeyPair;
  private timer: NodeJS.Timeout | undefined;
  private reloading = false;
  private closed = false;

  private constructor(options: WebhookServerOptions, pair: KeyPair) {
    this.options = options;
    this.pair = pair;
    this.metrics = options.metrics ?? new WebhookMetrics();
    // The handshake asks for a certificate but lets callers without one in (the probes); the
    // review paths then refuse them, naming why.
    const clientAuth = { requestCert: options.clientCaFile !== undefined, rejectUnauthorized: false };
    this.server = createServer({ ...contextOf(pair), ...clientAuth }, (req, res) => {
      this.route(req, res).catch((err: unknown) => {
        this.log(`request failed: ${err instanceof Error ? err.message : String(err)}`);
        send(res, 500, 'internal error\n');
      });
    });
    // The apiserver keeps connections open between calls.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.requestTimeout = 60_000;
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** Reads the key pair, listens, and starts watching the files. */
  static async start(options: WebhookServerOptions): Promise<WebhookServer> {
    let pair: KeyPair;
    try {
      pair = await readPair(options.certFile, options.keyFile, options.clientCaFile);
    } catch (err) {
      const clientCa = options.clientCaFile === undefined ? '' : ` and client CA ${options.clientCaFile}`;
      throw new KimgError(
        'ErrTlsConfig',
        `cannot use the serving certificate ${options.certFile} with key ${options.keyFile}${clientCa}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const server = new WebhookServer(options, pair);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port ?? 8443, options.host ?? '0.0.0.0', () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const interval = options.reloadIntervalMs ?? 10_000;
    server.timer = setInterval(() => void server.reloadCertificates(), interval);
    server.timer.unref();
    return server;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Re-reads the key pair; true when a new one is now served. A broken pair keeps the old one. */
  async reloadCertificates(): Promise<boolean> {
    if (this.reloading || this.closed) return false;
    this.reloading = true;
    try {
      const pair = await readPair(this.options.certFile, this.options.keyFile, this.options.clientCaFile);
      if (pair.hash === this.pair.hash) return false;
      this.server.setSecureContext(contextOf(pair));
      this.pair = pair;
      this.log(`serving certificate reloaded from ${this.options.certFile}`);
      return true;
    } catch (err) {
      this.log(
        `serving certificate not reloaded (keeping the current one): ${err instanceof Error ? err.message : String(err)}`,
      );
      return false;
    } finally {
      this.reloading = false;
    }
  }

  /**
   * Stops listening; requests in progress get up to `graceMs` to finish (default 0: connections
   * are closed at once), idle keep-alive connections are closed now.
   */
  async close(graceMs = 0): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.server.closeAllConnections();
    await closed;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query = q < 0 ? '' : target.slice(q + 1);
    if (path === '/mutate' || path === '/validate') {
      if (req.method !== 'POST') {
        this.metrics.badRequests.inc({ code: '405' });
        send(res, 405, `${path} takes POST\n`, undefined, { allow: 'POST' });
        req.resume();
        return;
      }
      const refused = this.unauthorizedCaller(req);
      if (refused !== undefined) {
        this.metrics.badRequests.inc({ code: '403' });
        // Nothing of the body is read; the connection ends with the answer.
        send(res, 403, `${refused}\n`, undefined, { connection: 'close' });
        return;
      }
      await this.review(path === '/mutate' ? 'mutate' : 'validate', req, res, query);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.metrics.badRequests.inc({ code: '405' });
      send(res, 405, 'method not allowed\n', undefined, { allow: 'GET' });
      req.resume();
      return;
    }
    req.resume();
    switch (path) {
      case '/healthz':
        send(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const why = this.options.notReady?.();
        send(res, why === undefined ? 200 : 503, why === undefined ? 'ok\n' : `not ready: ${why}\n`);
        return;
      }
      case '/metrics':
        send(res, 200, this.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
        return;
      default:
        this.metrics.badRequests.inc({ code: '404' });
        send(res, 404, `no such path: ${path.slice(0, 100)} (use /mutate, /validate, /healthz, /readyz, /metrics)\n`);
    }
  }

  /** Why the caller may not ask for reviews, or undefined when it may. */
  private unauthorizedCaller(req: IncomingMessage): string | undefined {
    if (this.options.clientCaFile === undefined) return undefined;
    const socket = req.socket as TLSSocket;
    if (socket.authorized) return undefined;
    const presented = Object.keys(socket.getPeerCertificate()).length > 0;
    return presented
      ? `the client certificate is not signed by the webhook's client CA (${String(socket.authorizationError)})`
      : "a client certificate signed by the webhook's client CA is required (--client-ca-file)";
  }

  private async review(
    webhook: 'mutate' | 'validate',
    req: IncomingMessage,
    res: ServerResponse,
    query: string,
  ): Promise<void> {
    const started = performance.now();
    let body: Buffer;
    try {
      body = await readBody(req, this.options.maxBodyBytes ?? 8 << 20);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      this.metrics.badRequests.inc({ code: String(status) });
      send(res, status, `${err instanceof Error ? err.message : 'cannot read the body'}\n`);
      return;
    }
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) {
      this.metrics.badRequests.inc({ code: '400' });
      send(res, 400, `${parsed.reason}\n`);
      return;
    }
    let lookups = 0;
    let decision: Decision;
    if (webhook === 'mutate') {
      const timeout = query === '' ? null : new URLSearchParams(query).get('timeout');
      decision = await this.options.handler.mutate(parsed.request, {
        timeoutMs: parseTimeoutParameter(timeout),
        onLookup: () => lookups++,
      });
    } else {
      decision = this.options.handler.validate(parsed.request);
    }
    send(res, 200, JSON.stringify(reviewOf(decision.response)), 'application/json');
    const ms = performance.now() - started;
    this.metrics.decision(webhook, decision.reason, ms / 1000);
    if (this.options.logReviews === true) this.log(formatReview(webhook, parsed.request, decision, lookups, ms));
  }
}
