/**
 * Streaming a blob into a sink (docs/semantics.md registry §5, S1, S2, R3, R7): hashed and counted on the way, never
 * more bytes than the descriptor declares, resumed in process with `Range` after a broken or
 * stalled connection, verified at the end.
 */
import { on } from 'node:events';
import type { Readable } from 'node:stream';
import { DigestVerifier, VerifyError, isValidDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { Authenticator } from './auth.ts';
import { discard } from './body.ts';
import { LeanBody } from './lean-http.ts';
import { ThreadBody } from './lean-thread.ts';
import { pullScope, type Scope } from './challenge.ts';
import { errorFromResponse, type OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError } from './errors.ts';
import type { FollowedResponse } from './redirect.ts';
import { contentLength, headerValue } from './headers.ts';
import { errorCode, sanitizeCause } from './redact.ts';
import { backoffDelay, DEFAULT_RETRY_POLICY } from './retry.ts';
import type { BlobSink, CallOptions, Clock, EventSink, RepositoryRef } from './types.ts';

export interface BlobProgress {
  readonly digest: string;
  readonly size: number;
  /** Bytes the sink holds now. */
  readonly offset: number;
  /** In-process resumes so far. */
  readonly resumes: number;
}

export interface FetchBlobOptions extends CallOptions {
  readonly onProgress?: (progress: BlobProgress) => void;
  /** A server that answers a Range request with the whole blob (200): start over from it
   * (default, as containerd) or fail (as containers/image). */
  readonly onRangeIgnored?: 'restart' | 'error';
  /** No body bytes for this long = stalled: drop the connection and resume. Default 60 s. */
  readonly stallTimeoutMs?: number;
  /** Hash while streaming and check the digest at the end (default true). With false only the
   * size is enforced, for a sink that verifies itself. */
  readonly verify?: boolean;
  /** Most in-process resumes per fetch (default 1000); consecutive resumes without progress
   * stop at 3 regardless. */
  readonly maxResumes?: number;
}

export interface FetchBlobResult {
  readonly digest: string;
  readonly size: number;
  /** Base URL of the endpoint that finished it; `data:` for an embedded descriptor. */
  readonly endpoint: string;
  readonly resumes: number;
  /** Body bytes received over the network by this call (a restart counts twice). */
  readonly bytesReceived: number;
  /** Whether the client hashed the whole content and it matched. */
  readonly verified: boolean;
}

export interface BlobDeps {
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly onEvent: EventSink | undefined;
}

/** Attempts in a row that did not move the committed offset, after which the fetch fails. */
const MAX_ATTEMPTS_WITHOUT_PROGRESS = 3;

/** State that survives endpoint fallback: the hash of what the sink holds, counters. */
export class BlobTransfer {
  verifier: DigestVerifier | undefined;
  resumes = 0;
  bytesReceived = 0;
  /** Attempts in a row whose resume did not move the committed offset past where it began. */
  withoutProgress = 0;
  /** Of those, the ones where the server ignored the Range and the whole-blob answer was cut
   * short too: each one downloads the prefix again, so they are bounded like the rest. */
  rangeIgnoredWithoutProgress = 0;

  constructor(
    readonly descriptor: Descriptor,
    readonly sink: BlobSink,
    readonly options: FetchBlobOptions,
  ) {}

  get verify(): boolean {
    return this.options.verify !== false;
  }

  /** Empties the sink and the hash. */
  async restart(): Promise<void> {
    await this.sink.reset();
    this.verifier = this.verify ? new DigestVerifier(this.descriptor.digest, this.descriptor.size) : undefined;
  }

  /**
   * Makes the hash state match what the sink holds: re-hashes a partial download the sink can
   * read back, otherwise starts over (a prefix we did not see cannot be vouched for).
   */
  async prepare(): Promise<void> {
    const { sink, descriptor } = this;
    if (sink.offset > descriptor.size) {
      await this.restart();
      return;
    }
    if (!this.verify) return;
    if (this.verifier !== undefined && this.verifier.bytes === sink.offset) return;
    if (sink.offset === 0 || sink.read === undefined) {
      await this.restart();
      return;
    }
    const verifier = new DigestVerifier(descriptor.digest, descriptor.size);
    try {
      for await (const chunk of sink.read()) verifier.update(chunk);
    } catch {
      await this.restart();
      return;
    }
    if (verifier.bytes !== sink.offset) {
      await this.restart();
      return;
    }
    this.verifier = verifier;
  }

  /**
   * After a failed attempt that began with `from` bytes committed: progress is the committed
   * offset moving past `from` (not bytes received: a server that ignores `Range` and cuts every
   * answer short sends bytes forever without moving it). Fails after
   * MAX_ATTEMPTS_WITHOUT_PROGRESS such attempts in a row, naming the cause, or after `maxResumes`
   * in all; otherwise reports the resume and, without progress, backs off.
   */
  async noteFailure(failure: AttemptFailure, from: number, ctx: OperationContext, deps: BlobDeps): Promise<void> {
    const { sink, descriptor } = this;
    const { reason, host } = failure;
    const progressed = sink.offset > from;
    this.withoutProgress = progressed ? 0 : this.withoutProgress + 1;
    this.rangeIgnoredWithoutProgress = progressed
      ? 0
      : this.rangeIgnoredWithoutProgress + (failure.rangeIgnored ? 1 : 0);
    const facts = { ...ctx.facts, host, expectedSize: descriptor.size, actualSize: sink.offset };
    if (this.withoutProgress >= MAX_ATTEMPTS_WITHOUT_PROGRESS) {
      if (this.rangeIgnoredWithoutProgress > 0) {
        throw new RegistryError(
          'ErrRangeIgnored',
          `${ctx.description}: ${host} ignored Range and truncated the body ${this.rangeIgnoredWithoutProgress} times (${reason}): no byte past ${from} of ${descriptor.size} was gained; gave up after ${this.bytesReceived} bytes received in all`,
          facts,
        );
      }
      throw new RegistryError(
        'ErrResumeExhausted',
        `${ctx.description}: download from ${host} failed ${this.withoutProgress} times in a row without progress at byte ${sink.offset} of ${descriptor.size} (${reason}); ${this.resumes} resumes in all`,
        facts,
      );
    }
    if (this.resumes >= (this.options.maxResumes ?? 1000)) {
      throw new RegistryError(
        'ErrResumeExhausted',
        `${ctx.description}: gave up after ${this.resumes} resumes from ${host} (${reason})`,
        facts,
      );
    }
    this.resumes++;
    deps.onEvent?.({
      type: 'resuming',
      digest: descriptor.digest,
      host,
      offset: sink.offset,
      reason,
      attemptsWithoutProgress: this.withoutProgress,
    });
    if (!progressed) await deps.clock.sleep(backoffDelay(this.withoutProgress, DEFAULT_RETRY_POLICY), ctx.signal);
  }
}

/** Why an attempt ended before the blob was complete, and at which host. */
export interface AttemptFailure {
  readonly reason: string;
  readonly host: string;
  /** The server answered the attempt's Range with the whole blob (and the sink started over). */
  readonly rangeIgnored?: boolean;
}

/** An answer being read: from byte `start`, `expected` bytes. */
interface OpenedRange {
  readonly res: FollowedResponse;
  readonly host: string;
  readonly start: number;
  readonly expected: number;
  readonly rangeIgnored: boolean;
}

class SinkWriteError extends Error {}

/** Blobs at least this large are read with the lean reader (one connection each). */
const BULK_BYTES = 1024 * 1024;
/** Progress is reported per this many bytes or this much time, whichever comes first, and at
 * the end: per chunk, a fast pull would spend more on progress than on hashing. */
const PROGRESS_BYTES = 1024 * 1024;
const PROGRESS_MS = 100;

/** Body chunks waiting for the sink before the body is paused (undici's chunks are ≤ 64 KiB). */
const QUEUED_CHUNKS = 8;

/**
 * The body's chunks as undici delivers them. A Readable's own async iterator joins whatever is
 * buffered into a new Buffer at each step: measured on a loopback pull, ≈ 30 % of a blob's bytes
 * were copied once more that way, in fresh allocations. Leaving early destroys the body, as that
 * iterator does; an 'error' is thrown.
 */
async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  try {
    const events = on(body, 'data', { close: ['end', 'close'], highWaterMark: QUEUED_CHUNKS }) as AsyncIterable<
      [Buffer]
    >;
    for await (const [chunk] of events) yield chunk;
  } finally {
    if (!body.readableEnded) body.destroy();
  }
}

/**
 * Streams the blob from one endpoint into the transfer's sink, resuming from `sink.offset`:
 * open a ranged GET, pump its body into the sink, and on a broken answer note the failure
 * (bounded, backing off without progress) and go again; then verify. Throws RegistryError; the
 * caller may try the next endpoint with the same transfer.
 */
export async function fetchBlobOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  transfer: BlobTransfer,
  ctx: OperationContext,
  deps: BlobDeps,
): Promise<void> {
  const { digest, size } = transfer.descriptor;
  if (!isValidDigest(digest))
    throw new RegistryError('ErrInvalidArgument', `${ctx.description}: invalid digest`, ctx.facts);
  const url = apiUrl(ep, `${repo.path}/blobs/${digest}`);
  for (;;) {
    await transfer.prepare();
    const from = transfer.sink.offset;
    if (from === size) break;
    const opened = await openRange(ep, url, pullScope(repo.path), transfer, ctx, deps);
    if ('retry' in opened) {
      await transfer.noteFailure(opened.retry, from, ctx, deps);
      continue;
    }
    const pumped = await pump(opened, transfer, ctx);
    if (pumped === undefined) break;
    await transfer.noteFailure(
      { reason: pumped, host: opened.host, rangeIgnored: opened.rangeIgnored },
      from,
      ctx,
      deps,
    );
  }
  await finishTransfer(ep, transfer, ctx);
}

/**
 * `GET` of the blob from `sink.offset` on. 200 to a Range starts the sink over (or fails, with
 * `onRangeIgnored: 'error'`); 206 must carry exactly the asked range; 416 starts over. Anything
 * else is the registry's error. A `Content-Length` that disagrees is refused before reading.
 */
async function openRange(
  ep: PreparedEndpoint,
  url: URL,
  scope: Scope,
  transfer: BlobTransfer,
  ctx: OperationContext,
  deps: BlobDeps,
): Promise<OpenedRange | { readonly retry: AttemptFailure }> {
  const { sink, options } = transfer;
  const { digest, size } = transfer.descriptor;
  let start = sink.offset;
  const headers: Record<string, string> = { accept: '*/*' };
  if (start > 0) headers.range = `bytes=${start}-`;
  const bulk = size - start >= BULK_BYTES;
  const bodyTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const res = await deps.auth.send(ep, { url, method: 'GET', headers, bodyTimeoutMs, bulk }, [scope], ctx);
  const host = res.url.host;

  let expected: number;
  let rangeIgnored = false;
  if (res.status === 200) {
    if (start > 0) {
      deps.onEvent?.({ type: 'rangeIgnored', digest, host, offset: start });
      if (options.onRangeIgnored === 'error') {
        await discard(res.body);
        throw new RegistryError(
          'ErrRangeIgnored',
          `${ctx.description}: ${host} ignored the Range request for bytes ${start}- and sent the whole blob`,
          { ...ctx.facts, host, status: 200 },
        );
      }
      await transfer.restart();
      start = 0;
      rangeIgnored = true;
    }
    expected = size;
  } else if (res.status === 206) {
    const range = headerValue(res.headers, 'content-range');
    if (range !== `bytes ${start}-${size - 1}/${size}`) {
      // A misaligned or foreign range cannot be stitched on: start over.
      await discard(res.body);
      await transfer.restart();
      return { retry: { reason: `misaligned Content-Range for bytes ${start}-`, host } };
    }
    expected = size - start;
  } else if (res.status === 416 && start > 0) {
    await discard(res.body);
    await transfer.restart();
    return { retry: { reason: 'Range not satisfiable', host } };
  } else {
    throw await errorFromResponse(res, ctx, 'ErrBlobUnknown', deps.clock.now());
  }

  const declared = contentLength(res.headers);
  if (declared !== undefined && declared !== expected) {
    res.body.destroy();
    throw new RegistryError(
      'ErrSizeMismatch',
      `${ctx.description}: ${host} declares Content-Length ${declared} but ${expected} bytes are expected (descriptor size ${size}, from byte ${start}); nothing read`,
      { ...ctx.facts, host, expectedSize: expected, actualSize: declared },
    );
  }
  return { res, host, start, expected, rangeIgnored };
}

/**
 * Feeds the answer's body into the hash and the sink, never more than `expected` bytes, with
 * throttled progress. Undefined when the body was complete; otherwise why it was not (a cut
 * connection, a stall). A sink failure, an overlong body or an abort is thrown.
 */
async function pump(opened: OpenedRange, transfer: BlobTransfer, ctx: OperationContext): Promise<string | undefined> {
  const { res, host, start, expected } = opened;
  const { sink, options } = transfer;
  const { digest, size } = transfer.descriptor;
  let received = 0;
  let reported = 0;
  let reportedAt = performance.now();
  /** One chunk into the sink; the chunk's memory may be reused once this returns. */
  const consume = (chunk: Buffer, reused: boolean): Promise<void> | undefined => {
    received += chunk.byteLength;
    transfer.bytesReceived += chunk.byteLength;
    if (received > expected) {
      throw new RegistryError(
        'ErrSizeMismatch',
        `${ctx.description}: ${host} sent more than the ${size} bytes the descriptor declares; aborted`,
        { ...ctx.facts, host, expectedSize: size, actualSize: start + received },
      );
    }
    transfer.verifier?.update(chunk);
    let wait: Promise<void> | undefined;
    try {
      wait = sink.take !== undefined ? sink.take(chunk) : sink.write(reused ? Buffer.from(chunk) : chunk);
    } catch (err) {
      throw new SinkWriteError('the blob sink failed', { cause: err });
    }
    if (
      options.onProgress !== undefined &&
      (received - reported >= PROGRESS_BYTES || received === expected || performance.now() - reportedAt >= PROGRESS_MS)
    ) {
      reported = received;
      reportedAt = performance.now();
      options.onProgress({ digest, size, offset: start + received, resumes: transfer.resumes });
    }
    return wait?.catch((err: unknown) => {
      throw new SinkWriteError('the blob sink failed', { cause: err });
    });
  };
  let failure: unknown;
  try {
    if (res.body instanceof LeanBody || res.body instanceof ThreadBody) {
      await res.body.pump((chunk) => consume(chunk, true));
    } else {
      for await (const chunk of chunksOf(res.body)) await consume(chunk, false);
    }
  } catch (err) {
    failure = err;
  }
  if (failure instanceof RegistryError) throw failure;
  if (failure instanceof SinkWriteError) {
    res.body.destroy();
    throw failure.cause;
  }
  if (ctx.signal?.aborted) throw ctx.signal.reason;
  if (failure === undefined && received === expected) return undefined;
  return failure === undefined
    ? `connection closed after ${received} of ${expected} bytes`
    : (errorCode(failure) ?? sanitizeCause(failure).message);
}

/** The end of a transfer: the digest checked (a mismatch empties the sink), or for a sink that
 * verifies itself, the size. */
async function finishTransfer(ep: PreparedEndpoint, transfer: BlobTransfer, ctx: OperationContext): Promise<void> {
  const { sink } = transfer;
  const { size } = transfer.descriptor;
  if (transfer.verifier !== undefined) {
    try {
      transfer.verifier.finish();
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      await transfer.restart();
      throw new RegistryError(
        err.code,
        `${ctx.description}: the blob from ${ep.host} does not match its descriptor (${err.message}); the partial content was discarded`,
        {
          ...ctx.facts,
          host: ep.host,
          expectedDigest: err.expectedDigest,
          ...(err.actualDigest !== undefined && { actualDigest: err.actualDigest }),
          expectedSize: err.expectedSize,
          actualSize: err.actualSize,
        },
      );
    }
  } else if (sink.offset !== size) {
    throw new RegistryError(
      'ErrSizeMismatch',
      `${ctx.description}: the sink holds ${sink.offset} bytes, expected ${size}`,
      {
        ...ctx.facts,
        expectedSize: size,
        actualSize: sink.offset,
      },
    );
  }
}
