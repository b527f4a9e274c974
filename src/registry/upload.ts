/**
 * Uploading blobs and manifests on one endpoint (OCI distribution spec, "Pushing blobs" and
 * "Pushing manifests"; distribution/distribution registry/handlers/blobupload.go v2.8): HEAD
 * first, cross-repository mount, one `PUT` for small blobs, `PATCH` chunks with `Content-Range`
 * for large ones, resumed from the offset the registry reports and restarted when the session
 * is gone. Every byte sent is hashed; nothing is committed whose content is not the digest's.
 */
import { Readable } from 'node:stream';
import type { ChunkedBody } from './bulk-upload.ts';
import { DigestVerifier, VerifyError, digestOf, isValidDigest, tryParseDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { Authenticator } from './auth.ts';
import { discard, readForMessage } from './body.ts';
import { pullScope, type Scope } from './challenge.ts';
import { errorFromResponse, type OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError } from './errors.ts';
import { contentLength, headerValue } from './headers.ts';
import { errorCode, sanitizeCause } from './redact.ts';
import { resolveLocation, sameOrigin, tlsForOtherOrigin, type FollowedResponse } from './redirect.ts';
import { backoffDelay, DEFAULT_RETRY_POLICY } from './retry.ts';
import type { HttpMethod, RequestBody, Transport } from './transport.ts';
import type { CallOptions, Clock, RepositoryRef } from './types.ts';

/** Where a blob's bytes come from: opened again at an offset after a failure. */
export interface BlobSource {
  /**
   * The content from byte `offset` to the end. With `reuse`, the caller is done with each chunk
   * once it asks for the next, and the source may then reuse the chunk's memory.
   */
  open(offset: number, signal?: AbortSignal, reuse?: boolean): AsyncIterable<Uint8Array>;
}

export interface PushBlobOptions extends CallOptions {
  /** Another repository of the same registry that holds the blob: mount it from there. */
  readonly mountFrom?: string;
  /** Blobs up to this size go in one `PUT`; default 16 MiB. */
  readonly monolithicMaxBytes?: number;
  /** `PATCH` chunk size for larger blobs; default 512 MiB. */
  readonly chunkBytes?: number;
  /** Skip the `HEAD` (the caller knows the blob is missing). */
  readonly skipExistsCheck?: boolean;
  /** Bytes sent so far (a few times a second while a body streams), and the registry's
   * accepted offset after each request (lower after a resume). */
  readonly onProgress?: (bytes: number) => void;
  /** Awaited once the upload session is open, before the first byte is sent: a caller limiting
   * bodies in flight holds an upload here, its session ready, until its turn. */
  readonly waitToSend?: () => Promise<void>;
  /** Every byte of a chunked upload is with the registry; only the closing `PUT` remains, which
   * may take a while (Distribution fsyncs the blob there). A caller limiting bodies in flight
   * may start the next one now. Not called for a monolithic upload (one request for both). */
  readonly onSent?: () => void;
  /** Most session restarts and resumes without progress in a row; default 3. */
  readonly maxAttemptsWithoutProgress?: number;
}

export interface PushBlobResult {
  readonly digest: string;
  readonly size: number;
  /** `exists`: the destination had it; `mounted`: linked from `mountFrom`; `pushed`: uploaded. */
  readonly outcome: 'exists' | 'mounted' | 'pushed';
  /** Body bytes sent (a resumed or restarted upload sends some twice). */
  readonly bytesSent: number;
  readonly resumes: number;
  readonly restarts: number;
}

export interface PutManifestResult {
  readonly digest: string;
  readonly size: number;
  /** The `OCI-Subject` header: the registry indexed the manifest's `subject` for its referrers
   * API. Absent for a manifest with a subject, the pusher maintains the fallback tag. */
  readonly subject?: string;
}

export interface UploadDeps {
  readonly auth: Authenticator;
  readonly transport: Transport;
  readonly clock: Clock;
}

const DEFAULT_MONOLITHIC = 16 * 1024 * 1024;
/** Distribution re-opens (and may re-hash) the upload file for every PATCH: one long PATCH per
 * blob (as skopeo sends) was ≈ 40 % faster than 64 MiB chunks for a 128 MiB blob here. */
const DEFAULT_CHUNK = 512 * 1024 * 1024;
const STALL_MS = 60_000;
/** Bodies at least this large are sent outside undici, their chunks' memory reused (see
 * bulk-upload.ts). */
const BULK_BYTES = 1024 * 1024;
/** Fresh sessions per blob at most, progress or not. */
const MAX_RESTARTS = 8;

/** The `pull,push` scope for a destination repository. */
export function pushScope(repository: string): Scope {
  return { type: 'repository', name: repository, actions: ['pull', 'push'] };
}

/** A failure of one upload request that the session may survive (resume or restart). */
class UploadInterrupted extends Error {
  constructor(
    readonly reason: string,
    readonly sessionGone: boolean,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

/** Sends upload requests: to the endpoint's own origin with its credentials, to any other origin
 * (a `Location` elsewhere) without them, as redirects are treated. */
class UploadSession {
  constructor(
    readonly ep: PreparedEndpoint,
    readonly scopes: readonly Scope[],
    readonly ctx: OperationContext,
    readonly deps: UploadDeps,
  ) {}

  async send(
    method: HttpMethod,
    url: URL,
    headers: Record<string, string>,
    body?: RequestBody,
    retry = false,
  ): Promise<FollowedResponse> {
    const { ep, ctx } = this;
    const bulk = body !== undefined && Number(headers['content-length'] ?? 0) >= BULK_BYTES;
    if (sameOrigin(url, ep.base)) {
      return this.deps.auth.send(
        ep,
        {
          url,
          method,
          headers,
          bodyTimeoutMs: STALL_MS,
          ...(body !== undefined && { body }),
          ...(bulk && { bulk: true }),
          ...(!retry && { noRetry: true }),
        },
        this.scopes,
        ctx,
      );
    }
    // Another origin: no credentials, and of the endpoint's TLS settings only its CAs.
    const tls = tlsForOtherOrigin(ep.tls);
    const res = await this.deps.transport.exchange({
      url,
      method,
      headers,
      ...(body !== undefined && { body }),
      ...(tls !== undefined && { tls }),
      description: ctx.description,
      facts: { ...ctx.facts, host: url.host },
      bodyTimeoutMs: STALL_MS,
      ...(bulk && { bulk: true }),
      ...(!retry && { noRetry: true }),
      ...(ctx.signal !== undefined && { signal: ctx.signal }),
    });
    return { ...res, crossOrigin: true, redirects: 0 };
  }

  /** The next session URL from a response's `Location`, relative or absolute. */
  location(res: FollowedResponse, current: URL): URL {
    const text = headerValue(res.headers, 'location');
    const { ctx } = this;
    if (text === undefined || text === '') {
      throw new RegistryError(
        'ErrUnexpectedStatus',
        `${ctx.description}: ${res.url.host} answered ${res.status} without a Location for the upload`,
        { ...ctx.facts, host: res.url.host, status: res.status },
      );
    }
    return resolveLocation(text, current, {
      what: 'upload Location',
      host: res.url.host,
      description: ctx.description,
      facts: { ...ctx.facts, host: res.url.host },
    });
  }
}

/** `HEAD /v2/<name>/blobs/<digest>`: true when present (with the descriptor's size). */
export async function blobExistsOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  descriptor: Descriptor,
  scopes: readonly Scope[],
  ctx: OperationContext,
  deps: UploadDeps,
): Promise<boolean> {
  const url = apiUrl(ep, `${repo.path}/blobs/${descriptor.digest}`);
  const res = await deps.auth.send(ep, { url, method: 'HEAD', headers: {} }, scopes, ctx);
  await discard(res.body);
  if (res.status === 404) return false;
  if (res.status !== 200) throw await errorFromResponse(res, ctx, 'ErrBlobUnknown', deps.clock.now());
  const length = contentLength(res.headers);
  if (length !== undefined && length !== descriptor.size) {
    throw new RegistryError(
      'ErrSizeMismatch',
      `${ctx.description}: ${res.url.host} holds ${descriptor.digest} with ${length} bytes, the descriptor says ${descriptor.size}`,
      { ...ctx.facts, host: res.url.host, expectedSize: descriptor.size, actualSize: length },
    );
  }
  return true;
}

/**
 * Uploads one blob to `repo` on `ep` unless it is there already. The bytes are hashed as they
 * are sent; the final `PUT ?digest=` is only sent when they match the descriptor, so a corrupt
 * source never lands. A connection lost mid-`PATCH` is resumed from the offset the registry
 * reports (`GET` on the session), a session that is gone (404, or refused as invalid) starts over.
 */
export async function pushBlobOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  descriptor: Descriptor,
  source: BlobSource,
  ctx: OperationContext,
  deps: UploadDeps,
  options: PushBlobOptions = {},
): Promise<PushBlobResult> {
  const { digest, size } = descriptor;
  if (!isValidDigest(digest) || !Number.isSafeInteger(size) || size < 0) {
    throw new RegistryError('ErrInvalidArgument', `${ctx.description}: invalid descriptor`, ctx.facts);
  }
  const mountFrom = options.mountFrom !== undefined && options.mountFrom !== repo.path ? options.mountFrom : undefined;
  const scopes = [pushScope(repo.path), ...(mountFrom !== undefined ? [pullScope(mountFrom)] : [])];
  const session = new UploadSession(ep, scopes, ctx, deps);
  const counters = { bytesSent: 0, resumes: 0, restarts: 0 };
  const result = (outcome: PushBlobResult['outcome']): PushBlobResult => ({ digest, size, outcome, ...counters });

  if (options.skipExistsCheck !== true && (await blobExistsOnEndpoint(ep, repo, descriptor, scopes, ctx, deps)))
    return result('exists');

  const uploads = apiUrl(ep, `${repo.path}/blobs/uploads/`);
  const start = async (mount: boolean): Promise<{ mounted: true } | { mounted: false; location: URL }> => {
    const url = new URL(uploads);
    if (mount && mountFrom !== undefined) {
      url.searchParams.append('mount', digest);
      url.searchParams.append('from', mountFrom);
    }
    const res = await session.send('POST', url, { 'content-length': '0' }, undefined, true);
    if (res.status === 201 && mount && mountFrom !== undefined) {
      await discard(res.body);
      return { mounted: true };
    }
    if (res.status !== 202) throw await errorFromResponse(res, ctx, 'ErrNameUnknown', deps.clock.now());
    await discard(res.body);
    return { mounted: false, location: session.location(res, url) };
  };

  const first = await start(true);
  if (first.mounted) {
    options.onProgress?.(size);
    return result('mounted');
  }
  let location = first.location;
  await options.waitToSend?.();
  const maxWithoutProgress = options.maxAttemptsWithoutProgress ?? 3;
  const monolithic = size <= (options.monolithicMaxBytes ?? DEFAULT_MONOLITHIC);
  const chunkBytes = Math.max(1, options.chunkBytes ?? DEFAULT_CHUNK);
  const hasher = new SendHasher(descriptor, source, ctx, options.onProgress);
  let offset = 0;
  let withoutProgress = 0;
  /** The furthest offset any attempt reached: a restart that gets no further is no progress. */
  let furthest = 0;

  const recover = async (err: UploadInterrupted): Promise<void> => {
    const progressed = offset > furthest;
    furthest = Math.max(furthest, offset);
    withoutProgress = progressed ? 0 : withoutProgress + 1;
    if (withoutProgress >= maxWithoutProgress || counters.restarts >= MAX_RESTARTS) {
      throw new RegistryError(
        'ErrResumeExhausted',
        `${ctx.description}: upload to ${location.host} failed ${withoutProgress} times in a row without progress at byte ${offset} of ${size} (${err.reason}); ${counters.resumes} resumes, ${counters.restarts} restarts`,
        { ...ctx.facts, host: location.host, expectedSize: size, actualSize: offset },
        { cause: err.cause ?? err },
      );
    }
    if (!progressed) await deps.clock.sleep(backoffDelay(withoutProgress, DEFAULT_RETRY_POLICY), ctx.signal);
    if (!err.sessionGone && !monolithic) {
      const status = await session.send('GET', location, {}, undefined, true).catch((e: unknown) => {
        if (ctx.signal?.aborted) throw e;
        return undefined;
      });
      if (status !== undefined) {
        await discard(status.body);
        if (status.status === 204 || status.status === 202) {
          const reported = parseUploadRange(headerValue(status.headers, 'range'));
          if (reported !== undefined && reported <= size) {
            location =
              headerValue(status.headers, 'location') === undefined ? location : session.location(status, location);
            counters.resumes++;
            offset = reported;
            return;
          }
        }
      }
    }
    // The session is gone or cannot say where it is: a fresh one, from byte 0.
    counters.restarts++;
    offset = 0;
    const fresh = await start(false);
    if (fresh.mounted) throw new Error('unreachable: a plain upload cannot mount');
    location = fresh.location;
  };

  for (;;) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    try {
      if (monolithic) {
        hasher.expectFrom(0);
        await finish(session, location, descriptor, hasher, counters, ctx, deps, true);
        options.onProgress?.(size);
        return result('pushed');
      }
      while (offset < size) {
        const length = Math.min(chunkBytes, size - offset);
        hasher.expectFrom(offset);
        location = await patchChunk(session, location, offset, length, hasher, counters, ctx, deps);
        offset += length;
        options.onProgress?.(offset);
      }
      options.onSent?.();
      await finish(session, location, descriptor, hasher, counters, ctx, deps, false);
      return result('pushed');
    } catch (err) {
      if (!(err instanceof UploadInterrupted)) {
        hasher.close();
        throw err;
      }
      hasher.close();
      await recover(err);
    }
  }
}

/** `Range: 0-<last>` from a session status: the next offset (a `0-0` is taken as nothing yet:
 * Distribution reports an empty and a one-byte upload alike, and re-sending byte 0 is harmless). */
function parseUploadRange(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(?:bytes=)?0-(\d{1,15})$/.exec(value.trim());
  if (match?.[1] === undefined) return undefined;
  const last = Number(match[1]);
  return last === 0 ? 0 : last + 1;
}

/** Is this failure one the upload can survive by asking the registry where it stands? */
function interruption(err: unknown, what: string, ctx: OperationContext, hasher: SendHasher): never {
  if (ctx.signal?.aborted) throw ctx.signal.reason;
  hasher.throwFailure();
  if (err instanceof UploadInterrupted) throw err;
  if (err instanceof RegistryError) {
    if (['ErrConnection', 'ErrRegistryUnavailable'].includes(err.code))
      throw new UploadInterrupted(`${what}: ${err.code}`, false, { cause: err });
    throw err;
  }
  throw new UploadInterrupted(`${what}: ${errorCode(err) ?? sanitizeCause(err).message}`, false, { cause: err });
}

/** What a failed session request means: retryable statuses and a lost session interrupt the
 * upload, anything else is an error naming the blob. */
async function failedResponse(res: FollowedResponse, what: string, ctx: OperationContext, deps: UploadDeps) {
  if (res.status === 404 || res.status === 416 || res.status === 400) {
    // 404 BLOB_UPLOAD_UNKNOWN: expired; 400 BLOB_UPLOAD_INVALID / 416: the registry's offset
    // is not ours (Distribution cancels such a session).
    const body = await readForMessage(res.body);
    const text = body.toString('utf8');
    if (res.status !== 400 || /BLOB_UPLOAD_(INVALID|UNKNOWN)/.test(text)) {
      return new UploadInterrupted(`${what}: HTTP ${res.status} from ${res.url.host}`, true);
    }
    return errorFromResponse({ ...res, body: Readable.from([body]) }, ctx, 'ErrBlobUnknown', deps.clock.now());
  }
  if (res.status >= 500 || res.status === 408 || res.status === 429) {
    await discard(res.body);
    return new UploadInterrupted(`${what}: HTTP ${res.status} from ${res.url.host}`, false);
  }
  return errorFromResponse(res, ctx, 'ErrBlobUnknown', deps.clock.now());
}

async function patchChunk(
  session: UploadSession,
  location: URL,
  offset: number,
  length: number,
  hasher: SendHasher,
  counters: { bytesSent: number },
  ctx: OperationContext,
  deps: UploadDeps,
): Promise<URL> {
  const what = `PATCH bytes ${offset}-${offset + length - 1}`;
  let res: FollowedResponse;
  try {
    res = await session.send(
      'PATCH',
      location,
      {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
        'content-range': `${offset}-${offset + length - 1}`,
      },
      hasher.body(offset, length, counters),
    );
  } catch (err) {
    interruption(err, what, ctx, hasher);
  }
  if (res.status !== 202) {
    hasher.throwFailure();
    throw await failedResponse(res, what, ctx, deps);
  }
  await discard(res.body);
  const reported = parseUploadRange(headerValue(res.headers, 'range'));
  if (reported !== undefined && reported !== offset + length) {
    throw new UploadInterrupted(`${what}: the registry reports ${reported} bytes`, false);
  }
  return session.location(res, location);
}

/** The closing `PUT <location>?digest=` (with the whole body for a monolithic upload). */
async function finish(
  session: UploadSession,
  location: URL,
  descriptor: Descriptor,
  hasher: SendHasher,
  counters: { bytesSent: number },
  ctx: OperationContext,
  deps: UploadDeps,
  withBody: boolean,
): Promise<void> {
  const url = new URL(location);
  url.searchParams.append('digest', descriptor.digest);
  if (!withBody) hasher.verify();
  const what = `PUT ${descriptor.digest}`;
  let res: FollowedResponse;
  try {
    res = await session.send(
      'PUT',
      url,
      {
        'content-type': 'application/octet-stream',
        'content-length': String(withBody ? descriptor.size : 0),
      },
      withBody ? hasher.body(0, descriptor.size, counters, true) : undefined,
    );
  } catch (err) {
    interruption(err, what, ctx, hasher);
  }
  if (res.status !== 201 && res.status !== 204) {
    if (hasher.failure !== undefined) await discard(res.body);
    hasher.throwFailure();
    throw await failedResponse(res, what, ctx, deps);
  }
  await discard(res.body);
  const reported = headerValue(res.headers, 'docker-content-digest');
  if (reported !== undefined && isValidDigest(reported) && sameAlgorithm(reported, descriptor.digest)) {
    if (reported !== descriptor.digest) {
      throw new RegistryError(
        'ErrDigestMismatch',
        `${ctx.description}: ${res.url.host} stored the blob as ${reported}, expected ${descriptor.digest}`,
        { ...ctx.facts, host: res.url.host, expectedDigest: descriptor.digest, actualDigest: reported },
      );
    }
  }
}

/** Progress while a body streams is reported at most this often. */
const SENT_PROGRESS_MS = 100;

/** Thrown inside a request body to stop it; the real failure is kept on the hasher. */
class BodyStopped extends Error {}

/**
 * Streams a source's bytes into request bodies and hashes them in order. A resume that starts
 * before what was hashed re-reads the prefix from the source (rare), so the final hash always
 * covers every byte the registry holds.
 */
class SendHasher {
  private verifier: DigestVerifier;
  private iterator: AsyncIterator<Uint8Array> | undefined;
  private iteratorOffset = 0;
  private pending: Uint8Array | undefined;
  private abort: AbortController | undefined;
  /** Why a body stopped: the source failed, or the content is not the digest's. Fatal. */
  failure: unknown;

  constructor(
    readonly descriptor: Descriptor,
    readonly source: BlobSource,
    readonly ctx: OperationContext,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    this.verifier = new DigestVerifier(descriptor.digest, descriptor.size);
  }

  /** When progress was last reported while sending. */
  private reportedAt = 0;

  /** Makes the hash and the source iterator line up with `offset` before sending from it. */
  expectFrom(offset: number): void {
    if (this.verifier.bytes !== offset || this.iteratorOffset !== offset) {
      this.close();
      this.iteratorOffset = offset;
    }
  }

  private async rehash(offset: number): Promise<void> {
    this.verifier = new DigestVerifier(this.descriptor.digest, this.descriptor.size);
    if (offset === 0) return;
    let seen = 0;
    for await (const chunk of this.source.open(0, this.ctx.signal)) {
      const part = chunk.byteLength > offset - seen ? chunk.subarray(0, offset - seen) : chunk;
      this.verifier.update(part);
      seen += part.byteLength;
      if (seen >= offset) break;
    }
    if (seen !== offset) this.stop(this.sourceShort(seen));
  }

  private sourceShort(seen: number): RegistryError {
    return new RegistryError(
      'ErrSizeMismatch',
      `${this.ctx.description}: the source of ${this.descriptor.digest} ended after ${seen} bytes, ${this.descriptor.size} declared`,
      { ...this.ctx.facts, expectedSize: this.descriptor.size, actualSize: seen },
    );
  }

  /** `length` bytes from `offset` for one request body, a fresh stream for each attempt. The
   * chunks are the source's, reused once the next is asked for (see bulk-upload.ts). */
  body(offset: number, length: number, counters: { bytesSent: number }, last = false): ChunkedBody {
    const self: SendHasher = this; // eslint-disable-line @typescript-eslint/no-this-alias
    async function* generate(): AsyncGenerator<Uint8Array> {
      if (self.verifier.bytes !== offset) await self.rehash(offset);
      if (self.iterator === undefined || self.iteratorOffset !== offset) {
        self.close();
        self.abort = new AbortController();
        const signal =
          self.ctx.signal === undefined ? self.abort.signal : AbortSignal.any([self.ctx.signal, self.abort.signal]);
        self.iterator = self.source.open(offset, signal, true)[Symbol.asyncIterator]();
        self.iteratorOffset = offset;
        self.pending = undefined;
      }
      let left = length;
      while (left > 0) {
        let chunk = self.pending;
        self.pending = undefined;
        if (chunk === undefined) {
          let next: IteratorResult<Uint8Array>;
          try {
            next = await (self.iterator as AsyncIterator<Uint8Array>).next();
          } catch (err) {
            self.close();
            self.stop(err);
          }
          if (next.done === true) {
            self.close();
            self.stop(self.sourceShort(self.iteratorOffset));
          }
          chunk = next.value;
        }
        if (chunk.byteLength > left) {
          self.pending = chunk.subarray(left);
          chunk = chunk.subarray(0, left);
        }
        left -= chunk.byteLength;
        self.iteratorOffset += chunk.byteLength;
        self.verifier.update(chunk);
        counters.bytesSent += chunk.byteLength;
        if (self.onProgress !== undefined && performance.now() - self.reportedAt >= SENT_PROGRESS_MS) {
          self.reportedAt = performance.now();
          self.onProgress(self.iteratorOffset);
        }
        yield chunk;
      }
      // Every byte is out: the source's file or connection closes now, not when collected.
      if (self.iteratorOffset === self.descriptor.size) self.close();
      if (last) {
        try {
          self.verifier.finish();
        } catch (err) {
          self.stop(err instanceof VerifyError ? self.mismatch(err) : err);
        }
      }
    }
    return { chunks: generate };
  }

  /** Before the closing `PUT`: the bytes sent are the digest's. */
  verify(): void {
    try {
      this.verifier.finish();
    } catch (err) {
      if (err instanceof VerifyError) throw this.mismatch(err);
      throw err;
    }
  }

  /** Records a fatal failure and ends the request body that hit it. */
  stop(err: unknown): never {
    this.failure ??= err;
    throw new BodyStopped('upload body stopped');
  }

  throwFailure(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  mismatch(verify: VerifyError): RegistryError {
    return new RegistryError(
      verify.code,
      `${this.ctx.description}: the source's content does not match ${this.descriptor.digest} (${verify.message}); the upload was not committed`,
      {
        ...this.ctx.facts,
        expectedDigest: verify.expectedDigest,
        ...(verify.actualDigest !== undefined && { actualDigest: verify.actualDigest }),
        expectedSize: verify.expectedSize,
        actualSize: verify.actualSize,
      },
    );
  }

  close(): void {
    this.abort?.abort();
    this.abort = undefined;
    const it = this.iterator;
    this.iterator = undefined;
    this.pending = undefined;
    void it?.return?.()?.catch(() => undefined);
  }
}

/**
 * `PUT /v2/<name>/manifests/<reference>` with the exact bytes and their media type; the
 * registry's `Docker-Content-Digest` must be the bytes' digest. 5xx and lost connections are
 * retried (the same bytes under the same name).
 */
export async function putManifestOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
  ctx: OperationContext,
  deps: UploadDeps,
): Promise<PutManifestResult> {
  const digest = digestOf(bytes);
  const url = apiUrl(ep, `${repo.path}/manifests/${reference}`);
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const res = await deps.auth.send(
    ep,
    {
      url,
      method: 'PUT',
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body,
    },
    [pushScope(repo.path)],
    ctx,
  );
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
    throw await errorFromResponse(res, ctx, 'ErrManifestUnknown', deps.clock.now());
  }
  await discard(res.body);
  const reported = headerValue(res.headers, 'docker-content-digest');
  if (reported !== undefined && isValidDigest(reported) && sameAlgorithm(reported, digest) && reported !== digest) {
    throw new RegistryError(
      'ErrDigestMismatch',
      `${ctx.description}: ${res.url.host} stored the manifest as ${reported}, its bytes hash to ${digest}`,
      { ...ctx.facts, host: res.url.host, expectedDigest: digest, actualDigest: reported },
    );
  }
  const subject = headerValue(res.headers, 'oci-subject');
  return { digest, size: bytes.byteLength, ...(subject !== undefined && isValidDigest(subject) && { subject }) };
}

function sameAlgorithm(a: string, b: string): boolean {
  const pa = tryParseDigest(a);
  const pb = tryParseDigest(b);
  return pa.ok && pb.ok && pa.value.algorithm === pb.value.algorithm;
}
