import cliProgress from 'cli-progress';
import type { PullEvent, PullEventSink } from '../pull/index.ts';
import { formatBytes, shortDigest } from './format.ts';
import { writeLine } from './io.ts';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';

export function parseProgressMode(value: string): ProgressMode {
  if (value === 'auto' || value === 'tty' || value === 'plain' || value === 'json' || value === 'quiet') return value;
  throw new Error(`unknown progress mode "${value}": use auto, tty, plain, json or quiet`);
}

export interface ProgressRenderer {
  readonly onEvent: PullEventSink;
  /** Stops redrawing (the terminal keeps the final frame). */
  stop(): void;
}

/** Picks the renderer: bars on a terminal, plain lines elsewhere, JSON lines for programs. */
export function createProgress(
  mode: ProgressMode,
  stream: NodeJS.WritableStream & { isTTY?: boolean },
): ProgressRenderer {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'tty' : 'plain') : mode;
  switch (resolved) {
    case 'quiet':
      return { onEvent: () => undefined, stop: () => undefined };
    case 'json':
      return {
        onEvent: (event) => writeLine(stream, JSON.stringify({ time: new Date().toISOString(), ...event })),
        stop: () => undefined,
      };
    case 'plain':
      return plainProgress(stream);
    case 'tty':
      return ttyProgress(stream);
  }
}

/** docker pull's non-terminal output: one line per state change of each layer. */
function plainProgress(stream: NodeJS.WritableStream): ProgressRenderer {
  const say = (digest: string, text: string) => writeLine(stream, `${shortDigest(digest)}: ${text}`);
  return {
    onEvent(event: PullEvent) {
      switch (event.type) {
        case 'resolved':
          writeLine(stream, `${event.image}: resolved to ${event.digest}`);
          break;
        case 'blob-waiting':
          say(event.digest, `Pulling ${formatBytes(event.size)}`);
          break;
        case 'blob-exists':
          say(event.digest, 'Already exists');
          break;
        case 'blob-resumed':
          say(event.digest, `Resuming at ${formatBytes(event.offset)} of ${formatBytes(event.size)}`);
          break;
        case 'blob-done':
          say(event.digest, `Pull complete (${formatBytes(event.bytesReceived)} in ${(event.ms / 1000).toFixed(1)}s)`);
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

/** One bar per layer with bytes and rate, redrawn in place, like `docker pull` on a terminal. */
function ttyProgress(stream: NodeJS.WritableStream): ProgressRenderer {
  const bars = new cliProgress.MultiBar(
    {
      stream: stream as NodeJS.WriteStream,
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
  const rows = new Map<string, { bar: cliProgress.SingleBar; started: number; size: number }>();
  let stopped = false;
  const update = (digest: string, bytes: number, state: string) => {
    const row = rows.get(digest);
    if (row === undefined) return;
    const seconds = Math.max((Date.now() - row.started) / 1000, 0.001);
    row.bar.update(bytes, {
      state: state.padEnd(11),
      done: formatBytes(bytes),
      rate: state === 'Downloading' ? `${formatBytes(bytes / seconds)}/s` : '',
    });
  };
  return {
    onEvent(event: PullEvent) {
      switch (event.type) {
        case 'blob-waiting': {
          const bar = bars.create(Math.max(event.size, 1), 0, {
            id: shortDigest(event.digest),
            state: 'Waiting    ',
            done: '0B',
            size: formatBytes(event.size),
            rate: '',
          });
          rows.set(event.digest, { bar, started: Date.now(), size: event.size });
          break;
        }
        case 'blob-resumed':
          update(event.digest, event.offset, 'Resuming');
          break;
        case 'blob-progress':
          update(event.digest, event.bytes, 'Downloading');
          break;
        case 'blob-verifying':
          update(event.digest, event.size, 'Verifying');
          break;
        case 'blob-done':
        case 'blob-exists':
          update(event.digest, event.size, event.type === 'blob-done' ? 'Complete' : 'Exists');
          break;
        case 'warning':
          bars.log(`warning: ${event.message}\n`);
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
