// The image manager against a real Distribution registry (plain, and one with htpasswd auth):
// the three pull policies, the wrong-tag ErrImagePull → ImagePullBackOff sequence with exact
// messages (back-off on a manual clock, pulls for real), imagePullSecrets for a private registry,
// Always costing one HEAD for a stored image, KEP-2535 records on disk across a restart, a
// missing platform, and an unreachable registry as RegistryUnavailable.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CachedPullRecords,
  FsPullRecords,
  ImageManager,
  ImagePullManager,
  StoreImageService,
  preflightPod,
  type KubeletEvent,
} from '../../src/kubelet/index.ts';
import { ManualClock } from '../../src/kubelet/testing/index.ts';
import { recordFileName } from '../../src/kubelet/pull-records-codec.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const alice = { user: 'alice', password: 's3cret' };

function pullSecret(name: string, registry: string, username: string, password: string) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry]: { username, password } } }) },
  };
}

describe('image manager against a real registry', { skip }, () => {
  let registry: RunningRegistry;
  let privateRegistry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let app: BuiltImage;
  let armOnly: BuiltImage;
  let n = 0;

  before(async () => {
    tmp = await makeTempDir('kimg-kubelet-');
    [registry, privateRegistry] = await Promise.all([startRegistry(), startRegistry({ htpasswd: [alice] })]);
    proxy = await startFaultProxy({ upstream: registry.url });
    [app, armOnly] = await Promise.all([
      buildImage({ layers: [2_000, 30_000], seed: 'kubelet-app' }),
      buildImage({ layers: [1_000], platforms: ['linux/arm64', 'linux/arm/v7'], seed: 'kubelet-arm' }),
    ]);
    await Promise.all([
      pushImage(app, registry, 'team/app:v1'),
      pushImage(armOnly, registry, 'team/arm:v1'),
      pushImage(app, privateRegistry, 'team/private:v1', { creds: `${alice.user}:${alice.password}` }),
    ]);
  });

  const services: StoreImageService[] = [];
  after(async () => {
    await Promise.all(services.map((s) => s.close()));
    await proxy?.stop();
    await Promise.all([registry?.stop(), privateRegistry?.stop()]);
    await Promise.all([app?.remove(), armOnly?.remove(), tmp?.remove()]);
  });

  /** A fresh node: its own store and kubelet root, a manual clock, events captured. */
  async function node(options: { rootDir?: string; store?: Store } = {}) {
    const dir = join(tmp.path, `node-${n++}`);
    const store = options.store ?? (await openStore(join(dir, 'store')));
    const clock = new ManualClock(Date.now());
    const events: KubeletEvent[] = [];
    const service = new StoreImageService({ store, platform: 'linux/amd64' });
    services.push(service);
    const rootDir = options.rootDir ?? join(dir, 'root');
    const verifier = new ImagePullManager({
      records: await CachedPullRecords.open(new FsPullRecords(rootDir)),
      policy: 'NeverVerifyPreloadedImages',
      clock,
    });
    await verifier.initialize(await service.listImages());
    const manager = new ImageManager({
      imageService: service,
      clock,
      recorder: (e) => events.push(e),
      verifier,
      config: { registryPullQPS: 0 },
    });
    return { store, clock, events, service, manager, rootDir, verifier };
  }
  const pod = (uid: string) => ({ uid, namespace: 'default', name: uid });
  const lines = (events: readonly KubeletEvent[]) => events.map((e) => `${e.reason}: ${e.message}`);

  test('IfNotPresent pulls once, then uses the stored image', async () => {
    const { manager, events } = await node();
    const image = `${registry.host}/team/app:v1`;
    const first = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'IfNotPresent' });
    assert.equal(first.imageRef, app.digest);
    assert.equal(first.message, '');
    const platform = app.images[0];
    const size =
      (platform?.manifest.size ?? 0) +
      (platform?.config.size ?? 0) +
      (platform?.layers.reduce((sum, l) => sum + l.size, 0) ?? 0);
    assert.equal(
      events[1]?.message,
      `Successfully pulled image "${image}" in 0s (0s including waiting). Image size: ${size} bytes.`,
      'durations are on the manual clock',
    );
    const second = await manager.ensureImageExists({ pod: pod('p2'), image, pullPolicy: 'IfNotPresent' });
    assert.deepEqual(second, {
      imageRef: app.digest,
      message: `Container image "${image}" already present on machine and can be accessed by the pod`,
    });
  });

  test('Always resolves with one HEAD and transfers nothing for a stored image, still Pulling then Pulled', async () => {
    const { manager, events } = await node();
    const image = `${proxy.host}/team/app:v1`;
    await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'Always' });
    proxy.reset();
    events.length = 0;
    const again = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'Always' });
    assert.equal(again.imageRef, app.digest);
    assert.deepEqual(
      events.map((e) => e.reason),
      ['Pulling', 'Pulled'],
    );
    assert.match(events[1]?.message ?? '', /^Successfully pulled image/);
    assert.deepEqual(
      proxy.requests
        .filter((r) => r.path.includes('/manifests/') || r.path.includes('/blobs/'))
        .map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/team/app/manifests/v1'],
    );
  });

  test('Never uses a stored image and fails for an absent one', async () => {
    const { manager } = await node();
    const image = `${registry.host}/team/app:v1`;
    const absent = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'Never' });
    assert.deepEqual(absent, {
      imageRef: '',
      message: `Container image "${image}" is not present with pull policy of Never`,
      reason: 'ErrImageNeverPull',
    });
    await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'IfNotPresent' });
    assert.equal(
      (await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'Never' })).imageRef,
      app.digest,
    );
  });

  test('a wrong tag: ErrImagePull, then ImagePullBackOff carrying the cause, retried after 10 s, 20 s …', async () => {
    const { manager, clock, events } = await node();
    const image = `${registry.host}/team/app:wrong`;
    const raw = `resolve ${image}: manifest unknown at ${registry.host} (HTTP 404)`;
    const results: string[] = [];
    const sync = async () => {
      const r = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'IfNotPresent' });
      results.push(`${r.reason}: ${r.message}`);
    };
    await sync();
    clock.advance(9_999);
    await sync();
    clock.advance(1);
    await sync();
    clock.advance(19_999);
    await sync();
    const backOff = `ImagePullBackOff: Back-off pulling image "${image}": ErrImagePull: ${raw}`;
    assert.deepEqual(results, [`ErrImagePull: ${raw}`, backOff, `ErrImagePull: ${raw}`, backOff]);
    assert.deepEqual(lines(events), [
      `Pulling: Pulling image "${image}"`,
      `Failed: Failed to pull image "${image}": ${raw}`,
      `BackOff: Back-off pulling image "${image}"`,
      `Pulling: Pulling image "${image}"`,
      `Failed: Failed to pull image "${image}": ${raw}`,
      `BackOff: Back-off pulling image "${image}"`,
    ]);
  });

  test('a private registry: works with the imagePullSecret, fails (and the preflight says why) without it', async () => {
    const { manager, service } = await node();
    const image = `${privateRegistry.host}/team/private:v1`;
    const without = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'IfNotPresent' });
    assert.equal(without.reason, 'ErrImagePull');
    assert.equal(
      without.message,
      `resolve ${image}: authentication required or refused at ${privateRegistry.host} (HTTP 401)`,
    );
    const secret = pullSecret('regcred', privateRegistry.host, alice.user, alice.password);
    const withSecret = await manager.ensureImageExists({
      pod: pod('p2'),
      image,
      pullPolicy: 'IfNotPresent',
      pullSecrets: [secret],
    });
    assert.equal(withSecret.imageRef, app.digest);
    assert.equal(withSecret.credential?.sourceLabel, 'secret default/regcred');

    const spec = {
      uid: 'p3',
      namespace: 'default',
      name: 'web',
      imagePullSecrets: ['regcred'],
      initContainers: [],
      containers: [{ name: 'app', image: `${privateRegistry.host}/team/private:v1`, imagePullPolicy: 'Always' }],
    };
    const missing = await preflightPod(spec, {
      imageService: service,
      platform: 'linux/amd64',
      getSecret: () => undefined,
    });
    assert.equal(missing.ok, false);
    assert.equal(missing.containers[0]?.problem, 'missing-secret');
    assert.match(
      missing.containers[0]?.fix ?? '',
      new RegExp(
        `no such Secret exists in namespace default: create it \\(kubectl create secret docker-registry regcred --docker-server=${privateRegistry.host}`,
      ),
    );
    const present = await preflightPod(spec, {
      imageService: service,
      platform: 'linux/amd64',
      getSecret: (name) => (name === 'regcred' ? secret : undefined),
    });
    assert.equal(present.ok, true);
    assert.equal(present.containers[0]?.resolved?.digest, app.digest);
    const wrong = await preflightPod(spec, {
      imageService: service,
      platform: 'linux/amd64',
      getSecret: () => pullSecret('regcred', privateRegistry.host, alice.user, 'nope'),
    });
    assert.equal(wrong.containers[0]?.problem, 'credentials-refused');
  });

  test('KEP-2535: records on disk keep a pod without the secret from the image, across a restart', async () => {
    const first = await node();
    const image = `${privateRegistry.host}/team/private:v1`;
    const secret = pullSecret('regcred', privateRegistry.host, alice.user, alice.password);
    assert.equal(
      (
        await first.manager.ensureImageExists({
          pod: pod('owner'),
          image,
          pullPolicy: 'IfNotPresent',
          pullSecrets: [secret],
        })
      ).imageRef,
      app.digest,
    );
    assert.deepEqual(await readdir(join(first.rootDir, 'image_manager', 'pulled')), [recordFileName(app.digest)]);
    assert.deepEqual(
      await readdir(join(first.rootDir, 'image_manager', 'pulling')),
      [],
      'the intent is gone after the pull',
    );

    const restarted = await node({ rootDir: first.rootDir, store: first.store });
    const intruder = await restarted.manager.ensureImageExists({ pod: pod('intruder'), image, pullPolicy: 'Never' });
    assert.equal(intruder.reason, 'ErrImageNeverPull');
    const friend = await restarted.manager.ensureImageExists({
      pod: pod('friend'),
      image,
      pullPolicy: 'Never',
      pullSecrets: [{ ...secret, metadata: { ...secret.metadata, name: 'copy', uid: 'uid-copy' } }],
    });
    assert.equal(friend.imageRef, app.digest, 'the same credential under another secret name may use it');
  });

  test('one registry client per node: a re-pull with a pull Secret is one request, whoever pulls', async () => {
    const front = await startFaultProxy({ upstream: privateRegistry.url });
    try {
      const { manager } = await node();
      const image = `${front.host}/team/private:v1`;
      const secret = pullSecret('regcred', front.host, alice.user, alice.password);
      const ensure = async (uid: string) => {
        front.reset();
        const result = await manager.ensureImageExists({
          pod: pod(uid),
          image,
          pullPolicy: 'Always',
          pullSecrets: [secret],
        });
        assert.equal(result.imageRef, app.digest);
        return front.requests.map((r) => `${r.method} ${r.status}`);
      };
      const first = await ensure('p1');
      assert.deepEqual(first.slice(0, 2), ['HEAD 401', 'HEAD 200'], 'the challenge is learned on the first pull');
      // The image is complete: Always re-resolves it, and the client already knows the challenge.
      assert.deepEqual(await ensure('p2'), ['HEAD 200']);
      assert.deepEqual(await ensure('p3'), ['HEAD 200']);
    } finally {
      await front.stop();
    }
  });

  test('a missing platform fails the pull; the preflight names the platforms on offer', async () => {
    const { manager, service } = await node();
    const image = `${registry.host}/team/arm:v1`;
    const result = await manager.ensureImageExists({ pod: pod('p1'), image, pullPolicy: 'IfNotPresent' });
    assert.equal(result.reason, 'ErrImagePull');
    assert.match(result.message, /linux\/amd64/);
    const report = await preflightPod(
      {
        uid: 'p',
        namespace: 'default',
        name: 'p',
        imagePullSecrets: [],
        initContainers: [],
        containers: [{ name: 'c', image }],
      },
      { imageService: service, platform: 'linux/amd64', getSecret: () => undefined },
    );
    assert.equal(report.containers[0]?.problem, 'missing-platform');
    assert.match(report.containers[0]?.fix ?? '', /linux\/arm64, linux\/arm\/v7/);
  });

  test('an unreachable registry is RegistryUnavailable', async () => {
    const { manager } = await node();
    const closed = await startRegistry();
    const host = closed.host;
    await closed.stop();
    const result = await manager.ensureImageExists({
      pod: pod('p1'),
      image: `${host}/team/app:v1`,
      pullPolicy: 'Always',
    });
    assert.equal(result.reason, 'RegistryUnavailable');
    assert.match(
      result.message,
      new RegExp(`^image pull failed for ${host}/team/app:v1 because the registry is unavailable: `),
    );
  });
});
