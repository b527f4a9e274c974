import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Histogram, renderMetrics } from './prometheus.ts';

describe('Prometheus text exposition', () => {
  test('counters: series in first-seen order, escaped label values, get and sum', () => {
    const c = new Counter('x_total', 'Things.');
    c.inc({ route: 'blob', status: '200' });
    c.inc({ route: 'blob', status: '200' }, 2);
    c.inc({ route: 'manifest', status: 'a"b\\c\nd' });
    assert.equal(c.get({ route: 'blob', status: '200' }), 3);
    assert.equal(c.get({ route: 'blob', status: '404' }), 0);
    assert.equal(c.sum({ route: 'blob' }), 3);
    assert.equal(c.sum(), 4);
    assert.equal(
      renderMetrics([c, new Counter('y_total', 'Unlabelled.')]),
      [
        '# HELP x_total Things.',
        '# TYPE x_total counter',
        'x_total{route="blob",status="200"} 3',
        'x_total{route="manifest",status="a\\"b\\\\c\\nd"} 1',
        '# HELP y_total Unlabelled.',
        '# TYPE y_total counter',
        '',
      ].join('\n'),
    );
  });

  test('histograms: cumulative buckets, +Inf, sum and count; extra lines last', () => {
    const h = new Histogram('d_seconds', 'Durations.', [0.1, 1]);
    h.observe({ w: 'a' }, 0.05);
    h.observe({ w: 'a' }, 0.5);
    h.observe({ w: 'a' }, 5);
    assert.equal(
      renderMetrics([h], ['# TYPE g gauge', 'g 1']),
      [
        '# HELP d_seconds Durations.',
        '# TYPE d_seconds histogram',
        'd_seconds_bucket{w="a",le="0.1"} 1',
        'd_seconds_bucket{w="a",le="1"} 2',
        'd_seconds_bucket{w="a",le="+Inf"} 3',
        'd_seconds_sum{w="a"} 5.55',
        'd_seconds_count{w="a"} 3',
        '# TYPE g gauge',
        'g 1',
        '',
      ].join('\n'),
    );
  });
});
