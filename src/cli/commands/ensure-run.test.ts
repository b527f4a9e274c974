import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageManager, type KubeletEvent } from '../../kubelet/index.ts';
import { FakeImageService, ManualClock } from '../../kubelet/testing/index.ts';
import { runEnsure, type SyncReport } from './ensure-run.ts';
import type { WorkloadPod } from './ensure-workloads.ts';

const pod: WorkloadPod = {
  uid: 'u1',
  namespace: 'default',
  name: 'web',
  source: 'Pod default/web',
  file: 'pod.yaml',
  imagePullSecrets: [],
  initContainers: [],
  containers: [{ name: 'app', image: 'nginx:wrong', imagePullPolicy: 'IfNotPresent' }],
};

describe('kimg ensure --watch loop', () => {
  it('re-syncs on the kubelet cadence under the back-off until the image appears', async () => {
    const clock = new ManualClock();
    const fake = new FakeImageService();
    const events: KubeletEvent[] = [];
    const manager = new ImageManager({
      imageService: fake,
      clock,
      recorder: (e) => events.push(e),
      config: { registryPullQPS: 0 },
    });
    const reports: SyncReport[] = [];
    const run = runEnsure({
      manager,
      pods: [pod],
      secrets: [],
      recorder: (e) => events.push(e),
      clock,
      watch: true,
      random: () => 0,
      onSync: (r) => reports.push(r),
    });
    const start = clock.now();
    const step = async (ms: number) => {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      clock.advance(ms);
    };
    await step(10_000);
    await step(10_000);
    await step(0);
    fake.addRemote('nginx:wrong', { digest: `sha256:${'a'.repeat(64)}` });
    await step(60_000);
    const result = await run;
    assert.equal(result.ready, true);
    assert.deepEqual(
      reports.map(
        (r) =>
          `${(r.syncedAt - start) / 1000}s ${r.result.containers[0]?.waiting?.reason ?? 'ready'} next ${r.nextSyncAt === undefined ? '-' : (r.nextSyncAt - start) / 1000}`,
      ),
      ['0s ErrImagePull next 10', '10s ErrImagePull next 20', '20s ImagePullBackOff next 80', '80s ready next -'],
    );
    assert.deepEqual(reports[2]?.backOff, [
      { container: 'app', image: 'nginx:wrong', retryAt: start + 30_000, windowMs: 20_000 },
    ]);
  });

  it('syncs once without --watch and stops at the deadline with it', async () => {
    const clock = new ManualClock();
    const manager = new ImageManager({ imageService: new FakeImageService(), clock, config: { registryPullQPS: 0 } });
    const once = await runEnsure({ manager, pods: [pod], secrets: [], recorder: () => undefined, clock });
    assert.deepEqual([once.ready, once.stopped, once.pods[0]?.syncs], [false, false, 1]);
    const bounded = await runEnsure({
      manager,
      pods: [pod],
      secrets: [],
      recorder: () => undefined,
      clock,
      watch: true,
      watchTimeoutMs: 5_000,
      random: () => 0,
    });
    assert.deepEqual([bounded.ready, bounded.stopped], [false, true]);
  });
});
