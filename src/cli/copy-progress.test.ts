import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { CopyEvent } from '../copy/index.ts';
import { createCopyProgress } from './copy-progress.ts';
import type { ProgressMode } from './progress.ts';

const A = `sha256:${'ab'.repeat(32)}`;
const B = `sha256:${'cd'.repeat(32)}`;
const C = `sha256:${'ef'.repeat(32)}`;
const MB = 1_000_000;

/** Copy progress in `mode` driven by a fake clock: what it wrote. */
function render(mode: ProgressMode, events: readonly [at: number, event: CopyEvent][]): string {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (s: string) => (text += s));
  let now = 0;
  const progress = createCopyProgress(mode, stream, { intervalMs: 1000, now: () => now });
  for (const [at, event] of events) {
    now = at;
    progress.onEvent(event);
  }
  progress.stop();
  return text;
}

const copy: [number, CopyEvent][] = [
  [0, { type: 'blob', digest: A, size: 5 * MB, outcome: 'exists', ms: 1 }],
  [0, { type: 'blob', digest: B, size: 7 * MB, outcome: 'mounted', ms: 2 }],
  [100, { type: 'blob-progress', digest: C, size: 100 * MB, bytes: 1 * MB }],
  [600, { type: 'blob-progress', digest: C, size: 100 * MB, bytes: 6 * MB }],
  [2_100, { type: 'blob-progress', digest: C, size: 100 * MB, bytes: 21 * MB }],
  [9_000, { type: 'blob', digest: C, size: 100 * MB, outcome: 'pushed', ms: 8_900 }],
  [9_100, { type: 'manifest', digest: A, mediaType: 'application/vnd.oci.image.manifest.v1+json' }],
];

describe('copy progress', () => {
  it('plain: a line per state (exists, mounted, pushing, pushed) and one per interval while uploading', () => {
    assert.deepEqual(render('plain', copy).trimEnd().split('\n'), [
      'abababababab: Already exists',
      'cdcdcdcdcdcd: Mounted',
      'efefefefefef: Pushing 100MB',
      'efefefefefef: Pushing 21.0MB of 100MB (10.0MB/s)',
      'efefefefefef: Pushed (100MB in 8.9s)',
      'abababababab: Manifest application/vnd.oci.image.manifest.v1+json written',
    ]);
  });

  it('tty: a bar per blob that ends in its outcome', () => {
    const out = render('tty', copy);
    for (const state of ['Already exists', 'Mounted', 'Pushed']) assert.match(out, new RegExp(state));
    assert.match(out, /efefefefefef: Pushed\s+\[=+\] 100MB\/100MB/);
  });

  it('json: one event per line; quiet: nothing', () => {
    const lines = render('json', copy).trimEnd().split('\n');
    assert.equal(lines.length, copy.length);
    assert.equal((JSON.parse(lines[1] ?? '{}') as { outcome?: string }).outcome, 'mounted');
    assert.equal(render('quiet', copy), '');
  });
});
