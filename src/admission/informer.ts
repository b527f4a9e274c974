/**
 * `secretSource: informer` (docs/semantics.md admission §3.2, §4.8): pull Secrets (both types) and ServiceAccounts held
 * in memory by list + watch against the API server, so an admission never waits for an API call
 * (Kyverno #16051 exhausted its client rate limiter with one GET per admission). In a pod it
 * authenticates with the mounted service account token (re-read on each call: bound tokens
 * rotate) and trusts the mounted CA. Relists on `410 Gone`, re-watches from the last
 * resourceVersion when a watch ends, and backs off on errors.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { KimgError } from '../errors/index.ts';
import { MemoryObjectSource } from './pod-credentials.ts';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InformerOptions {
  /** `https://host:port` of the API server; default from KUBERNETES_SERVICE_HOST/PORT. */
  readonly server?: string;
  /** Bearer token file; default the mounted service account token. */
  readonly tokenFile?: string;
  /** CA (PEM) for the API server; default the mounted service account CA. */
  readonly caPem?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly log?: (line: string) => void;
  /** First retry delay after an error; doubled up to 30 s. Default 500 ms. */
  readonly backoffMs?: number;
  /** Server-side watch timeout; default 300 s. */
  readonly watchTimeoutSeconds?: number;
}

interface Stream {
  readonly name: string;
  readonly kind: 'Secret' | 'ServiceAccount';
  /** Collection path with its field selector. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Keys (namespace/name) this stream put into the source, for relists. */
  readonly keys: Set<string>;
  synced: boolean;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function metadataOf(object: unknown): { namespace: string; name: string; resourceVersion?: string } | undefined {
  if (!isRecord(object) || !isRecord(object['metadata'])) return undefined;
  const m = object['metadata'];
  if (typeof m['name'] !== 'string' || typeof m['namespace'] !== 'string') return undefined;
  return {
    namespace: m['namespace'],
    name: m['name'],
    ...(typeof m['resourceVersion'] === 'string' && { resourceVersion: m['resourceVersion'] }),
  };
}

/** A ClusterObjectSource kept current by list + watch. `synced` once every stream has listed. */
export class SecretInformer extends MemoryObjectSource {
  private readonly server: string;
  private readonly tokenFile: string;
  private readonly dispatcher: Dispatcher;
  private readonly streams: Stream[];
  private readonly controller = new AbortController();
  private readonly log: (line: string) => void;
  private readonly backoffMs: number;
  private readonly watchTimeoutSeconds: number;
  private running: Promise<void>[] = [];

  private constructor(server: string, tokenFile: string, caPem: string | undefined, options: InformerOptions) {
    super();
    this.synced = false;
    this.server = server.replace(/\/$/, '');
    this.tokenFile = tokenFile;
    this.dispatcher = new Agent({ connect: { ...(caPem !== undefined && { ca: caPem }) }, keepAliveTimeout: 30_000 });
    this.log = options.log ?? (() => undefined);
    this.backoffMs = options.backoffMs ?? 500;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
    this.streams = [
      {
        name: 'dockerconfigjson secrets',
        kind: 'Secret',
        path: '/api/v1/secrets',
        query: { fieldSelector: 'type=kubernetes.io/dockerconfigjson' },
        keys: new Set(),
        synced: false,
      },
      {
        name: 'dockercfg secrets',
        kind: 'Secret',
        path: '/api/v1/secrets',
        query: { fieldSelector: 'type=kubernetes.io/dockercfg' },
        keys: new Set(),
        synced: false,
      },
      {
        name: 'service accounts',
        kind: 'ServiceAccount',
        path: '/api/v1/serviceaccounts',
        query: {},
        keys: new Set(),
        synced: false,
      },
    ];
  }

  /** Starts listing and watching; resolves at once (readiness follows `synced`). */
  static async start(options: InformerOptions = {}): Promise<SecretInformer> {
    const env = options.env ?? process.env;
    let server = options.server;
    if (server === undefined) {
      const host = env['KUBERNETES_SERVICE_HOST'];
      const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
      if (host === undefined || host === '')
        throw new KimgError(
          'ErrInvalidConfig',
          'secretSource informer: not in a cluster (KUBERNETES_SERVICE_HOST is unset); use secretSource: none or {file: PATH}',
        );
      server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    const caPem = options.caPem ?? (await readFile(`${SERVICE_ACCOUNT_DIR}/ca.crt`, 'utf8').catch(() => undefined));
    const informer = new SecretInformer(server, options.tokenFile ?? `${SERVICE_ACCOUNT_DIR}/token`, caPem, options);
    informer.running = informer.streams.map((s) => informer.loop(s));
    return informer;
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled(this.running);
    await this.dispatcher.close().catch(() => undefined);
  }

  private async headers(): Promise<Record<string, string>> {
    const token = (await readFile(this.tokenFile, 'utf8').catch(() => '')).trim();
    return { accept: 'application/json', ...(token !== '' && { authorization: `Bearer ${token}` }) };
  }

  private url(stream: Stream, extra: Record<string, string>): string {
    const query = new URLSearchParams({ ...stream.query, ...extra });
    return `${this.server}${stream.path}?${query.toString()}`;
  }

  private async loop(stream: Stream): Promise<void> {
    let delay = this.backoffMs;
    let resourceVersion: string | undefined;
    while (!this.controller.signal.aborted) {
      try {
        if (resourceVersion === undefined) resourceVersion = await this.list(stream);
        resourceVersion = await this.watch(stream, resourceVersion);
        delay = this.backoffMs;
      } catch (err) {
        if (this.controller.signal.aborted) return;
        if (err instanceof KimgError && err.code === 'ErrGone') {
          resourceVersion = undefined;
          continue;
        }
        this.log(
          `informer: ${stream.name}: ${err instanceof Error ? err.message : String(err)}; retrying in ${delay} ms`,
        );
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, 30_000);
        resourceVersion = undefined;
      }
    }
  }

  /** Lists the collection (in pages), replaces this stream's objects; returns the list's resourceVersion. */
  private async list(stream: Stream): Promise<string> {
    const seen = new Set<string>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const res = await request(
        this.url(stream, { limit: '500', ...(continueToken !== undefined && { continue: continueToken }) }),
        {
          dispatcher: this.dispatcher,
          headers: await this.headers(),
          signal: this.controller.signal,
        },
      );
      const text = await res.body.text();
      if (res.statusCode !== 200)
        throw new KimgError('ErrApiServer', `list ${stream.path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      const body: unknown = JSON.parse(text);
      if (!isRecord(body) || !Array.isArray(body['items']))
        throw new KimgError('ErrApiServer', `list ${stream.path}: not a list`);
      for (const item of body['items'] as unknown[]) {
        const m = metadataOf(item);
        if (m === undefined || !isRecord(item)) continue;
        this.upsert({ ...item, kind: stream.kind });
        seen.add(`${m.namespace}/${m.name}`);
      }
      const meta = isRecord(body['metadata']) ? body['metadata'] : {};
      resourceVersion = typeof meta['resourceVersion'] === 'string' ? meta['resourceVersion'] : resourceVersion;
      continueToken = typeof meta['continue'] === 'string' && meta['continue'] !== '' ? meta['continue'] : undefined;
    } while (continueToken !== undefined);
    for (const key of stream.keys) {
      if (seen.has(key)) continue;
      const slash = key.indexOf('/');
      this.remove(stream.kind, key.slice(0, slash), key.slice(slash + 1));
    }
    stream.keys.clear();
    for (const key of seen) stream.keys.add(key);
    if (!stream.synced) {
      stream.synced = true;
      this.synced = this.streams.every((s) => s.synced);
    }
    return resourceVersion;
  }

  /** Follows a watch until the server ends it; returns the last resourceVersion seen. */
  private async watch(stream: Stream, resourceVersion: string): Promise<string> {
    const res = await request(
      this.url(stream, {
        watch: '1',
        allowWatchBookmarks: 'true',
        resourceVersion,
        timeoutSeconds: String(this.watchTimeoutSeconds),
      }),
      {
        dispatcher: this.dispatcher,
        headers: await this.headers(),
        signal: this.controller.signal,
        bodyTimeout: (this.watchTimeoutSeconds + 30) * 1000,
      },
    );
    if (res.statusCode === 410) {
      await res.body.dump();
      throw new KimgError('ErrGone', 'watch: resourceVersion too old');
    }
    if (res.statusCode !== 200)
      throw new KimgError(
        'ErrApiServer',
        `watch ${stream.path}: HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`,
      );
    let last = resourceVersion;
    let buffered = '';
    for await (const chunk of res.body) {
      buffered += (chunk as Buffer).toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === '') continue;
        last = this.event(stream, JSON.parse(line) as unknown) ?? last;
      }
    }
    return last;
  }

  private event(stream: Stream, event: unknown): string | undefined {
    if (!isRecord(event)) return undefined;
    const type = event['type'];
    const object = event['object'];
    if (type === 'ERROR') {
      const code = isRecord(object) ? object['code'] : undefined;
      if (code === 410) throw new KimgError('ErrGone', 'watch: resourceVersion too old');
      throw new KimgError('ErrApiServer', `watch ${stream.path}: ${JSON.stringify(object).slice(0, 200)}`);
    }
    const m = metadataOf(object);
    if (type === 'BOOKMARK')
      return isRecord(object) &&
        isRecord(object['metadata']) &&
        typeof object['metadata']['resourceVersion'] === 'string'
        ? object['metadata']['resourceVersion']
        : undefined;
    if (m === undefined || !isRecord(object)) return undefined;
    const key = `${m.namespace}/${m.name}`;
    if (type === 'DELETED') {
      this.remove(stream.kind, m.namespace, m.name);
      stream.keys.delete(key);
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      this.upsert({ ...object, kind: stream.kind });
      stream.keys.add(key);
    }
    return m.resourceVersion;
  }
}
