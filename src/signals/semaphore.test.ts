import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Semaphore } from './semaphore.ts';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('lets `permits` in at once and the rest in order as permits come back; giving back twice counts once', async () => {
    const s = new Semaphore(2);
    const a = await s.acquire();
    const b = await s.acquire();
    const order: string[] = [];
    const c = s.acquire().then((release) => (order.push('c'), release));
    const d = s.acquire().then((release) => (order.push('d'), release));
    await tick();
    assert.deepEqual(order, []);
    a();
    a();
    await tick();
    assert.deepEqual(order, ['c']);
    b();
    await tick();
    assert.deepEqual(order, ['c', 'd']);
    (await c)();
    (await d)();
    assert.equal(s.inUse, 0);
    await s.acquire();
    await s.acquire();
    assert.equal(s.inUse, 2);
  });

  it('refuses past maxWaiting, and a waiter whose signal aborts leaves the queue', async () => {
    const s = new Semaphore(1);
    const first = await s.acquire();
    const controller = new AbortController();
    const waiting = s.acquire(controller.signal);
    assert.equal(s.queued, 1);
    assert.equal(await s.acquireUnlessQueued(1), undefined, 'one already waits');
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, /gave up/);
    assert.equal(s.queued, 0);
    const next = s.acquireUnlessQueued(1);
    first();
    assert.ok(await next);
    assert.equal(s.inUse, 1);
  });
});
