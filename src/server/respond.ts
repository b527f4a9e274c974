/** Writing answers: JSON bodies, spec errors, and the headers every answer carries. */
import type { ServerResponse } from 'node:http';
import { DistributionError } from './errors.ts';

/** Every answer says which API it speaks (Docker clients read it on `/v2/`). */
export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' } as const;

/** Sends `body` (JSON text or bytes) with its length; nothing after the headers for HEAD. */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string | number> = {},
  head = false,
): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    ...API_VERSION_HEADER,
    'content-type': 'application/json',
    ...headers,
    'content-length': bytes.byteLength,
  });
  if (head) res.end();
  else res.end(bytes);
}

/** Sends a spec error; the body is left out for HEAD, as HTTP says. */
export function sendError(res: ServerResponse, err: DistributionError, head = false): void {
  if (res.headersSent) {
    // Too late for a status: the client must not take what it got for a whole answer.
    res.destroy(err);
    return;
  }
  send(res, err.status, err.body(), err.headers, head);
}
