import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KimgError } from '../errors/index.ts';
import { ManualClock } from '../signals/index.ts';
import type { KubeletEvent } from './events.ts';
import { FakeImageService } from './testing/fake-image-service.ts';
import { ImageGarbageCollector, amountToFree, evictionOrder, usagePercent, type ImageGcPolicy } from './gc.ts';

const policy: ImageGcPolicy = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 120_000, maxAgeMs: 0 };
const MIN = 60_000;

function node(images: [name: string, id: string, size: number][], gcPolicy: ImageGcPolicy = policy) {
  const clock = new ManualClock();
  const fake = new FakeImageService();
  for (const [name, id, size] of images) fake.addLocal(name, id, size);
  const events: KubeletEvent[] = [];
  const gc = new ImageGarbageCollector({
    imageService: fake,
    policy: gcPolicy,
    clock,
    recorder: (e) => events.push(e),
  });
  return { clock, fake, gc, events };
}

const stats = (capacity: number, available: number) => async () => ({ capacity, available });

describe('image GC arithmetic (docs/semantics.md kubelet §11)', () => {
  it('computes usage with integer division and clamps available to capacity', () => {
    assert.equal(usagePercent(1000, 150), 85);
    assert.equal(usagePercent(1000, 151), 85, '100 − trunc(15.1) = 85');
    assert.equal(usagePercent(1000, 2000), 0);
    assert.equal(amountToFree(1000, 100, 80), 100);
  });
  it('orders least recently used first, ties by first detection', () => {
    const order = evictionOrder([
      { id: 'c', lastUsed: 5, firstDetected: 1 },
      { id: 'a', lastUsed: 0, firstDetected: 9 },
      { id: 'b', lastUsed: 0, firstDetected: 3 },
    ]);
    assert.deepEqual(
      order.map((i) => i.id),
      ['b', 'a', 'c'],
    );
  });
});

describe('image GC rounds', () => {
  it('does nothing below the high threshold', async () => {
    const { gc, fake } = node([['a:1', 'A', 100]]);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 160) });
    assert.equal(result.usagePercent, 84);
    assert.equal(fake.count('removeImage'), 0);
    assert.deepEqual(
      result.decisions.map((d) => d.reason),
      ['below-threshold'],
    );
  });

  it('at or above the high threshold frees down to the low one, LRU first, never in-use or pinned, only old enough', async () => {
    const { gc, fake, clock } = node([
      ['old:1', 'OLD', 60],
      ['mid:1', 'MID', 60],
      ['new:1', 'NEW', 60],
      ['used:1', 'USED', 500],
    ]);
    await gc.detectImages(clock.now(), new Set());
    clock.advance(3 * MIN);
    gc.markUsed(['MID']);
    clock.advance(MIN);
    gc.markUsed(['NEW']);
    clock.advance(MIN);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 150), inUse: new Set(['USED']) });
    assert.equal(result.usagePercent, 85);
    assert.equal(result.amountToFree, 50);
    assert.deepEqual(
      result.decisions.map((d) => `${d.id} ${d.action} ${d.reason}`),
      ['OLD remove space', 'MID keep enough-freed', 'NEW keep enough-freed', 'USED keep in-use'],
    );
    assert.deepEqual(
      fake.calls.filter((c) => c.op === 'removeImage').map((c) => c.image),
      ['OLD'],
    );
    assert.equal(result.error, undefined);
  });

  it('skips images younger than the minimum age and reports FreeDiskSpaceFailed when short', async () => {
    const { gc, events } = node([
      ['a:1', 'A', 30],
      ['b:1', 'B', 30],
    ]);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 100) });
    assert.deepEqual(
      result.decisions.map((d) => d.reason),
      ['younger-than-min-age', 'younger-than-min-age'],
    );
    const message =
      'Failed to garbage collect required amount of images. Attempted to free 100 bytes, but only found 0 bytes eligible to free.';
    assert.equal(result.error, message);
    assert.deepEqual(
      events.map((e) => `${e.object?.kind} ${e.type} ${e.reason} ${e.message}`),
      [`Node Warning FreeDiskSpaceFailed ${message}`],
    );
  });

  it('keeps images used at or after the round began', async () => {
    const { gc, clock } = node([['a:1', 'A', 100]]);
    await gc.detectImages(clock.now(), new Set());
    clock.advance(5 * MIN);
    gc.markUsed(['A'], clock.now());
    const result = await gc.garbageCollect({ fsStats: stats(1000, 0) });
    assert.deepEqual(
      result.decisions.map((d) => d.reason),
      ['used-too-recently'],
    );
  });

  it('pinned images are never collected', async () => {
    const { gc, fake, clock } = node([['pause:3.9', 'P', 100]]);
    const original = fake.listImages.bind(fake);
    fake.listImages = async () => (await original()).map((i) => ({ ...i, pinned: true }));
    await gc.detectImages(clock.now(), new Set());
    clock.advance(10 * MIN);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 0) });
    assert.deepEqual(
      result.decisions.map((d) => `${d.id} ${d.reason}`),
      ['P pinned'],
    );
    assert.equal(fake.count('removeImage'), 0);
  });

  it('reports InvalidDiskCapacity for a zero capacity', async () => {
    const { gc, events } = node([['a:1', 'A', 1]]);
    const result = await gc.garbageCollect({ fsStats: stats(0, 0) });
    assert.equal(result.error, 'invalid capacity 0 on image filesystem');
    assert.equal(events[0]?.reason, 'InvalidDiskCapacity');
  });

  it('removes images unused for longer than the maximum age once collection has run that long', async () => {
    const { gc, clock, fake } = node(
      [
        ['a:1', 'A', 1],
        ['b:1', 'B', 1],
      ],
      { ...policy, maxAgeMs: 10 * MIN },
    );
    await gc.detectImages(clock.now(), new Set());
    clock.advance(5 * MIN);
    gc.markUsed(['B']);
    clock.advance(5 * MIN);
    assert.equal(
      (await gc.garbageCollect({ fsStats: stats(1000, 1000) })).decisions.filter((d) => d.action === 'remove').length,
      0,
      'not yet collecting for max age',
    );
    clock.advance(1);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 1000) });
    assert.deepEqual(
      result.decisions.map((d) => `${d.id} ${d.action} ${d.reason}`),
      ['A remove age', 'B keep below-threshold'],
    );
    assert.deepEqual(fake.localIds(), ['B']);
  });

  it('aggregates deletion failures without stopping', async () => {
    const { gc, clock, fake } = node([
      ['a:1', 'A', 60],
      ['b:1', 'B', 60],
    ]);
    await gc.detectImages(clock.now(), new Set());
    clock.advance(10 * MIN);
    const original = fake.removeImage.bind(fake);
    fake.removeImage = async (id) =>
      id === 'A' ? Promise.reject(new KimgError('ErrBusy', 'image A is busy')) : original(id);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 100) });
    assert.deepEqual(
      result.decisions.map((d) => `${d.id} ${d.action} ${d.reason}`),
      ['A keep deletion-failed', 'B remove space'],
    );
    assert.equal(
      result.error,
      'wanted to free 100 bytes, but freed 60 bytes space with errors in image deletion: image A is busy',
    );
  });

  it('a dry run removes nothing and reports what it would do', async () => {
    const { gc, clock, fake } = node([['a:1', 'A', 200]]);
    await gc.detectImages(clock.now(), new Set());
    clock.advance(10 * MIN);
    const result = await gc.garbageCollect({ fsStats: stats(1000, 100), dryRun: true });
    assert.deepEqual(
      result.decisions.map((d) => `${d.action} ${d.reason}`),
      ['remove space'],
    );
    assert.equal(fake.count('removeImage'), 0);
    assert.equal(result.freed, 200);
  });

  it('forgets images that vanished and keeps state across runs', async () => {
    const { gc, clock, fake } = node([['a:1', 'A', 1]]);
    await gc.detectImages(clock.now(), new Set());
    const state = gc.exportState();
    assert.deepEqual(state.images, { A: { firstDetected: clock.now(), lastUsed: 0 } });
    await fake.removeImage('A');
    await gc.detectImages(clock.now(), new Set());
    assert.deepEqual(gc.exportState().images, {});
  });
});
