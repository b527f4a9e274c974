import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, IMAGE_BACKOFF_INITIAL_MS, IMAGE_BACKOFF_MAX_MS, backOffKey } from './backoff.ts';
import { ManualClock } from '../signals/index.ts';

function kubeletBackoff() {
  const clock = new ManualClock();
  return { clock, backOff: new Backoff(IMAGE_BACKOFF_INITIAL_MS, IMAGE_BACKOFF_MAX_MS, clock) };
}

describe('image pull back-off (docs/semantics.md kubelet §5)', () => {
  it('uses 10 s doubling to 300 s', () => {
    assert.equal(IMAGE_BACKOFF_INITIAL_MS, 10_000);
    assert.equal(IMAGE_BACKOFF_MAX_MS, 300_000);
    const { clock, backOff } = kubeletBackoff();
    const windows: number[] = [];
    for (let i = 0; i < 8; i++) {
      backOff.next('k');
      windows.push(backOff.state('k')?.windowMs ?? -1);
      clock.advance(windows.at(-1) ?? 0);
    }
    assert.deepEqual(windows, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('is in back-off strictly before the window ends (now − lastUpdate < window)', () => {
    const { clock, backOff } = kubeletBackoff();
    assert.equal(backOff.isInBackOffSinceUpdate('k'), false, 'an unknown key is not in back-off');
    backOff.next('k');
    assert.equal(backOff.isInBackOffSinceUpdate('k'), true);
    clock.advance(9_999);
    assert.equal(backOff.isInBackOffSinceUpdate('k'), true);
    clock.advance(1);
    assert.equal(backOff.isInBackOffSinceUpdate('k'), false, 'exactly at the window end the pull is allowed');
  });

  it('expires strictly after 2·max without an update: the next failure starts at 10 s again', () => {
    const { clock, backOff } = kubeletBackoff();
    backOff.next('k');
    backOff.next('k');
    assert.equal(backOff.state('k')?.windowMs, 20_000);
    clock.advance(600_000);
    backOff.next('k');
    assert.equal(backOff.state('k')?.windowMs, 40_000, 'at exactly 600 s the entry is still live and doubles');
    clock.advance(600_001);
    assert.equal(backOff.isInBackOffSinceUpdate('k'), false);
    backOff.next('k');
    assert.equal(backOff.state('k')?.windowMs, 10_000, 'after more than 600 s it starts over');
  });

  it('success does not reset a key: GC only drops expired entries', () => {
    const { clock, backOff } = kubeletBackoff();
    backOff.next('a');
    backOff.next('a');
    clock.advance(20_000);
    backOff.gc();
    assert.equal(backOff.state('a')?.windowMs, 20_000);
    backOff.next('a');
    assert.equal(backOff.state('a')?.windowMs, 40_000, 'the window keeps growing after a success in between');
    backOff.next('b');
    clock.advance(600_001);
    backOff.gc();
    assert.equal(backOff.size, 0);
  });

  it('holds for any initial and max', () => {
    const clock = new ManualClock();
    const backOff = new Backoff(1_000, 5_000, clock);
    const windows: number[] = [];
    for (let i = 0; i < 5; i++) {
      backOff.next('k');
      windows.push(backOff.state('k')?.windowMs ?? -1);
    }
    assert.deepEqual(windows, [1_000, 2_000, 4_000, 5_000, 5_000]);
    clock.advance(10_001);
    backOff.next('k');
    assert.equal(backOff.state('k')?.windowMs, 1_000);
  });

  it('keys by pod UID and image as written', () => {
    assert.equal(backOffKey('uid-1', 'nginx:wrong'), 'uid-1_nginx:wrong');
    const { backOff } = kubeletBackoff();
    backOff.next(backOffKey('pod-a', 'nginx'));
    assert.equal(backOff.isInBackOffSinceUpdate(backOffKey('pod-b', 'nginx')), false, 'pods never share back-off');
    assert.equal(
      backOff.isInBackOffSinceUpdate(backOffKey('pod-a', 'nginx:latest')),
      false,
      'the key is the string as written',
    );
  });

  it('reports when the next pull is allowed', () => {
    const { clock, backOff } = kubeletBackoff();
    backOff.next('k');
    const start = clock.now();
    assert.deepEqual(backOff.state('k'), {
      windowMs: 10_000,
      lastUpdate: start,
      retryAt: start + 10_000,
      inBackOff: true,
    });
    assert.equal(backOff.reset('k'), true);
    assert.equal(backOff.state('k'), undefined);
  });
});
