import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import {
  ParallelPullScheduler,
  SERIAL_QUEUE_CAPACITY,
  SerialPullScheduler,
  pullSchedulerFor,
} from './pull-scheduler.ts';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('serial puller (docs/semantics.md kubelet §7)', () => {
  it('runs one pull at a time, first in first out', async () => {
    const clock = new ManualClock();
    const scheduler = new SerialPullScheduler(clock);
    const order: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    const results = ['a', 'b', 'c'].map((name, i) =>
      scheduler.schedule(async () => {
        order.push(`start ${name}`);
        await gates[i]?.promise;
        order.push(`end ${name}`);
        return name;
      }),
    );
    await tick();
    assert.deepEqual(order, ['start a']);
    assert.deepEqual(scheduler.stats(), { running: 1, queued: 2, blocked: 0 });
    gates[1]?.resolve();
    gates[2]?.resolve();
    await tick();
    assert.deepEqual(order, ['start a'], 'b and c wait for a even when ready');
    gates[0]?.resolve();
    const values = await Promise.all(results);
    assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.deepEqual(
      values.map((v) => v.value),
      ['a', 'b', 'c'],
    );
  });

  it('queues 10 requests besides the one pulling; further callers block until there is room', async () => {
    assert.equal(SERIAL_QUEUE_CAPACITY, 10);
    const scheduler = new SerialPullScheduler(new ManualClock());
    const gate = deferred();
    const all = Array.from({ length: 13 }, () => scheduler.schedule(() => gate.promise));
    await tick();
    assert.deepEqual(scheduler.stats(), { running: 1, queued: 10, blocked: 2 });
    gate.resolve();
    await Promise.all(all);
    assert.deepEqual(scheduler.stats(), { running: 0, queued: 0, blocked: 0 });
  });

  it('measures the pull from when the worker picks the request, and reports failures as results', async () => {
    const clock = new ManualClock();
    const scheduler = new SerialPullScheduler(clock);
    const gate = deferred();
    const first = scheduler.schedule(async () => {
      await gate.promise;
      clock.advance(5_000);
    });
    const second = scheduler.schedule(async () => {
      clock.advance(1_500);
      throw new Error('boom');
    });
    await tick();
    clock.advance(30_000);
    gate.resolve();
    assert.equal((await first).pullMs, 5_000 + 30_000);
    const failed = await second;
    assert.equal(failed.ok, false);
    assert.equal(failed.pullMs, 1_500, 'time waiting in the queue is not pull time');
    assert.equal((failed.error as Error).message, 'boom');
  });
});

describe('parallel puller (docs/semantics.md kubelet §7)', () => {
  it('runs at most maxParallelImagePulls at once; extra requests wait and never fail', async () => {
    const scheduler = new ParallelPullScheduler(new ManualClock(), 2);
    const gate = deferred();
    let running = 0;
    let peak = 0;
    const all = Array.from({ length: 5 }, () =>
      scheduler.schedule(async () => {
        running++;
        peak = Math.max(peak, running);
        await gate.promise;
        running--;
      }),
    );
    await tick();
    assert.deepEqual(scheduler.stats(), { running: 2, queued: 3, blocked: 0 });
    gate.resolve();
    const results = await Promise.all(all);
    assert.equal(peak, 2);
    assert.ok(results.every((r) => r.ok));
    assert.deepEqual(scheduler.stats(), { running: 0, queued: 0, blocked: 0 });
  });

  it('is unlimited when maxParallelImagePulls is unset, and never de-duplicates identical pulls', async () => {
    const scheduler = new ParallelPullScheduler(new ManualClock());
    const gate = deferred();
    let calls = 0;
    const all = Array.from({ length: 20 }, () =>
      scheduler.schedule(async () => {
        calls++;
        await gate.promise;
        return 'same-image';
      }),
    );
    await tick();
    assert.equal(calls, 20);
    gate.resolve();
    await Promise.all(all);
  });

  it('is chosen by the kubelet configuration', () => {
    const clock = new ManualClock();
    assert.equal(pullSchedulerFor({ serializeImagePulls: true }, clock).mode, 'serial');
    const parallel = pullSchedulerFor({ serializeImagePulls: false, maxParallelImagePulls: 3 }, clock);
    assert.equal(parallel.mode, 'parallel');
    assert.equal((parallel as ParallelPullScheduler).maxParallel, 3);
    assert.throws(() => new ParallelPullScheduler(clock, 0), /positive/);
  });
});
