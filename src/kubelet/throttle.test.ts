import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import { PULL_QPS_EXCEEDED, PullQpsExceededError, TokenBucket, pullThrottle } from './throttle.ts';

describe('registry pull throttle (docs/semantics.md kubelet §7)', () => {
  it('starts with burst tokens and fails fast when they are gone', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(5, 10, clock);
    const accepted = Array.from({ length: 11 }, () => bucket.tryAccept());
    assert.deepEqual(accepted, [...Array(10).fill(true), false]);
  });

  it('refills at qps per second, never beyond burst', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(5, 10, clock);
    for (let i = 0; i < 10; i++) bucket.tryAccept();
    clock.advance(199);
    assert.equal(bucket.tryAccept(), false, '0.995 tokens is not a token');
    clock.advance(1);
    assert.equal(bucket.tryAccept(), true);
    clock.advance(3_600_000);
    assert.equal(Math.round(bucket.tokens), 10);
  });

  it('burst 0 rejects everything; qps 0 means no throttle at all', () => {
    const clock = new ManualClock();
    const none = new TokenBucket(5, 0, clock);
    clock.advance(60_000);
    assert.equal(none.tryAccept(), false);
    assert.equal(pullThrottle(0, 10, clock), undefined);
    assert.ok(pullThrottle(5, 10, clock) instanceof TokenBucket);
  });

  it('fails with the kubelet text', () => {
    assert.equal(PULL_QPS_EXCEEDED, 'pull QPS exceeded');
    assert.equal(new PullQpsExceededError().message, 'pull QPS exceeded');
  });
});
