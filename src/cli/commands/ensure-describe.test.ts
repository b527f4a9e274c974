import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeletEvent } from '../../kubelet/index.ts';
import { aggregateEvents, describePod, formatEvents } from './ensure-describe.ts';

const T = Date.UTC(2025, 0, 2, 3, 4, 5);
const event = (reason: string, message: string, at: number, type: 'Normal' | 'Warning' = 'Normal'): KubeletEvent => ({
  type,
  reason,
  message,
  timestamp: T + at * 1000,
  source: 'kubelet',
  object: { kind: 'Pod', namespace: 'default', name: 'web', uid: 'u', fieldPath: 'spec.containers{app}' },
});

describe('kubectl describe output', () => {
  it('aggregates repeated events as (xN over M) and sorts by last occurrence', () => {
    const events = [
      event('Pulling', 'Pulling image "nginx:wrong"', 0),
      event('Failed', 'Failed to pull image "nginx:wrong": not found', 0, 'Warning'),
      event('BackOff', 'Back-off pulling image "nginx:wrong"', 5),
      event('Pulling', 'Pulling image "nginx:wrong"', 12),
    ];
    assert.deepEqual(
      aggregateEvents(events).map((e) => `${e.reason} x${e.count}`),
      ['Failed x1', 'BackOff x1', 'Pulling x2'],
    );
    assert.deepEqual(formatEvents(events, T + 130_000), [
      'Events:',
      '  Type     Reason   Age                   From     Message',
      '  ----     ------   ----                  ----     -------',
      '  Warning  Failed   2m10s                 kubelet  Failed to pull image "nginx:wrong": not found',
      '  Normal   BackOff  2m5s                  kubelet  Back-off pulling image "nginx:wrong"',
      '  Normal   Pulling  118s (x2 over 2m10s)  kubelet  Pulling image "nginx:wrong"',
    ]);
    assert.deepEqual(formatEvents([], T), ['Events:  <none>']);
  });

  it('shows waiting reasons and messages per container', () => {
    const text = describePod(
      {
        name: 'web',
        namespace: 'default',
        source: 'Pod default/web',
        containers: [
          {
            name: 'init',
            init: true,
            image: 'busybox:1.36',
            pullPolicy: 'IfNotPresent',
            ready: true,
            imageRef: 'sha256:1',
          },
          {
            name: 'app',
            init: false,
            image: 'nginx:wrong',
            pullPolicy: 'IfNotPresent',
            ready: false,
            imageRef: '',
            waiting: {
              reason: 'ImagePullBackOff',
              message: 'Back-off pulling image "nginx:wrong": ErrImagePull: not found',
            },
          },
        ],
        events: [],
      },
      T,
    );
    assert.match(text, /^Status:\s+Pending \(ImagePullBackOff\)$/m);
    assert.match(text, /^Init Containers:\n {2}init:\n {4}Image:\s+busybox:1\.36\n {4}Image ID:\s+sha256:1/m);
    assert.match(
      text,
      /^ {6}Reason:\s+ImagePullBackOff\n {6}Message:\s+Back-off pulling image "nginx:wrong": ErrImagePull: not found$/m,
    );
    assert.match(text, /^Events: {2}<none>$/m);
  });
});
