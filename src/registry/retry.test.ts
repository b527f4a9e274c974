import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_RETRY_POLICY,
  HostGate,
  backoffDelay,
  decideRetry,
  isRetryableStatus,
  isRetryableTransportError,
  isTlsError,
  parseRetryAfter,
} from './retry.ts';
import { ManualClock } from '../signals/index.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const errWithCode = (code: string) => Object.assign(new Error(code), { code });

/** Time that moves only when someone sleeps; sleeps are recorded. */
const fakeClock = () => new ManualClock(NOW, { autoAdvance: true });

describe('parseRetryAfter', () => {
  const cases: Array<[string | undefined, number | undefined]> = [
    ['2', 2000],
    [' 120 ', 120_000],
    ['0', 0],
    ['Sun, 01 Mar 2026 12:00:30 GMT', 30_000],
    ['Sunday, 01-Mar-26 12:00:30 GMT', 30_000],
    ['Sun, 01 Mar 2026 11:00:00 GMT', 0],
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['2026-03-01T12:00:30Z', undefined],
    [undefined, undefined],
  ];
  for (const [value, expected] of cases)
    it(`${JSON.stringify(value)} → ${String(expected)}`, () => assert.equal(parseRetryAfter(value, NOW), expected));
});

describe('retry decisions', () => {
  it('retries exactly 408, 429, 500, 502, 503, 504', () => {
    for (let s = 100; s < 600; s++)
      assert.equal(isRetryableStatus(s), [408, 429, 500, 502, 503, 504].includes(s), String(s));
  });

  it('retries broken connections but not refused ones, DNS failures or TLS failures', () => {
    for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT'])
      assert.ok(isRetryableTransportError(errWithCode(code)), code);
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT'])
      assert.ok(!isRetryableTransportError(errWithCode(code)), code);
    assert.ok(isRetryableTransportError(new Error('wrapped', { cause: errWithCode('ECONNRESET') })));
    assert.ok(isTlsError(errWithCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE')));
    assert.ok(isTlsError(errWithCode('ERR_TLS_CERT_ALTNAME_INVALID')));
    assert.ok(!isTlsError(errWithCode('ECONNRESET')));
  });

  it('backs off 0.5 s × 2^n with jitter in [50 %, 100 %], capped at 30 s', () => {
    const p = DEFAULT_RETRY_POLICY;
    assert.equal(
      backoffDelay(1, p, () => 0.999999),
      500,
    );
    assert.equal(
      backoffDelay(1, p, () => 0),
      250,
    );
    assert.equal(
      backoffDelay(2, p, () => 0.999999),
      1000,
    );
    assert.equal(
      backoffDelay(4, p, () => 0.999999),
      4000,
    );
    assert.equal(
      backoffDelay(10, p, () => 0.999999),
      30_000,
    );
    assert.equal(
      backoffDelay(1000, p, () => 0),
      15_000,
    );
  });

  it('honours Retry-After when longer than the back-off', () => {
    const d = decideRetry({ status: 429, retryAfter: '2' }, 1, DEFAULT_RETRY_POLICY, NOW, () => 0);
    assert.deepEqual(d, { retry: true, delayMs: 2000, reason: 'HTTP 429' });
  });

  it('fails at once when Retry-After exceeds 120 s', () => {
    const d = decideRetry({ status: 429, retryAfter: '3600' }, 1, DEFAULT_RETRY_POLICY, NOW);
    assert.deepEqual(d, { retry: false, reason: 'HTTP 429', retryAfterMs: 3_600_000 });
  });

  it('stops after 5 attempts', () => {
    assert.equal(decideRetry({ status: 503 }, 4, DEFAULT_RETRY_POLICY, NOW).retry, true);
    assert.equal(decideRetry({ status: 503 }, 5, DEFAULT_RETRY_POLICY, NOW).retry, false);
    assert.equal(decideRetry({ error: errWithCode('ECONNRESET') }, 5, DEFAULT_RETRY_POLICY, NOW).retry, false);
  });

  it('never retries other 4xx', () => {
    for (const status of [400, 401, 403, 404, 405, 416])
      assert.equal(decideRetry({ status }, 1, DEFAULT_RETRY_POLICY, NOW).retry, false);
  });
});

describe('HostGate', () => {
  it('makes every request to the host wait out a shared back-off', async () => {
    const clock = fakeClock();
    const gate = new HostGate(8, clock);
    gate.backOff(2000);
    const release = await gate.enter();
    assert.deepEqual(clock.sleeps, [2000]);
    assert.ok(clock.now() >= NOW + 2000);
    release();
    // The deadline has passed: the next request does not sleep.
    (await gate.enter())();
    assert.deepEqual(clock.sleeps, [2000]);
  });

  it('never extends a back-off with a shorter one', () => {
    const clock = fakeClock();
    const gate = new HostGate(8, clock);
    gate.backOff(5000);
    gate.backOff(1000);
    assert.equal(gate.backoffUntil, NOW + 5000);
  });

  it('admits at most `limit` at once and hands slots over in order', async () => {
    const gate = new HostGate(2, fakeClock());
    const r1 = await gate.enter();
    const r2 = await gate.enter();
    const order: number[] = [];
    const p3 = gate.enter().then((r) => (order.push(3), r));
    const p4 = gate.enter().then((r) => (order.push(4), r));
    await new Promise((r) => setImmediate(r));
    assert.equal(gate.inFlight, 2);
    assert.deepEqual(order, []);
    r1();
    const r3 = await p3;
    assert.deepEqual(order, [3]);
    r1(); // releasing twice is harmless
    assert.equal(gate.inFlight, 2);
    r2();
    const r4 = await p4;
    r3();
    r4();
    assert.equal(gate.inFlight, 0);
  });

  it('gives up waiting when the signal aborts', async () => {
    const gate = new HostGate(1, fakeClock());
    const held = await gate.enter();
    const ac = new AbortController();
    const waiting = gate.enter(ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    held();
    assert.equal(gate.inFlight, 0);
  });
});

describe('HostGate, back-off extended while queued', () => {
  it('a request that waited for a slot still honours a back-off set meanwhile', async () => {
    const clock = fakeClock();
    const gate = new HostGate(1, clock);
    const held = await gate.enter();
    const queued = gate.enter();
    gate.backOff(4000);
    held();
    const release = await queued;
    assert.ok(clock.now() >= NOW + 4000);
    assert.deepEqual(clock.sleeps, [4000]);
    release();
  });
});
