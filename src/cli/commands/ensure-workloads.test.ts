import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestError, collectManifests, secretLookup } from './ensure-workloads.ts';

const template = (extra = '') => `
    spec:
      imagePullSecrets: [{name: regcred}]
      initContainers: [{name: init, image: busybox:1.36}]
      containers: [{name: app, image: nginx, imagePullPolicy: IfNotPresent}]${extra}`;

describe('reading pods from manifests', () => {
  it('reads Pods and the pod templates of every workload kind, in Lists and multi-document files', () => {
    const text = `
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: prod, uid: '1234'}
spec:
  containers: [{name: c, image: redis:7}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:${template()}
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: db}
  spec: {template: {spec: {containers: [{name: c, image: postgres:16}]}}}
- {apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent}, spec: {template: {spec: {containers: [{name: c, image: agent:1}]}}}}
- {apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: rs}, spec: {template: {spec: {containers: [{name: c, image: rs:1}]}}}}
- {apiVersion: batch/v1, kind: Job, metadata: {name: once}, spec: {template: {spec: {containers: [{name: c, image: job:1}]}}}}
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: nightly}
  spec: {schedule: '0 0 * * *', jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: cron:1}]}}}}}
- {apiVersion: v1, kind: Service, metadata: {name: web}}
`;
    const manifests = collectManifests([{ file: 'all.yaml', text }], 'default');
    assert.deepEqual(
      manifests.pods.map((p) => `${p.source} ${p.namespace}/${p.name} ${p.containers.map((c) => c.image).join(',')}`),
      [
        'Pod prod/solo prod/solo redis:7',
        'Deployment default/web default/deployment/web nginx',
        'StatefulSet default/db default/statefulset/db postgres:16',
        'DaemonSet default/agent default/daemonset/agent agent:1',
        'ReplicaSet default/rs default/replicaset/rs rs:1',
        'Job default/once default/job/once job:1',
        'CronJob default/nightly default/cronjob/nightly cron:1',
      ],
    );
    const web = manifests.pods[1];
    assert.deepEqual(web?.imagePullSecrets, ['regcred']);
    assert.deepEqual(web?.initContainers, [{ name: 'init', image: 'busybox:1.36' }]);
    assert.deepEqual(web?.containers, [{ name: 'app', image: 'nginx', imagePullPolicy: 'IfNotPresent' }]);
    assert.equal(manifests.pods[0]?.uid, '1234');
    assert.match(web?.uid ?? '', /^kimg-[0-9a-f]{32}$/);
    assert.deepEqual(manifests.ignored, ['Service default/web']);
  });

  it('collects Secrets and looks them up in the pod namespace', () => {
    const manifests = collectManifests(
      [
        {
          file: 's.yaml',
          text: 'kind: Secret\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\n---\nkind: Secret\nmetadata: {name: regcred, namespace: prod}\n',
        },
      ],
      'default',
    );
    const lookup = secretLookup(manifests.secrets, 'prod');
    assert.deepEqual((lookup('regcred') as { metadata: { namespace: string } }).metadata.namespace, 'prod');
    assert.equal(secretLookup(manifests.secrets, 'other')('regcred'), undefined);
  });

  it('names the file and line of a YAML error, and refuses objects without containers', () => {
    assert.throws(
      () => collectManifests([{ file: 'bad.yaml', text: 'kind: Pod\nmetadata: {name: x\n' }], 'default'),
      (err: unknown) => err instanceof ManifestError && /^bad\.yaml:\d+:\d+: /.test(err.message),
    );
    assert.throws(
      () => collectManifests([{ file: 'p.yaml', text: 'kind: Pod\nmetadata: {name: x}\nspec: {}\n' }], 'default'),
      /has no containers/,
    );
    assert.throws(
      () => collectManifests([{ file: 'p.yaml', text: '- a\n- b\n' }], 'default'),
      /expected Kubernetes objects/,
    );
  });
});
