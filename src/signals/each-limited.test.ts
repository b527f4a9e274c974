import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eachLimited } from './each-limited.ts';

describe('eachLimited', () => {
  it('runs at most `limit` at once, every item once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await eachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 2));
      seen.push(n);
      running--;
    });
    assert.equal(most, 3);
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5, 6, 7]);
  });

  it('on the first failure starts nothing more, aborts the others, and throws it once they settled', async () => {
    const started: number[] = [];
    let settled = 0;
    const failure = new Error('item 2 failed');
    await assert.rejects(
      eachLimited([1, 2, 3, 4, 5], 2, async (n, stop) => {
        started.push(n);
        try {
          if (n === 2) throw failure;
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, 5000);
            stop.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(new Error('stopped'));
            });
          });
        } finally {
          settled++;
        }
      }),
      (err) => err === failure,
    );
    assert.deepEqual(started, [1, 2]);
    assert.equal(settled, 2);
  });

  it("stops when the caller's signal aborts", async () => {
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));
    let ran = 0;
    await assert.rejects(
      eachLimited([1, 2], 1, async () => void ran++, controller.signal),
      /caller gave up/,
    );
    assert.equal(ran, 0);
  });
});
