import { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { PullEvent } from '../pull/index.ts';
import { escapeControls, formatBytes, jsonLine, shortDigest } from './format.ts';
import { choiceFlag, writeLine } from './io.ts';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';

const MODES: readonly ProgressMode[] = ['auto', 'tty', 'plain', 'json', 'quiet'];

export function parseProgressMode(value: string): ProgressMode {
  return choiceFlag('--progress', value, MODES);
}

/** `kimg pull`'s progress display. */
export type ProgressRenderer = Renderer<PullEvent>;

export interface ProgressOptions {
  /** Plain mode: how often a line is printed for each blob still downloading (default 5 s). */
  readonly intervalMs?: number;
  /** The clock, in ms (tests). */
  readonly now?: () => number;
}

/** A progress display of events `E`: `onEvent` for each, `stop` at the end. */
export interface Renderer<E> {
  readonly onEvent: (event: E) => void;
  /** Stops redrawing (the terminal keeps the final frame) and shows the cursor again. */
  stop(): void;
}

/** How one kind of progress draws itself on a terminal and as plain lines. */
export interface RendererKinds<E> {
  readonly plain: (stream: NodeJS.WritableStream, intervalMs: number, now: () => number) => Renderer<E>;
  readonly tty: (stream: NodeJS.WritableStream, now: () => number) => Renderer<E>;
}

/**
 * Picks the renderer for `--progress`: bars on a terminal, plain lines elsewhere (`auto`), JSON
 * lines for programs, nothing (`quiet`). Pull's and copy's progress differ only in `kinds`.
 */
export function pickRenderer<E extends object>(
  mode: ProgressMode,
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  options: ProgressOptions,
  kinds: RendererKinds<E>,
): Renderer<E> {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'tty' : 'plain') : mode;
  const now = options.now ?? Date.now;
  switch (resolved) {
    case 'quiet':
      return { onEvent: () => undefined, stop: () => undefined };
    case 'json':
      return {
        onEvent: (event) => stream.write(`${jsonLine({ time: new Date(now()).toISOString(), ...event })}\n`),
        stop: () => undefined,
      };
    case 'plain':
      return kinds.plain(stream, options.intervalMs ?? 5000, now);
    case 'tty':
      return kinds.tty(stream, now);
  }
}

/** `kimg pull`'s progress: a bar per layer on a terminal, lines elsewhere, JSON lines for programs. */
export function createProgress(
  mode: ProgressMode,
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  options: ProgressOptions = {},
): ProgressRenderer {
  return pickRenderer(mode, stream, options, { plain: plainProgress, tty: ttyProgress });
}

/**
 * The download rate of one blob as it truly was: from the moment its bytes started to arrive
 * (time queued behind other blobs does not count) and over the bytes of this download (bytes a
 * resumed download already had on disk do not count).
 */
export class BlobRate {
  #start: { at: number; bytes: number } | undefined;

  /** The bytes already on disk when the download (re)started. */
  resumedAt(bytes: number, at: number): void {
    this.#start = { at, bytes };
  }

  /** Bytes per second so far; undefined before there is anything to measure. */
  update(bytes: number, at: number): number | undefined {
    // The first progress report marks the start when the blob did not resume: it counts the
    // bytes from then on, so the request's own latency is not in the rate either.
    if (this.#start === undefined) {
      this.#start = { at, bytes };
      return undefined;
    }
    const seconds = (at - this.#start.at) / 1000;
    return seconds > 0 ? (bytes - this.#start.bytes) / seconds : undefined;
  }
}

export const rateText = (rate: number | undefined): string => (rate === undefined ? '' : `${formatBytes(rate)}/s`);

/**
 * Plain lines about blobs, shared by pull's and copy's non-terminal progress: `id: text` lines,
 * each blob's rate, and while a blob moves, a line with its bytes and rate at most every
 * `intervalMs` (a pipe is never silent for minutes during a large blob, nor flooded).
 */
export class PlainBlobLines {
  private readonly blobs = new Map<string, { rate: BlobRate; lastLine: number }>();

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** A line `id: text` about one blob. */
  say(digest: string, text: string): void {
    writeLine(this.stream, `${shortDigest(digest)}: ${text}`);
  }

  /** Whether the blob has been seen (by `rate` or `progress`). */
  has(digest: string): boolean {
    return this.blobs.has(digest);
  }

  /** The blob's rate, its clock started now when it is new. */
  rate(digest: string): BlobRate {
    return this.blob(digest).rate;
  }

  /** A progress report: `id: verb BYTES of SIZE (RATE)` when the last line is `intervalMs` old and
   * the blob is not done. */
  progress(digest: string, verb: string, bytes: number, size: number): void {
    const b = this.blob(digest);
    const at = this.now();
    const rate = b.rate.update(bytes, at);
    if (at - b.lastLine >= this.intervalMs && bytes < size) {
      b.lastLine = at;
      this.say(
        digest,
        `${verb} ${formatBytes(bytes)} of ${formatBytes(size)}${rate === undefined ? '' : ` (${rateText(rate)})`}`,
      );
    }
  }

  private blob(digest: string): { rate: BlobRate; lastLine: number } {
    let b = this.blobs.get(digest);
    if (b === undefined) {
      b = { rate: new BlobRate(), lastLine: this.now() };
      this.blobs.set(digest, b);
    }
    return b;
  }
}

/**
 * docker pull's non-terminal output: one line per state change of each layer, and while a blob
 * downloads, a line every `intervalMs` with its bytes and rate (a pipe is never silent for
 * minutes during a large blob).
 */
function plainProgress(stream: NodeJS.WritableStream, intervalMs: number, now: () => number): ProgressRenderer {
  const lines = new PlainBlobLines(stream, intervalMs, now);
  return {
    onEvent(event: PullEvent) {
      switch (event.type) {
        case 'resolved':
          writeLine(stream, `${event.image}: resolved to ${event.digest}`);
          break;
        case 'blob-waiting':
          lines.say(event.digest, `Pulling ${formatBytes(event.size)}`);
          break;
        case 'blob-exists':
          lines.say(event.digest, 'Already exists');
          break;
        case 'blob-resumed':
          lines.rate(event.digest).resumedAt(event.offset, now());
          lines.say(event.digest, `Resuming at ${formatBytes(event.offset)} of ${formatBytes(event.size)}`);
          break;
        case 'blob-progress':
          lines.progress(event.digest, 'Downloading', event.bytes, event.size);
          break;
        case 'blob-done':
          lines.say(
            event.digest,
            `Pull complete (${formatBytes(event.bytesReceived)} in ${(event.ms / 1000).toFixed(1)}s)`,
          );
          break;
        case 'retrying':
          writeLine(stream, `retrying ${event.host} (attempt ${event.attempt}): ${event.reason}`);
          break;
        case 'warning':
          writeLine(stream, `warning: ${event.message}`);
          break;
        default:
          break;
      }
    },
    stop: () => undefined,
  };
}

/**
 * `--progress tty` forced where standard output is not a terminal (a log, a test): the bars are
 * drawn anyway, as asked, through a stream that says it is one.
 */
function asTerminal(stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): NodeJS.WriteStream {
  if (stream.isTTY === true) return stream as NodeJS.WriteStream;
  const terminal = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      stream.write(chunk);
      callback();
    },
  });
  return Object.assign(terminal, { isTTY: true, columns: stream.columns ?? 100 }) as unknown as NodeJS.WriteStream;
}

/** The terminal's bars, one per blob (`id: state [bar] done/size rate`, redrawn 10 times a
 * second), created on a blob's first event. */
export function blobRows(stream: NodeJS.WritableStream): {
  readonly bars: cliProgress.MultiBar;
  row(digest: string, size: number, state: string): { bar: cliProgress.SingleBar; rate: BlobRate };
} {
  const bars = new cliProgress.MultiBar(
    {
      stream: asTerminal(stream),
      format: '{id}: {state} [{bar}] {done}/{size} {rate}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      forceRedraw: true,
      fps: 10,
    },
    cliProgress.Presets.legacy,
  );
  const rows = new Map<string, { bar: cliProgress.SingleBar; rate: BlobRate }>();
  return {
    bars,
    row(digest, size, state) {
      let r = rows.get(digest);
      if (r === undefined) {
        const bar = bars.create(Math.max(size, 1), 0, {
          id: shortDigest(digest),
          state: state.padEnd(14),
          done: '0B',
          size: formatBytes(size),
          rate: '',
        });
        r = { bar, rate: new BlobRate() };
        rows.set(digest, r);
      }
      return r;
    },
  };
}

/** One bar per layer with bytes and rate, redrawn in place, like `docker pull` on a terminal. */
function ttyProgress(stream: NodeJS.WritableStream, now: () => number): ProgressRenderer {
  const { bars, row } = blobRows(stream);
  let stopped = false;
  const update = (digest: string, size: number, bytes: number, state: string, rate = '') => {
    row(digest, size, state).bar.update(bytes, { state: state.padEnd(14), done: formatBytes(bytes), rate });
  };
  return {
    onEvent(event: PullEvent) {
      if (stopped) return;
      switch (event.type) {
        case 'blob-waiting':
          row(event.digest, event.size, 'Waiting');
          break;
        case 'blob-resumed':
          row(event.digest, event.size, 'Resuming').rate.resumedAt(event.offset, now());
          update(event.digest, event.size, event.offset, 'Resuming');
          break;
        case 'blob-progress': {
          const rate = row(event.digest, event.size, 'Downloading').rate.update(event.bytes, now());
          update(event.digest, event.size, event.bytes, 'Downloading', rateText(rate));
          break;
        }
        case 'blob-verifying':
          update(event.digest, event.size, event.size, 'Verifying');
          break;
        case 'blob-done':
          update(event.digest, event.size, event.size, 'Pull complete');
          break;
        case 'blob-exists':
          // Blobs already in the store get their row too: the image is all there, not half.
          update(event.digest, event.size, event.size, 'Already exists');
          break;
        case 'warning':
          bars.log(`warning: ${escapeControls(event.message)}\n`);
          break;
        default:
          break;
      }
    },
    stop: () => {
      // A second stop would redraw the bars over what was printed after the first.
      if (stopped) return;
      stopped = true;
      bars.stop();
    },
  };
}
