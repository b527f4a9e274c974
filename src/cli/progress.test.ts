import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { PullEvent } from '../pull/index.ts';
import { createProgress } from './progress.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const MB = 1_000_000;

/** Plain progress driven by a fake clock: the lines it printed. */
function plain(events: readonly [at: number, event: PullEvent][]): string[] {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (s: string) => (text += s));
  let now = 0;
  const progress = createProgress('plain', stream, { intervalMs: 1000, now: () => now });
  for (const [at, event] of events) {
    now = at;
    progress.onEvent(event);
  }
  progress.stop();
  return text.trimEnd().split('\n');
}

describe('progress rates', () => {
  it('do not count the time a blob waited for a download slot', () => {
    const out = plain([
      [0, { type: 'blob-waiting', digest: DIGEST, size: 100 * MB, mediaType: 'layer' }],
      // Queued for 60 s behind other blobs, then 10 MB/s.
      [60_000, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 1 * MB }],
      [62_000, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 21 * MB }],
    ]);
    assert.equal(out.at(-1), 'abababababab: Downloading 21.0MB of 100MB (10.0MB/s)');
  });

  it('do not count bytes a resumed download already had on disk', () => {
    const out = plain([
      [0, { type: 'blob-waiting', digest: DIGEST, size: 100 * MB, mediaType: 'layer' }],
      [5_000, { type: 'blob-resumed', digest: DIGEST, size: 100 * MB, offset: 50 * MB }],
      [7_000, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 54 * MB }],
    ]);
    assert.deepEqual(out, [
      'abababababab: Pulling 100MB',
      'abababababab: Resuming at 50.0MB of 100MB',
      'abababababab: Downloading 54.0MB of 100MB (2.00MB/s)',
    ]);
  });

  it('print a plain line at most once per interval per blob', () => {
    const out = plain([
      [0, { type: 'blob-waiting', digest: DIGEST, size: 100 * MB, mediaType: 'layer' }],
      [100, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 1 * MB }],
      [600, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 2 * MB }],
      [1_200, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 3 * MB }],
      [1_500, { type: 'blob-progress', digest: DIGEST, size: 100 * MB, bytes: 4 * MB }],
    ]);
    assert.equal(out.filter((l) => l.includes('Downloading')).length, 1);
  });
});
