/**
 * A hostile registry for attack tests: documents of our choosing served by the fault proxy in
 * front of the real registry (which still serves every blob), small HTTP servers that record
 * what reaches them or answer without end, and uploads straight into the registry.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { fault, type FaultRequest, type FaultRule } from '../harness/index.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const digestOf = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Document {
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly digest: string;
}

/**
 * Manifests the registry never had, served by tag and by digest (HEAD with the headers a
 * registry sends, GET with the body). Everything else goes to `fallback`, then upstream.
 */
export class HostileDocuments {
  private readonly documents = new Map<string, Document>();
  fallback: FaultRule | undefined;

  /** Serves `document` (JSON-encoded unless bytes or a string) as `repo:tag`; returns its digest. */
  serve(repo: string, tag: string | undefined, document: unknown, contentType = OCI_MANIFEST): string {
    const bytes = Buffer.isBuffer(document)
      ? document
      : Buffer.from(typeof document === 'string' ? document : JSON.stringify(document));
    const digest = digestOf(bytes);
    const served = { bytes, contentType, digest };
    if (tag !== undefined) this.documents.set(`/v2/${repo}/manifests/${tag}`, served);
    this.documents.set(`/v2/${repo}/manifests/${digest}`, served);
    return digest;
  }

  /** Descriptor of a document served before. */
  descriptor(document: unknown, mediaType = OCI_MANIFEST): { mediaType: string; digest: string; size: number } {
    const bytes = Buffer.isBuffer(document)
      ? document
      : Buffer.from(typeof document === 'string' ? document : JSON.stringify(document));
    return { mediaType, digest: digestOf(bytes), size: bytes.length };
  }

  readonly rule = (r: FaultRequest) => {
    const doc = this.documents.get(r.path);
    if (doc === undefined) return this.fallback?.(r);
    const headers = {
      'content-type': doc.contentType,
      'docker-content-digest': doc.digest,
      'content-length': String(doc.bytes.length),
    };
    return fault.status(200, headers, r.method === 'HEAD' ? undefined : doc.bytes);
  };
}

export interface RecordedHit {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedHit[];
  /** Body bytes handed to the socket so far. */
  bytesWritten: number;
  stop(): Promise<void>;
}

/** An HTTP server on loopback that records every request and answers with `handler`. */
export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, server: TestServer) => void,
): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const requests: RecordedHit[] = [];
  const holder: { self?: TestServer } = {};
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.on('error', () => undefined);
    if (holder.self !== undefined) handler(req, res, holder.self);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const self: TestServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    bytesWritten: 0,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  holder.self = self;
  return self;
}

/** Answers `status` with a chunked body that never ends (until `safetyLimit` bytes: a client
 * that reads it all fails its test rather than hang it). */
export function endlessBody(
  status: number,
  safetyLimit = 256 * 1024 * 1024,
): (req: IncomingMessage, res: ServerResponse, server: TestServer) => void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  return (_req, res, server) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.write('{"errors":[{"code":"X","message":"');
    const pump = (): void => {
      while (!res.destroyed) {
        if (server.bytesWritten >= safetyLimit) {
          res.end('"}]}');
          return;
        }
        server.bytesWritten += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };
}

/** Resolves `*.test` names to 127.0.0.1 (the client's resolver hook), others normally. */
export const testLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname.endsWith('.test')) {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback);
};

/** Uploads `bytes` as a blob of `repo` straight into a registry (monolithic upload). */
export async function uploadBlob(
  registryUrl: string,
  repo: string,
  bytes: Uint8Array,
): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start for ${repo}: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`upload of ${digest} to ${repo}: HTTP ${put.status}: ${await put.text()}`);
  return { digest, size: bytes.byteLength };
}

/** Puts a manifest into a registry under `tag`; returns its digest. */
export async function putManifest(
  registryUrl: string,
  repo: string,
  tag: string,
  document: unknown,
  mediaType = OCI_MANIFEST,
): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(document));
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': mediaType },
  });
  if (res.status !== 201) throw new Error(`put manifest ${repo}:${tag}: HTTP ${res.status}: ${await res.text()}`);
  return digestOf(bytes);
}
