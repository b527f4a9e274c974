import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Semaphore } from './semaphore.ts';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('lets `permits` in at once and the rest in order as permits come back; giving back twice counts once', async () => {
    const s = new Semaphore(2);
    const a = await s.acquire();
    const b = await s.acquire();
    assert.ok(a && b);
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
    (await c)?.();
    (await d)?.();
    const again = [await s.acquire(), await s.acquire()];
    assert.ok(again.every((release) => release !== undefined));
  });

  it('refuses past maxWaiting, and a waiter whose signal aborts leaves the queue', async () => {
    const s = new Semaphore(1, 1);
    const first = await s.acquire();
    assert.ok(first);
    const controller = new AbortController();
    const waiting = s.acquire(controller.signal);
    assert.equal(await s.acquire(), undefined, 'one already waits');
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, /gave up/);
    const next = s.acquire();
    first();
    assert.ok(await next);
  });
});
