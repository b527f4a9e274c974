/**
 * The body bookkeeping the two lean blob readers share: LeanBody (lean-http.ts, a socket read on
 * the event loop) and ThreadBody (lean-thread.ts, whole buffers from a blob thread). Either is
 * pumped to a {@link ChunkConsumer} or read as an ordinary Readable; this holds what does not
 * depend on where the bytes come from: the pump's promise, one consumer call at a time with what
 * arrives meanwhile waiting in order, and an end, completion or failure that happens once.
 *
 * On the hot download path: per chunk nothing is allocated here and nothing awaited, beyond the
 * two callbacks on a promise the consumer itself returned.
 */
import { Readable } from 'node:stream';
import { LeanHttpError } from './http1.ts';

/**
 * What a consumer does with each chunk: it must be used up before returning (the buffer is
 * read into again); a returned promise pauses the source until it settles.
 */
export type ChunkConsumer = (chunk: Buffer) => Promise<void> | undefined;

/**
 * A body pumped to a consumer or read as a stream. `Item` is what waits while the consumer is
 * busy; `Token` what the subclass needs back once the consumer is done with a chunk (a buffer
 * to give back to its thread, or nothing). Destroying the body lets the source go.
 */
export abstract class PumpedBody<Item, Token> extends Readable {
  /** Nothing more will be handed on: the source ended or failed, or the body was destroyed. */
  protected finished = false;
  /** The pump's consumer; undefined while nobody pumps (the body may be read as a stream). */
  protected consumer: ChunkConsumer | undefined;
  /** The consumer's unsettled promise, while it has one. */
  protected pendingWait: Promise<void> | undefined;
  /** What arrived while the consumer (or the reader) was busy, in order. */
  protected readonly waiting: Item[] = [];
  /** Settles the pump's promise; undefined before `pump` and once settled. */
  private settlePump: ((err?: Error) => void) | undefined;

  /** Whether reading began another way (then `pump` is refused). */
  protected abstract readingStarted(): boolean;
  /** Starts the flow of chunks to the consumer just set. */
  protected abstract startPump(): void;
  /** Lets the source go (closes the connection); called again is harmless. */
  protected abstract release(): void;
  /** Handles one item that waited; false when the flow stops here (busy again, or finished). */
  protected abstract handle(item: Item): boolean;
  /** The consumer's promise for the chunk `token` stands for has settled: the flow goes on. */
  protected abstract consumed(token: Token): void;

  /**
   * Feeds every body chunk to `consumer`; resolves when the body is complete, rejects when the
   * source fails or the consumer throws or rejects. The source is let go either way.
   */
  pump(consumer: ChunkConsumer): Promise<void> {
    if (this.consumer !== undefined || this.destroyed || this.readingStarted()) {
      return Promise.reject(new LeanHttpError('UND_ERR_INVALID_ARG', 'the body is already being read'));
    }
    return new Promise<void>((resolve, reject) => {
      this.settlePump = (err) => {
        this.settlePump = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      this.consumer = consumer;
      this.startPump();
    });
  }

  /** A pump waits for its answer. */
  protected get pumping(): boolean {
    return this.settlePump !== undefined;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.finished = true;
    this.release();
    this.settlePump?.(err ?? new LeanHttpError('UND_ERR_ABORTED', 'the body was destroyed before it was read'));
    callback(err);
  }

  /**
   * One chunk to the consumer: true when it is done with it already; false when it returned a
   * promise (`consumed(token)` follows once that resolves) or threw (the body failed).
   */
  protected consume(consumer: ChunkConsumer, chunk: Buffer, token: Token): boolean {
    let wait: Promise<void> | undefined;
    try {
      wait = consumer(chunk);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    if (wait === undefined) return true;
    this.pendingWait = wait;
    wait.then(
      () => {
        if (this.pendingWait !== wait) return;
        this.pendingWait = undefined;
        this.consumed(token);
      },
      (err: unknown) => this.fail(err as Error),
    );
    return false;
  }

  /** Hands on what waited, in order; false when the flow stopped before the last of it. */
  protected drain(): boolean {
    for (let next = this.waiting.shift(); next !== undefined; next = this.waiting.shift()) {
      if (!this.handle(next)) return false;
    }
    return true;
  }

  /** The source has no more: a reader gets the end; a pump completes once the consumer is done
   * with the last chunk (at once when it is). */
  protected ended(): void {
    this.finished = true;
    if (this.consumer === undefined) {
      this.push(null);
      this.release();
    } else if (this.pendingWait === undefined) {
      this.complete();
    }
  }

  /** Body complete and the consumer done with it: the pump resolves. */
  protected complete(): void {
    this.pendingWait = undefined;
    this.release();
    this.settlePump?.();
    if (!this.destroyed) this.destroy();
  }

  /** Ends the body with `err`: the pump rejects (or the Readable errors) and the source is let go. */
  fail(err: Error): void {
    if (this.finished && this.settlePump === undefined) return;
    this.finished = true;
    this.release();
    const settle = this.settlePump;
    if (settle !== undefined) {
      settle(err);
      this.destroy();
    } else {
      this.destroy(err);
    }
  }
}
