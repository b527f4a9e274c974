import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../signals/index.ts';
import type { KubeletEvent } from './events.ts';
import { FakeImageService } from './testing/fake-image-service.ts';
import { ImageManager } from './image-manager.ts';
import { PodImageWorker, containerPullPolicy, nextSyncDelayMs, podStatusText, type PodImageSpec } from './pod.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function world(pod: PodImageSpec, secrets: Record<string, unknown> = {}) {
  const clock = new ManualClock();
  const fake = new FakeImageService();
  const events: KubeletEvent[] = [];
  const recorder = (e: KubeletEvent) => events.push(e);
  const manager = new ImageManager({ imageService: fake, clock, recorder, config: { registryPullQPS: 0 } });
  const worker = new PodImageWorker({ manager, pod, getSecret: (name) => secrets[name], recorder });
  return { clock, fake, events, worker };
}

const base = { uid: 'uid-1', namespace: 'default', name: 'web', imagePullSecrets: [] as string[] };
const lines = (events: readonly KubeletEvent[]) =>
  events.map((e) => `${e.object?.fieldPath ?? e.object?.kind} ${e.type} ${e.reason} ${e.message}`);

describe('pod-level image sync (docs/semantics.md kubelet §4, §8)', () => {
  it('warns about missing pull secrets and pulls anyway; empty names are skipped', async () => {
    const { fake, events, worker } = world({
      ...base,
      imagePullSecrets: ['', 'regcred', 'other'],
      initContainers: [],
      containers: [{ name: 'app', image: 'nginx:1.25' }],
    });
    fake.addRemote('nginx:1.25', { digest: D1 });
    const result = await worker.sync();
    assert.equal(result.ready, true);
    assert.deepEqual(result.missingSecrets, ['regcred', 'other']);
    assert.equal(
      lines(events)[0],
      'Pod Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (regcred, other); attempting to pull the image may not succeed.',
    );
  });

  it('adds the container-start "Failed" / "Error: <reason>" event to every image error', async () => {
    const { events, worker } = world({
      ...base,
      initContainers: [],
      containers: [{ name: 'app', image: 'nginx:wrong' }],
    });
    await worker.sync();
    assert.deepEqual(
      lines(events).map((l) => l.split(' ').slice(0, 3).join(' ')),
      [
        'spec.containers{app} Normal Pulling',
        'spec.containers{app} Warning Failed',
        'spec.containers{app} Warning Failed',
      ],
    );
    assert.equal(events.at(-1)?.message, 'Error: ErrImagePull');
    const again = await worker.sync();
    assert.equal(events.at(-1)?.message, 'Error: ImagePullBackOff');
    assert.equal(again.backOffOnly, true);
    assert.deepEqual(again.containers[0]?.waiting?.reason, 'ImagePullBackOff');
  });

  it('runs init containers first, one at a time; a failing one holds the rest in PodInitializing', async () => {
    const { fake, worker } = world({
      ...base,
      initContainers: [
        { name: 'setup', image: 'setup:wrong' },
        { name: 'migrate', image: 'migrate:1' },
      ],
      containers: [{ name: 'app', image: 'app:1' }],
    });
    fake.addRemote('migrate:1', { digest: D1 }).addRemote('app:1', { digest: D2 });
    const first = await worker.sync();
    assert.deepEqual(
      first.containers.map((c) => `${c.init ? 'init' : 'app'} ${c.name} ${c.ready} ${c.waiting?.reason ?? ''}`),
      ['init setup false ErrImagePull', 'init migrate false PodInitializing', 'app app false PodInitializing'],
    );
    assert.deepEqual(
      fake.calls.filter((c) => c.op === 'pullImage').map((c) => c.image),
      ['setup:wrong'],
    );
    assert.equal(podStatusText(first.containers), 'Init:ErrImagePull');
    fake.addRemote('setup:wrong', { digest: D1 });
    assert.equal((await worker.sync()).containers[0]?.waiting?.reason, 'ImagePullBackOff');
  });

  it('does not ask again for images already ready (their containers would be running)', async () => {
    const { fake, clock, worker } = world({
      ...base,
      initContainers: [],
      containers: [
        { name: 'a', image: 'a:1' },
        { name: 'b', image: 'b:wrong' },
      ],
    });
    fake.addRemote('a:1', { digest: D1 });
    await worker.sync();
    clock.advance(10_000);
    const second = await worker.sync();
    assert.equal(fake.calls.filter((c) => c.image === 'a:1' && c.op === 'pullImage').length, 1);
    assert.equal(podStatusText(second.containers), 'ErrImagePull');
    assert.equal(second.ready, false);
  });

  it('defaults pull policies as the API server does and rejects unknown ones', () => {
    assert.equal(containerPullPolicy({ name: 'a', image: 'nginx' }), 'Always');
    assert.equal(containerPullPolicy({ name: 'a', image: 'nginx:1.25', imagePullPolicy: '' }), 'IfNotPresent');
    assert.equal(containerPullPolicy({ name: 'a', image: 'nginx', imagePullPolicy: 'Never' }), 'Never');
    assert.throws(
      () => containerPullPolicy({ name: 'a', image: 'nginx', imagePullPolicy: 'Sometimes' }),
      /not Always, IfNotPresent or Never/,
    );
  });
});

describe('pod worker cadence (docs/semantics.md kubelet §5)', () => {
  const result = (backOffOnly: boolean, ready = false) => ({ containers: [], missingSecrets: [], ready, backOffOnly });
  it('retries a failed sync after 10 s plus up to 50 % jitter', () => {
    assert.equal(
      nextSyncDelayMs(result(false), () => 0),
      10_000,
    );
    assert.equal(
      nextSyncDelayMs(result(false), () => 0.5),
      12_500,
    );
  });
  it('counts a sync with only back-off errors as a success: the 1 min resync', () => {
    assert.equal(
      nextSyncDelayMs(result(true), () => 0),
      60_000,
    );
    assert.equal(
      nextSyncDelayMs(result(true), () => 1),
      90_000,
    );
  });
  it('stops when every image is ready', () => assert.equal(nextSyncDelayMs(result(false, true)), undefined));
});
