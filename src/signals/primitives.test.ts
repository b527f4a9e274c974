import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedMutex, ManualClock, SingleFlight } from './index.ts';

describe('SingleFlight', () => {
  it('shares one call per key, and a failure is not kept', async () => {
    const flights = new SingleFlight<number>();
    let calls = 0;
    const start = async () => ++calls;
    const a = flights.run('k', start);
    const b = flights.run('k', start);
    assert.equal(b.joined, true);
    assert.deepEqual(await Promise.all([a.result, b.result]), [1, 1]);
    await assert.rejects(flights.run('k', () => Promise.reject(new Error('no'))).result, /no/);
    assert.equal(await flights.run('k', start).result, 2);
  });

  it('settleBeforeLastLeaves: the last caller to abort hears of it only after the work stopped', async () => {
    const flights = new SingleFlight<string>({ settleBeforeLastLeaves: true });
    const order: string[] = [];
    const first = new AbortController();
    const last = new AbortController();
    const work = (signal: AbortSignal) =>
      new Promise<string>((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          // Cleaning up takes a moment after the abort.
          setTimeout(() => {
            order.push('work stopped');
            reject(new Error('aborted'));
          }, 20);
        });
      });
    const a = flights.run('k', work, first.signal).result.catch(() => order.push('first rejected'));
    const b = flights.run('k', work, last.signal).result.catch(() => order.push('last rejected'));
    first.abort(new Error('first'));
    await a;
    last.abort(new Error('last'));
    await b;
    assert.deepEqual(order, ['first rejected', 'work stopped', 'last rejected']);
    assert.equal(flights.inFlight, 0);
  });
});

describe('KeyedMutex', () => {
  it('runs one holder per key at a time, in arrival order; other keys are free', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    const hold = (key: string, name: string, ms: number) =>
      mutex.run(key, async () => {
        order.push(`${name} in`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name} out`);
      });
    await Promise.all([hold('a', 'a1', 20), hold('a', 'a2', 1), hold('b', 'b1', 1)]);
    assert.deepEqual(order, ['a1 in', 'b1 in', 'b1 out', 'a1 out', 'a2 in', 'a2 out']);
  });

  it('a waiter leaves on its signal; tryAcquire does not wait', async () => {
    const mutex = new KeyedMutex();
    const release = mutex.tryAcquire('k');
    assert.ok(release !== undefined);
    assert.equal(mutex.tryAcquire('k'), undefined);
    const controller = new AbortController();
    const waiting = mutex.acquire('k', controller.signal);
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, /gave up/);
    release();
    const again = mutex.tryAcquire('k');
    assert.ok(again !== undefined);
    again();
  });
});

describe('ManualClock', () => {
  it('wakes sleepers when advanced, and records every wait', async () => {
    const clock = new ManualClock(1000);
    let woke = false;
    const sleeping = clock.sleep(50).then(() => (woke = true));
    clock.advance(49);
    await Promise.resolve();
    assert.equal(woke, false);
    clock.advance(1);
    await sleeping;
    assert.equal(clock.now(), 1050);
    assert.deepEqual(clock.sleeps, [50]);
    assert.throws(() => clock.advance(-1), RangeError);
  });

  it('autoAdvance: each wait passes at once and moves time', async () => {
    const clock = new ManualClock(0, { autoAdvance: true });
    await clock.sleep(375);
    await clock.sleep(750);
    assert.equal(clock.now(), 1125);
    assert.deepEqual(clock.sleeps, [375, 750]);
  });
});
