/**
 * Streaming a blob into a sink (spec §5, S1, S2, R3, R7): hashed and counted on the way, never
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
import { pullScope } from './challenge.ts';
import { errorFromResponse, type OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError } from './errors.ts';
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

/** State that survives endpoint fallback: the hash of what the sink holds, counters. */
export class BlobTransfer {
  verifier: DigestVerifier | undefined;
  resumes = 0;
  bytesReceived = 0;

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
 * Streams the blob from one endpoint into the transfer's sink, resuming from `sink.offset`.
 * Throws RegistryError; the caller may try the next endpoint with the same transfer.
 */
export async function fetchBlobOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  transfer: BlobTransfer,
  ctx: OperationContext,
  deps: BlobDeps,
): Promise<void> {
  const { descriptor, sink, options } = transfer;
  const { digest, size } = descriptor;
  if (!isValidDigest(digest))
    throw new RegistryError('ErrInvalidArgument', `${ctx.description}: invalid digest`, ctx.facts);
  const url = apiUrl(ep, `${repo.path}/blobs/${digest}`);
  const scopes = [pullScope(repo.path)];
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const maxResumes = options.maxResumes ?? 1000;
  let withoutProgress = 0;

  const giveUpOrWait = async (reason: string, progressed: boolean, host: string) => {
    withoutProgress = progressed ? 0 : withoutProgress + 1;
    if (withoutProgress >= 3) {
      throw new RegistryError(
        'ErrResumeExhausted',
        `${ctx.description}: download from ${host} failed ${withoutProgress} times in a row without progress at byte ${sink.offset} of ${size} (${reason}); ${transfer.resumes} resumes in all`,
        { ...ctx.facts, host, expectedSize: size, actualSize: sink.offset },
      );
    }
    if (transfer.resumes >= maxResumes) {
      throw new RegistryError(
        'ErrResumeExhausted',
        `${ctx.description}: gave up after ${transfer.resumes} resumes from ${host} (${reason})`,
        {
          ...ctx.facts,
          host,
          expectedSize: size,
          actualSize: sink.offset,
        },
      );
    }
    transfer.resumes++;
    deps.onEvent?.({
      type: 'resuming',
      digest,
      host,
      offset: sink.offset,
      reason,
      attemptsWithoutProgress: withoutProgress,
    });
    if (!progressed) await deps.clock.sleep(backoffDelay(withoutProgress, DEFAULT_RETRY_POLICY), ctx.signal);
  };

  for (;;) {
    await transfer.prepare();
    let start = sink.offset;
    if (start === size) break;
    const headers: Record<string, string> = { accept: '*/*' };
    if (start > 0) headers.range = `bytes=${start}-`;
    const bulk = size - start >= BULK_BYTES;
    const res = await deps.auth.send(
      ep,
      { url, method: 'GET', headers, bodyTimeoutMs: stallTimeoutMs, bulk },
      scopes,
      ctx,
    );
    const host = res.url.host;

    let expected: number;
    if (res.status === 200) {
      if (start > 0) {
        deps.onEvent?.({ type: 'rangeIgnored', digest, host, offset: start });
        if (options.onRangeIgnored === 'error') {
          await discard(res.body);
          throw new RegistryError(
            'ErrRangeIgnored',
            `${ctx.description}: ${host} ignored the Range request for bytes ${start}- and sent the whole blob`,
            {
              ...ctx.facts,
              host,
              status: 200,
            },
          );
        }
        await transfer.restart();
        start = 0;
      }
      expected = size;
    } else if (res.status === 206) {
      const range = headerValue(res.headers, 'content-range');
      if (range !== `bytes ${start}-${size - 1}/${size}`) {
        // A misaligned or foreign range cannot be stitched on: start over.
        await discard(res.body);
        await transfer.restart();
        await giveUpOrWait(`misaligned Content-Range for bytes ${start}-`, false, host);
        continue;
      }
      expected = size - start;
    } else if (res.status === 416 && start > 0) {
      await discard(res.body);
      await transfer.restart();
      await giveUpOrWait('Range not satisfiable', false, host);
      continue;
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

    const before = sink.offset;
    let received = 0;
    let failure: unknown;
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
        (received - reported >= PROGRESS_BYTES ||
          received === expected ||
          performance.now() - reportedAt >= PROGRESS_MS)
      ) {
        reported = received;
        reportedAt = performance.now();
        options.onProgress({ digest, size, offset: start + received, resumes: transfer.resumes });
      }
      return wait?.catch((err: unknown) => {
        throw new SinkWriteError('the blob sink failed', { cause: err });
      });
    };
    try {
      if (res.body instanceof LeanBody) {
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
    if (failure === undefined && received === expected) break;

    const reason =
      failure === undefined
        ? `connection closed after ${received} of ${expected} bytes`
        : (errorCode(failure) ?? sanitizeCause(failure).message);
    await giveUpOrWait(reason, sink.offset > before, host);
  }

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
