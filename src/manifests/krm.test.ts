import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ManifestFileError } from './errors.ts';
import { readResourceList, slotResult, withResults } from './krm.ts';
import { findImageSlots } from './slots.ts';

const LIST = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    namespace: prod
    annotations:
      config.kubernetes.io/index: '0'
      internal.config.kubernetes.io/path: 'apps/web.yaml'
  spec:
    template:
      spec:
        containers:
        - name: web
          image: nginx:1.25 # keep me
`;

describe('KRM ResourceList', () => {
  it('finds item slots with their resource, field and file', () => {
    const source = readResourceList(LIST);
    const [slot] = findImageSlots(source);
    assert.ok(slot);
    assert.equal(slot.path, 'items[0].spec.template.spec.containers[0].image');
    assert.deepEqual(slotResult(slot, 'nginx:1.25 is not pinned', 'error', 'missing-digest'), {
      message: 'nginx:1.25 is not pinned',
      severity: 'error',
      resourceRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'prod' },
      field: { path: 'spec.template.spec.containers[0].image' },
      file: { path: 'apps/web.yaml', index: 0 },
      tags: { rule: 'missing-digest', image: 'nginx:1.25' },
    });
  });

  it('extra paths apply to each item of a ResourceList', () => {
    const text = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- image: redis:7\n`;
    assert.deepEqual(
      findImageSlots(readResourceList(text), { extraPaths: ['image'] }).map((s) => [s.path, s.fieldPath]),
      [['items[0].image', 'image']],
    );
  });

  it('appends results to those of earlier functions, keeping comments', () => {
    const withEarlier = `${LIST}results:\n- message: earlier\n  severity: info\n`;
    const out = withResults(withEarlier, [{ message: 'new', severity: 'warning' }]);
    assert.deepEqual(parse(out).results, [
      { message: 'earlier', severity: 'info' },
      { message: 'new', severity: 'warning' },
    ]);
    assert.match(out, /image: nginx:1\.25 # keep me/);
  });

  it('leaves the text byte for byte alone without results', () => {
    assert.equal(withResults(LIST, []), LIST);
  });

  it('refuses anything but one ResourceList', () => {
    for (const text of ['apiVersion: v1\nkind: Pod\n', `${LIST}---\n${LIST}`, '']) {
      assert.throws(
        () => readResourceList(text),
        (err: unknown) => err instanceof ManifestFileError && /one ResourceList/.test(err.message),
      );
    }
  });
});
