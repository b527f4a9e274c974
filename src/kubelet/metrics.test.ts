import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import { MetricsRegistry, PodStartupLatencyTracker, imageSizeBucket } from './metrics.ts';

const MB = 1024 * 1024;
const GB = 1024 * MB;

describe('metrics (docs/semantics.md kubelet §3)', () => {
  it('labels pull durations by image size bucket (N/A for 0)', () => {
    const table: [number, string][] = [
      [0, 'N/A'],
      [1, '0-10MB'],
      [10 * MB, '0-10MB'],
      [10 * MB + 1, '10MB-100MB'],
      [500 * MB + 1, '500MB-1GB'],
      [3 * GB, '1GB-5GB'],
      [15 * GB, '10GB-20GB'],
      [100 * GB + 1, 'GT100GB'],
    ];
    for (const [bytes, label] of table) assert.equal(imageSizeBucket(bytes), label, `${bytes}`);
  });

  it('counts and renders', () => {
    const metrics = new MetricsRegistry();
    metrics.inc('x_total', { b: '2', a: '1' });
    metrics.inc('x_total', { a: '1', b: '2' });
    metrics.observe('d_seconds', { size: 'N/A' }, 1.5);
    assert.equal(metrics.counter('x_total', { a: '1', b: '2' }), 2);
    assert.equal(
      metrics.render(),
      'x_total{a="1",b="2"} 2\nd_seconds_count{size="N/A"} 1\nd_seconds_sum{size="N/A"} 1.5',
    );
  });
});

describe('PodStartupLatencyTracker', () => {
  it('honours a finish only for a pod whose start it saw', () => {
    const clock = new ManualClock();
    const tracker = new PodStartupLatencyTracker(clock);
    tracker.finishedPulling('a');
    assert.equal(tracker.pulling('a'), undefined);
    tracker.startedPulling('a');
    const start = clock.now();
    clock.advance(5);
    tracker.startedPulling('a');
    tracker.finishedPulling('a');
    assert.deepEqual(tracker.pulling('a'), { firstStartedPulling: start, lastFinishedPulling: start + 5 });
  });
});

describe('ManualClock', () => {
  it('wakes sleepers when advanced past their time', async () => {
    const clock = new ManualClock(0);
    const woke: number[] = [];
    const a = clock.sleep(10).then(() => woke.push(10));
    const b = clock.sleep(5).then(() => woke.push(5));
    clock.advance(4);
    await Promise.resolve();
    assert.deepEqual(woke, []);
    clock.advance(6);
    await Promise.all([a, b]);
    assert.deepEqual(woke, [5, 10]);
    assert.throws(() => clock.advance(-1));
  });
});
