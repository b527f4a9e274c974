import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultPullPolicy } from './policy.ts';

const hex = 'e'.repeat(64);

describe('defaultPullPolicy (API server defaulting)', () => {
  const table: [string, string][] = [
    ['busybox', 'Always'],
    ['busybox:latest', 'Always'],
    ['docker.io/library/busybox:latest', 'Always'],
    ['busybox:1.36', 'IfNotPresent'],
    [`busybox@sha256:${hex}`, 'IfNotPresent'],
    [`busybox:latest@sha256:${hex}`, 'Always'],
    [`busybox:1.36@sha256:${hex}`, 'IfNotPresent'],
    ['registry:5000/app', 'Always'],
    ['registry:5000/app:v1', 'IfNotPresent'],
    ['localhost:5000/app:latest', 'Always'],
    ['busybox:Latest', 'IfNotPresent'],
    ['busybox:LATEST', 'IfNotPresent'],
    ['Busybox:latest', 'IfNotPresent'],
    ['', 'IfNotPresent'],
    ['nginx:', 'IfNotPresent'],
  ];
  for (const [image, expected] of table) {
    it(`${JSON.stringify(image)} → ${expected}`, () => assert.equal(defaultPullPolicy(image), expected));
  }

  it('never changes an explicit policy', () => {
    assert.equal(defaultPullPolicy('busybox', 'Never'), 'Never');
    assert.equal(defaultPullPolicy('busybox:1.36', 'Always'), 'Always');
    assert.equal(defaultPullPolicy('busybox', 'IfNotPresent'), 'IfNotPresent');
    assert.equal(defaultPullPolicy('busybox', ''), 'Always');
  });
});
