import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SingleFlight } from '../signals/index.ts';
import { TtlCache } from './cache.ts';
import { BudgetExpired, failureReason } from './failures.ts';
import { RegistryError } from '../registry/index.ts';
import { parseAdmissionReview, parseTimeoutParameter, requestBudgetMs } from './review.ts';

describe('AdmissionReview parsing and the request budget (docs/semantics.md admission §1, §4.10)', () => {
  test('a review needs JSON, admission.k8s.io/v1 AdmissionReview and a request uid', () => {
    assert.equal(parseAdmissionReview('{').ok, false);
    assert.equal(
      parseAdmissionReview('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}').ok,
      true,
    );
    const parsed = parseAdmissionReview(
      Buffer.from(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'u',
            kind: { group: '', version: 'v1', kind: 'Pod' },
            operation: 'CREATE',
            namespace: 'ns',
            object: 7,
            dryRun: true,
          },
        }),
      ),
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.request, {
      uid: 'u',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'ns',
      operation: 'CREATE',
      object: 7,
      dryRun: true,
    });
  });

  test('?timeout= is a Go duration; missing or invalid means 10 s', () => {
    assert.equal(parseTimeoutParameter('10s'), 10_000);
    assert.equal(parseTimeoutParameter('1.5s'), 1500);
    assert.equal(parseTimeoutParameter('500ms'), 500);
    assert.equal(parseTimeoutParameter('2m'), 120_000);
    for (const bad of [undefined, null, '', '10', 'abc', '-1s', '0s'])
      assert.equal(parseTimeoutParameter(bad), 10_000, String(bad));
    assert.equal(requestBudgetMs(10_000, 0.8, 8000), 8000);
    assert.equal(requestBudgetMs(2000, 0.8, 8000), 1600);
    assert.equal(requestBudgetMs(30_000, 0.8, 8000), 8000);
  });

  test('failure keywords', () => {
    assert.equal(failureReason(new RegistryError('ErrManifestUnknown', 'm', { status: 404 })), 'not found');
    assert.equal(failureReason(new RegistryError('ErrNameUnknown', 'm')), 'not found');
    assert.equal(failureReason(new RegistryError('ErrUnauthorized', 'm', { status: 401 })), 'auth');
    assert.equal(failureReason(new RegistryError('ErrDenied', 'm', { status: 403 })), 'auth');
    assert.equal(failureReason(new BudgetExpired(100)), 'timeout');
    assert.equal(
      failureReason(new RegistryError('ErrRegistryUnavailable', 'GET x failed: UND_ERR_HEADERS_TIMEOUT (…)')),
      'timeout',
    );
    assert.equal(failureReason(new RegistryError('ErrRegistryUnavailable', 'm', { status: 503 })), 'HTTP 503');
    assert.equal(
      failureReason(new RegistryError('ErrConnection', 'GET x failed: ECONNREFUSED (connect)')),
      'ECONNREFUSED',
    );
  });
});

describe('digest cache and single-flight (docs/semantics.md admission §4.9)', () => {
  test('entries expire after the TTL; 0 disables; the oldest go beyond the limit', () => {
    let now = 0;
    const cache = new TtlCache<string>(1000, 2, () => now);
    cache.set('a', '1');
    now = 999;
    assert.equal(cache.get('a'), '1');
    now = 1000;
    assert.equal(cache.get('a'), undefined);
    cache.set('a', '1');
    cache.set('b', '2');
    cache.set('c', '3');
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 2);
    const off = new TtlCache<string>(0);
    off.set('a', '1');
    assert.equal(off.get('a'), undefined);
  });

  test('concurrent callers share one call; one caller leaving does not abort it; the last one does', async () => {
    const flights = new SingleFlight<string>();
    let starts = 0;
    let release: (v: string) => void = () => undefined;
    let signalSeen: AbortSignal | undefined;
    const start = (signal: AbortSignal) => {
      starts++;
      signalSeen = signal;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const leaving = new AbortController();
    const a = flights.run('k', start, leaving.signal);
    const b = flights.run('k', start);
    assert.equal(a.joined, false);
    assert.equal(b.joined, true);
    leaving.abort(new Error('gone'));
    await assert.rejects(a.result, /gone/);
    assert.equal(signalSeen?.aborted, false);
    release('v');
    assert.equal(await b.result, 'v');
    assert.equal(starts, 1);

    const only = new AbortController();
    const c = flights.run('k2', start, only.signal);
    only.abort(new Error('bye'));
    await assert.rejects(c.result, /bye/);
    assert.equal(signalSeen?.aborted, true, 'the shared call stops when nobody waits');
    assert.equal(flights.inFlight, 0);
  });
});
