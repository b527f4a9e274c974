import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TtlCache } from './cache.ts';

describe('TtlCache stale window (stale-while-error)', () => {
  test('an expired entry is never fresh, but stale until the window closes', () => {
    let now = 1_000;
    const cache = new TtlCache<string>(10_000, 100, () => now, 30_000);
    cache.set('k', 'sha256:a');
    now += 5_000;
    assert.equal(cache.get('k'), 'sha256:a');
    assert.deepEqual(cache.stale('k'), { value: 'sha256:a', ageMs: 5_000 });
    now += 10_000; // expired 5 s ago
    assert.equal(cache.get('k'), undefined);
    assert.deepEqual(cache.stale('k'), { value: 'sha256:a', ageMs: 15_000 });
    now += 25_000; // expired 30 s ago: the window is closed
    assert.equal(cache.stale('k'), undefined);
    assert.equal(cache.size, 0);
  });

  test('without a stale window, expired entries are gone', () => {
    let now = 0;
    const cache = new TtlCache<string>(1_000, 100, () => now);
    cache.set('k', 'v');
    now = 1_000;
    assert.equal(cache.stale('k'), undefined);
    assert.equal(cache.get('k'), undefined);
    assert.equal(cache.size, 0);
  });

  test('a TTL of 0 with a stale window keeps the last answer, only as stale', () => {
    let now = 0;
    const cache = new TtlCache<string>(0, 100, () => now, 60_000);
    cache.set('k', 'v');
    assert.equal(cache.get('k'), undefined);
    now = 59_999;
    assert.deepEqual(cache.stale('k'), { value: 'v', ageMs: 59_999 });
    now = 60_000;
    assert.equal(cache.stale('k'), undefined);
  });

  test('a TTL of 0 without a stale window stores nothing', () => {
    const cache = new TtlCache<string>(0, 100, () => 0);
    cache.set('k', 'v');
    assert.equal(cache.size, 0);
  });
});
