import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { raceSignal } from './race.ts';

describe('raceSignal', () => {
  it('passes the promise through without a signal, or when it settles first', async () => {
    assert.equal(await raceSignal(Promise.resolve(1), undefined), 1);
    assert.equal(await raceSignal(Promise.resolve(2), new AbortController().signal), 2);
    await assert.rejects(raceSignal(Promise.reject(new Error('boom')), new AbortController().signal), /boom/);
  });

  it('rejects with the reason when the signal aborts first, leaving the work running', async () => {
    const controller = new AbortController();
    let finish!: (v: number) => void;
    const work = new Promise<number>((resolve) => (finish = resolve));
    const raced = raceSignal(work, controller.signal);
    const reason = new Error('budget spent');
    controller.abort(reason);
    await assert.rejects(raced, (err) => err === reason);
    finish(3);
    assert.equal(await work, 3);
  });

  it('rejects at once for a signal already aborted', async () => {
    const reason = new Error('gone');
    await assert.rejects(raceSignal(new Promise(() => undefined), AbortSignal.abort(reason)), (err) => err === reason);
  });
});
