import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapePointerSegment, findImages, isCoveredKind, podSpecPaths, toPointer } from './pod-specs.ts';

describe('pod specs and image slots (docs/semantics.md admission §4.1)', () => {
  test('pod spec locations per kind, any version', () => {
    const at = (kind: string) => podSpecPaths(kind).map((l) => `${l.pointer} ${l.path}`);
    assert.deepEqual(at('Pod'), ['/spec spec']);
    assert.deepEqual(at('/PodTemplate'), ['/template/spec template.spec']);
    assert.deepEqual(at('ReplicationController'), ['/spec/template/spec spec.template.spec']);
    for (const kind of ['apps/ReplicaSet', 'apps/Deployment', 'apps/StatefulSet', 'apps/DaemonSet', 'batch/Job'])
      assert.deepEqual(at(kind), ['/spec/template/spec spec.template.spec']);
    assert.deepEqual(at('batch/CronJob'), ['/spec/jobTemplate/spec/template/spec spec.jobTemplate.spec.template.spec']);
    assert.deepEqual(at('extensions/Deployment'), [], 'the group matters');
    assert.deepEqual(at('ConfigMap'), []);
    assert.deepEqual(
      podSpecPaths(
        { group: 'argoproj.io', kind: 'Rollout' },
        { 'argoproj.io/Rollout': ['spec.template.spec', 'spec.template.spec'] },
      ).map((l) => l.pointer),
      ['/spec/template/spec'],
    );
    assert.equal(isCoveredKind('argoproj.io/Rollout'), false);
  });

  test('slots with pointers, field paths and names; only strings count', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      spec: {
        containers: [{ name: 'a', image: 'x' }, { name: 'b' }, { name: 'c', image: 5 }, null, { image: ' ' }],
        initContainers: [{ name: 'i', image: 'y' }],
        ephemeralContainers: 'nope',
        volumes: [
          { name: 'cfg', configMap: {} },
          { name: 'img', image: { reference: 'z' } },
          { name: 'bad', image: { reference: ['z'] } },
        ],
      },
    };
    assert.deepEqual(
      findImages(pod).map((s) => [s.image, s.pointer, s.path, s.list, s.index, s.name]),
      [
        ['y', '/spec/initContainers/0/image', 'spec.initContainers[0].image', 'initContainers', 0, 'i'],
        ['x', '/spec/containers/0/image', 'spec.containers[0].image', 'containers', 0, 'a'],
        [' ', '/spec/containers/4/image', 'spec.containers[4].image', 'containers', 4, undefined],
        ['z', '/spec/volumes/1/image/reference', 'spec.volumes[1].image.reference', 'volumes', 1, 'img'],
      ],
    );
    assert.deepEqual(findImages(pod)[3]?.segments, ['spec', 'volumes', 1, 'image', 'reference']);
  });

  test('objects without a kind, other kinds and odd shapes give nothing', () => {
    for (const object of [
      null,
      42,
      'Pod',
      [],
      {},
      { kind: 'Pod' },
      { apiVersion: 'v1', kind: 'Pod', spec: [] },
      { apiVersion: 'v1', kind: 'ConfigMap', spec: { containers: [{ image: 'x' }] } },
    ]) {
      assert.deepEqual(findImages(object), []);
    }
    // An explicit kind wins over the object's own fields (the webhook uses request.kind).
    assert.equal(findImages({ spec: { containers: [{ image: 'x' }] } }, { kind: 'Pod' }).length, 1);
  });

  test('JSON Pointer escaping (RFC 6901)', () => {
    assert.equal(escapePointerSegment('a/b~c'), 'a~1b~0c');
    assert.equal(toPointer(['spec', 'a/b', 0, 'image']), '/spec/a~1b/0/image');
  });
});
