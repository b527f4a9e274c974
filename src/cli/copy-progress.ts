/**
 * Progress of `kimg copy` and `kimg push`, shown as `kimg pull` shows its own (progress.ts): a bar
 * per blob on a terminal, redrawn in place; lines at each state change (and every few seconds
 * while a blob uploads) elsewhere; JSON lines for programs. Blob states: pushing, then already
 * exists, mounted or pushed.
 */
import type { BlobOutcome, CopyEvent } from '../copy/index.ts';
import { escapeControls, formatBytes, shortDigest } from './format.ts';
import { writeLine } from './io.ts';
import {
  PlainBlobLines,
  blobRows,
  pickRenderer,
  rateText,
  type Renderer,
  type ProgressMode,
  type ProgressOptions,
} from './progress.ts';

/** `kimg copy`'s and `kimg push`'s progress display. */
export type CopyProgress = Renderer<CopyEvent>;

const OUTCOME: Record<BlobOutcome, string> = { exists: 'Already exists', mounted: 'Mounted', pushed: 'Pushed' };

/** A line for the events that are not about one blob's bytes; undefined for the others (an
 * up-to-date destination is the summary's to say). */
function eventLine(event: CopyEvent): string | undefined {
  switch (event.type) {
    case 'manifest':
      return `${shortDigest(event.digest)}: Manifest ${event.mediaType}${event.platform === undefined ? '' : ` (${event.platform})`} written`;
    case 'referrer':
      return `${shortDigest(event.digest)}: Referrer ${event.artifactType ?? event.mediaType} of ${shortDigest(event.subject)}${event.via === 'tag' ? ' (+ tag)' : ''}`;
    default:
      return undefined;
  }
}

/** `kimg copy`'s and `kimg push`'s progress, picked as `kimg pull`'s is (`pickRenderer`). */
export function createCopyProgress(
  mode: ProgressMode,
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  options: ProgressOptions = {},
): CopyProgress {
  return pickRenderer(mode, stream, options, { plain: plainCopyProgress, tty: ttyCopyProgress });
}

/** A line when a blob starts uploading, every `intervalMs` while it does, and at its outcome. */
function plainCopyProgress(stream: NodeJS.WritableStream, intervalMs: number, now: () => number): CopyProgress {
  const lines = new PlainBlobLines(stream, intervalMs, now);
  return {
    onEvent(event: CopyEvent) {
      if (event.type === 'blob-progress') {
        if (!lines.has(event.digest) && event.bytes < event.size)
          lines.say(event.digest, `Pushing ${formatBytes(event.size)}`);
        lines.progress(event.digest, 'Pushing', event.bytes, event.size);
      } else if (event.type === 'blob') {
        const timing =
          event.outcome === 'pushed' ? ` (${formatBytes(event.size)} in ${(event.ms / 1000).toFixed(1)}s)` : '';
        lines.say(event.digest, `${OUTCOME[event.outcome]}${timing}`);
      } else {
        const line = eventLine(event);
        if (line !== undefined) writeLine(stream, line);
      }
    },
    stop: () => undefined,
  };
}

/** One bar per blob with bytes and rate, redrawn in place; other events as lines above them. */
function ttyCopyProgress(stream: NodeJS.WritableStream, now: () => number): CopyProgress {
  const { bars, row: created } = blobRows(stream);
  const row = (digest: string, size: number) => created(digest, size, 'Pushing');
  let stopped = false;
  return {
    onEvent(event: CopyEvent) {
      if (stopped) return;
      if (event.type === 'blob-progress') {
        const r = row(event.digest, event.size);
        const rate = r.rate.update(event.bytes, now());
        r.bar.update(event.bytes, {
          state: 'Pushing'.padEnd(14),
          done: formatBytes(event.bytes),
          rate: rateText(rate),
        });
      } else if (event.type === 'blob') {
        // Blobs the destination has get their row too: the image is all there, not half.
        row(event.digest, event.size).bar.update(event.size, {
          state: OUTCOME[event.outcome].padEnd(14),
          done: formatBytes(event.size),
          rate: '',
        });
      } else {
        const line = eventLine(event);
        if (line !== undefined) bars.log(`${escapeControls(line)}\n`);
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
