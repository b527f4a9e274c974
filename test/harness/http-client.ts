/**
 * A minimal one-shot HTTP(S) client for tests and readiness probes: no connection reuse (so a
 * stopped server leaves no pooled sockets behind), an explicit CA for TLS, the whole body
 * buffered.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface HttpRequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** PEM CA certificate(s) trusted for https URLs (instead of the system store). */
  ca?: string | Buffer;
  /** TLS server name when it differs from the URL's host (e.g. `webhook.kimg.svc`). */
  servername?: string;
  /** Give up (rejecting) after this long; default 10 s. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Sends one request and buffers the whole response. */
export function httpRequest(url: string | URL, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const { method = 'GET', timeoutMs = 10_000 } = options;
  const headers: OutgoingHttpHeaders = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
  return new Promise<HttpResponse>((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    };
    const req =
      target.protocol === 'https:'
        ? https.request(
            target,
            { method, headers, agent: false, ca: options.ca, servername: options.servername },
            onResponse,
          )
        : http.request(target, { method, headers, agent: false }, onResponse);
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${target.href}: no response within ${timeoutMs} ms`)),
    );
    req.once('error', reject);
    req.end(options.body);
  });
}

/** `Authorization` header value for HTTP Basic auth. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
