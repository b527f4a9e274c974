import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BasicCredential, CredentialProviders, Keyring, parseCredentialProviderConfig } from '../credentials/index.ts';
import { decodeDockerConfigJson } from '../credentials/kubelet-config.ts';
import { type ProgramRunner } from '../credentials/run-program.ts';
import { Backoff, backOffKey } from './backoff.ts';
import { ManualClock } from '../signals/index.ts';
import type { KubeletImageConfig } from './config.ts';
import type { KubeletEvent } from './events.ts';
import { FakeImageService } from './testing/fake-image-service.ts';
import { ImageManager, type EnsureImageResult } from './image-manager.ts';
import {
  METRIC_ENSURE_IMAGE_REQUESTS,
  METRIC_IMAGE_PULL_DURATION,
  MetricsRegistry,
  PodStartupLatencyTracker,
} from './metrics.ts';
import type { PullPolicy } from './policy.ts';
import { ParallelPullScheduler, SerialPullScheduler, type PullScheduler } from './pull-scheduler.ts';
import type { MustPullDecision, PullVerifier } from './pull-manager.ts';
import type { ImagePullCredentials, PodCredentials } from './pull-records.ts';

const pod = { uid: 'pod-uid-1', namespace: 'default', name: 'web' };
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

export function dockerSecret(
  name: string,
  registry: string,
  username: string,
  password: string,
  namespace = 'default',
) {
  return {
    metadata: { name, namespace, uid: `uid-${name}` },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry]: { username, password } } }) },
  };
}

/** A fake runtime whose pulls take time on the manual clock. */
class SlowFake extends FakeImageService {
  constructor(
    readonly clock: ManualClock,
    readonly pullMs = 0,
  ) {
    super();
  }
  override async pullImage(image: string, credential: BasicCredential | undefined): Promise<string> {
    const imageRef = await super.pullImage(image, credential);
    this.clock.advance(this.pullMs);
    return imageRef;
  }
}

interface Setup {
  clock: ManualClock;
  fake: SlowFake;
  events: KubeletEvent[];
  metrics: MetricsRegistry;
  manager: ImageManager;
}

function setup(
  options: {
    config?: Partial<KubeletImageConfig>;
    pullMs?: number;
    scheduler?: (clock: ManualClock) => PullScheduler;
    verifier?: PullVerifier;
    node?: Keyring;
    plugins?: CredentialProviders;
    tracker?: (clock: ManualClock) => PodStartupLatencyTracker;
    backOff?: (clock: ManualClock) => Backoff;
  } = {},
): Setup {
  const clock = new ManualClock();
  const fake = new SlowFake(clock, options.pullMs ?? 0);
  const events: KubeletEvent[] = [];
  const metrics = new MetricsRegistry();
  const manager = new ImageManager({
    imageService: fake,
    clock,
    recorder: (e) => events.push(e),
    metrics,
    config: { registryPullQPS: 0, ...options.config },
    ...(options.scheduler !== undefined && { scheduler: options.scheduler(clock) }),
    ...(options.verifier !== undefined && { verifier: options.verifier }),
    ...(options.backOff !== undefined && { backOff: options.backOff(clock) }),
    ...(options.tracker !== undefined && { latencyTracker: options.tracker(clock) }),
    credentials: {
      ...(options.node !== undefined && { node: options.node }),
      ...(options.plugins !== undefined && { plugins: options.plugins }),
    },
  });
  return { clock, fake, events, metrics, manager };
}

const ensure = (
  s: Setup,
  image: string,
  pullPolicy: PullPolicy,
  pullSecrets: unknown[] = [],
): Promise<EnsureImageResult> => s.manager.ensureImageExists({ pod, image, pullPolicy, pullSecrets });

const eventLines = (events: readonly KubeletEvent[]) => events.map((e) => `${e.type} ${e.reason} ${e.message}`);

function requests(metrics: MetricsRegistry, policy: string, present: string, required: string): number {
  return metrics.counter(METRIC_ENSURE_IMAGE_REQUESTS, {
    pull_policy: policy,
    present_locally: present,
    pull_required: required,
  });
}

describe('ensureImageExists per policy (docs/semantics.md kubelet §3)', () => {
  it('Always: no local lookup, a pull every time, Pulling then Pulled with durations and size', async () => {
    const s = setup({ pullMs: 2_266 });
    s.fake.addRemote('nginx:1.25', { digest: D1, size: 12_345 }).addLocal('nginx:1.25', D1, 12_345);
    const result = await ensure(s, 'nginx:1.25', 'Always');
    assert.deepEqual(
      { imageRef: result.imageRef, message: result.message, reason: result.reason },
      { imageRef: D1, message: '', reason: undefined },
    );
    assert.equal(s.fake.count('getImageRef'), 0);
    assert.equal(s.fake.count('pullImage'), 1);
    assert.deepEqual(eventLines(s.events), [
      'Normal Pulling Pulling image "nginx:1.25"',
      'Normal Pulled Successfully pulled image "nginx:1.25" in 2.266s (2.266s including waiting). Image size: 12345 bytes.',
    ]);
    await ensure(s, 'nginx:1.25', 'Always');
    assert.equal(s.fake.count('pullImage'), 2, 'Always hands every sync to the runtime');
    assert.equal(requests(s.metrics, 'always', 'unknown', 'true'), 2);
    assert.deepEqual(
      s.metrics.observations(METRIC_IMAGE_PULL_DURATION, { image_size_in_bytes: '0-10MB' }),
      [2.266, 2.266],
    );
  });

  it('appends :latest literally before calling the runtime', async () => {
    const s = setup();
    s.fake.addRemote('busybox', { digest: D1 });
    await ensure(s, 'busybox', 'Always');
    assert.deepEqual(
      s.fake.calls.filter((c) => c.op === 'pullImage').map((c) => c.image),
      ['busybox:latest'],
    );
    assert.equal(s.events[0]?.message, 'Pulling image "busybox"', 'events show the image as written');
  });

  it('IfNotPresent: uses the stored image (KEP-2535 gate on: "can be accessed by the pod")', async () => {
    const s = setup();
    s.fake.addLocal('nginx:1.25', D1);
    const result = await ensure(s, 'nginx:1.25', 'IfNotPresent');
    assert.deepEqual(result, {
      imageRef: D1,
      message: 'Container image "nginx:1.25" already present on machine and can be accessed by the pod',
    });
    assert.deepEqual(eventLines(s.events), [
      'Normal Pulled Container image "nginx:1.25" already present on machine and can be accessed by the pod',
    ]);
    assert.equal(s.fake.count('pullImage'), 0);
    assert.equal(requests(s.metrics, 'ifnotpresent', 'true', 'false'), 1);
  });

  it('IfNotPresent with the gate off: "already present on machine"', async () => {
    const s = setup({ config: { ensureSecretPulledImages: false } });
    s.fake.addLocal('nginx:1.25', D1);
    assert.deepEqual(await ensure(s, 'nginx:1.25', 'IfNotPresent'), {
      imageRef: D1,
      message: 'Container image "nginx:1.25" already present on machine',
    });
  });

  it('IfNotPresent: pulls an absent image', async () => {
    const s = setup();
    s.fake.addRemote('nginx:1.25', { digest: D1 });
    const result = await ensure(s, 'nginx:1.25', 'IfNotPresent');
    assert.equal(result.imageRef, D1);
    assert.equal(s.fake.count('getImageRef'), 1);
    assert.equal(requests(s.metrics, 'ifnotpresent', 'false', 'true'), 1);
  });

  it('Never: uses a present image; an absent one is ErrImageNeverPull every sync, without back-off', async () => {
    const s = setup();
    s.fake.addLocal('app:v1', D1);
    assert.equal((await ensure(s, 'app:v1', 'Never')).imageRef, D1);
    for (let i = 0; i < 3; i++) {
      const result = await ensure(s, 'app:v2', 'Never');
      assert.deepEqual(result, {
        imageRef: '',
        message: 'Container image "app:v2" is not present with pull policy of Never',
        reason: 'ErrImageNeverPull',
      });
    }
    assert.equal(s.manager.backOff.size, 0);
    assert.equal(s.fake.count('pullImage'), 0);
    assert.deepEqual(eventLines(s.events.slice(-1)), [
      'Warning ErrImageNeverPull Container image "app:v2" is not present with pull policy of Never',
    ]);
    assert.equal(requests(s.metrics, 'never', 'false', 'unknown'), 3);
    assert.equal(requests(s.metrics, 'never', 'true', 'false'), 1);
  });

  it('InvalidImageName with InspectFailed and no runtime call at all', async () => {
    const s = setup();
    const result = await ensure(s, 'Nginx', 'IfNotPresent');
    const message =
      'Failed to apply default image tag "Nginx": couldn\'t parse image name "Nginx": invalid reference format: repository name (library/Nginx) must be lowercase';
    assert.deepEqual(result, { imageRef: '', message, reason: 'InvalidImageName' });
    assert.deepEqual(eventLines(s.events), [`Warning InspectFailed ${message}`]);
    assert.equal(s.fake.calls.length, 0);
    assert.equal(requests(s.metrics, 'ifnotpresent', 'unknown', 'unknown'), 1);
  });

  it('ImageInspectError formats the still-empty image ref', async () => {
    const s = setup();
    s.fake.failInspect('rpc error: code = Unavailable');
    const result = await ensure(s, 'nginx:1.25', 'IfNotPresent');
    assert.equal(result.reason, 'ImageInspectError');
    assert.equal(result.message, 'Failed to inspect image "": rpc error: code = Unavailable');
    assert.deepEqual(eventLines(s.events), [
      'Warning InspectFailed Failed to inspect image "": rpc error: code = Unavailable',
    ]);
    assert.equal(requests(s.metrics, 'ifnotpresent', 'unknown', 'unknown'), 1);
  });
});

describe('back-off and the ErrImagePull → ImagePullBackOff sequence (docs/semantics.md kubelet §3, §5)', () => {
  it('gives the kubelet sequence for a wrong tag, the status message carrying the last cause', async () => {
    const s = setup();
    const raw = 'resolve docker.io/library/nginx:wrong: manifest unknown (HTTP 404)';
    const seen: string[] = [];
    const at = async (seconds: number) => {
      s.clock.set(Date.UTC(2025, 0, 2, 3, 4, 5) + seconds * 1000);
      const r = await ensure(s, 'nginx:wrong', 'IfNotPresent');
      seen.push(`${seconds}s ${r.reason}: ${r.message}`);
    };
    for (const t of [0, 5, 10, 15, 29, 30, 69, 70]) await at(t);
    const backOff = `ImagePullBackOff: Back-off pulling image "nginx:wrong": ErrImagePull: ${raw}`;
    assert.deepEqual(seen, [
      `0s ErrImagePull: ${raw}`,
      `5s ${backOff}`,
      `10s ErrImagePull: ${raw}`,
      `15s ${backOff}`,
      `29s ${backOff}`,
      `30s ErrImagePull: ${raw}`,
      `69s ${backOff}`,
      `70s ErrImagePull: ${raw}`,
    ]);
    assert.equal(s.fake.count('getImageRef'), 8, 'IfNotPresent looks locally even in back-off');
    assert.equal(s.fake.count('pullImage'), 4);
    assert.deepEqual(eventLines(s.events.slice(0, 3)), [
      'Normal Pulling Pulling image "nginx:wrong"',
      `Warning Failed Failed to pull image "nginx:wrong": ${raw}`,
      'Normal BackOff Back-off pulling image "nginx:wrong"',
    ]);
    assert.ok(
      s.events.filter((e) => e.reason === 'BackOff').every((e) => e.message === 'Back-off pulling image "nginx:wrong"'),
      'the event never has the suffix',
    );
    assert.equal(s.manager.backOff.state(backOffKey(pod.uid, 'nginx:wrong'))?.windowMs, 80_000);
  });

  it('without a remembered failure the back-off message is just the first part', async () => {
    const s = setup({ backOff: (clock) => new Backoff(10_000, 300_000, clock) });
    s.manager.backOff.next(backOffKey(pod.uid, 'nginx:1.25'));
    const result = await ensure(s, 'nginx:1.25', 'Always');
    assert.deepEqual(result, {
      imageRef: '',
      message: 'Back-off pulling image "nginx:1.25"',
      reason: 'ImagePullBackOff',
    });
    assert.equal(requests(s.metrics, 'always', 'unknown', 'true'), 1);
  });

  it('keys back-off by pod and image as written: another pod pulls at once', async () => {
    const s = setup();
    await ensure(s, 'nginx:wrong', 'Always');
    const other = await s.manager.ensureImageExists({
      pod: { ...pod, uid: 'pod-uid-2' },
      image: 'nginx:wrong',
      pullPolicy: 'Always',
    });
    assert.equal(other.reason, 'ErrImagePull');
    assert.equal(s.fake.count('pullImage'), 2);
  });

  it('a success does not reset the key', async () => {
    const s = setup();
    s.fake.addRemote('app:v1', { digest: D1 });
    s.fake.failNextPulls('boom', 'boom');
    await ensure(s, 'app:v1', 'Always');
    s.clock.advance(10_000);
    await ensure(s, 'app:v1', 'Always');
    s.clock.advance(20_000);
    assert.equal((await ensure(s, 'app:v1', 'Always')).reason, undefined);
    s.fake.failNextPulls('boom');
    s.clock.advance(1);
    assert.equal((await ensure(s, 'app:v1', 'Always')).reason, 'ErrImagePull');
    assert.equal(s.manager.backOff.state(backOffKey(pod.uid, 'app:v1'))?.windowMs, 40_000);
  });

  it('forgets the remembered failure when a new pull starts', async () => {
    const s = setup();
    s.fake.addRemote('app:v1', { digest: D1 }).failNextPulls('boom');
    await ensure(s, 'app:v1', 'Always');
    s.clock.advance(10_000);
    assert.equal((await ensure(s, 'app:v1', 'Always')).reason, undefined);
    assert.equal(s.manager.lastFailure(pod.uid, 'app:v1'), undefined);
    s.manager.backOff.next(backOffKey(pod.uid, 'app:v1'));
    assert.equal((await ensure(s, 'app:v1', 'Always')).message, 'Back-off pulling image "app:v1"', 'no stale cause');
  });

  it('identical images from several pods are not de-duplicated', async () => {
    const s = setup({ scheduler: (clock) => new ParallelPullScheduler(clock) });
    s.fake.addRemote('app:v1', { digest: D1 });
    await Promise.all(
      ['a', 'b', 'c'].map((uid) =>
        s.manager.ensureImageExists({ pod: { ...pod, uid }, image: 'app:v1', pullPolicy: 'IfNotPresent' }),
      ),
    );
    assert.equal(s.fake.count('pullImage'), 3);
  });

  it('maps runtime errors by prefix; Failed shows the raw text', async () => {
    const s = setup();
    s.fake.failNextPulls(
      'RegistryUnavailable: dial tcp: connection refused',
      'SignatureValidationFailed: no valid signature',
    );
    const unavailable = await ensure(s, 'reg.example.com/app:v1', 'Always');
    assert.deepEqual(
      { reason: unavailable.reason, message: unavailable.message },
      {
        reason: 'RegistryUnavailable',
        message:
          'image pull failed for reg.example.com/app:v1 because the registry is unavailable: dial tcp: connection refused',
      },
    );
    assert.equal(
      s.events[1]?.message,
      'Failed to pull image "reg.example.com/app:v1": RegistryUnavailable: dial tcp: connection refused',
    );
    const backOff = await ensure(s, 'reg.example.com/app:v1', 'Always');
    assert.equal(
      backOff.message,
      'Back-off pulling image "reg.example.com/app:v1": RegistryUnavailable: image pull failed for reg.example.com/app:v1 because the registry is unavailable: dial tcp: connection refused',
    );
    const signature = await s.manager.ensureImageExists({
      pod: { ...pod, uid: 'p2' },
      image: 'reg.example.com/app:v1',
      pullPolicy: 'Always',
    });
    assert.equal(signature.reason, 'SignatureValidationFailed');
    assert.equal(
      signature.message,
      'image pull failed for reg.example.com/app:v1 because the signature validation failed: no valid signature',
    );
  });
});

describe('pull QPS (docs/semantics.md kubelet §7)', () => {
  it('fails fast with "pull QPS exceeded", an ordinary ErrImagePull that enters back-off', async () => {
    const s = setup({ config: { registryPullQPS: 1, registryBurst: 1 } });
    s.fake.addRemote('a:1', { digest: D1 }).addRemote('b:1', { digest: D2 });
    assert.equal((await ensure(s, 'a:1', 'Always')).reason, undefined);
    const throttled = await ensure(s, 'b:1', 'Always');
    assert.deepEqual(
      { reason: throttled.reason, message: throttled.message },
      { reason: 'ErrImagePull', message: 'pull QPS exceeded' },
    );
    assert.equal(s.events.at(-1)?.message, 'Failed to pull image "b:1": pull QPS exceeded');
    assert.equal(
      s.fake.calls.filter((c) => c.op === 'pullImage' && c.image === 'b:1').length,
      0,
      'the runtime is not called',
    );
    assert.equal((await ensure(s, 'b:1', 'Always')).reason, 'ImagePullBackOff');
    s.clock.advance(10_000);
    assert.equal((await ensure(s, 'b:1', 'Always')).reason, undefined, 'a token came back');
  });

  it('burst 0 rejects every pull', async () => {
    const s = setup({ config: { registryPullQPS: 5, registryBurst: 0 } });
    s.fake.addRemote('a:1', { digest: D1 });
    assert.equal((await ensure(s, 'a:1', 'Always')).message, 'pull QPS exceeded');
  });
});

describe('pull durations: <pull> from when the puller picks the request, <total> from hand-over', () => {
  it('counts queue time in the total only', async () => {
    const s = setup({ pullMs: 1_000 });
    s.fake.addRemote('a:1', { digest: D1, size: 10 }).addRemote('b:1', { digest: D2, size: 20 });
    const release = s.fake.holdPulls();
    const first = ensure(s, 'a:1', 'Always');
    const second = s.manager.ensureImageExists({ pod: { ...pod, uid: 'p2' }, image: 'b:1', pullPolicy: 'Always' });
    await new Promise((r) => setImmediate(r));
    s.clock.advance(390);
    release();
    await Promise.all([first, second]);
    const pulled = s.events.filter((e) => e.reason === 'Pulled').map((e) => e.message);
    assert.deepEqual(pulled, [
      'Successfully pulled image "a:1" in 1.39s (1.39s including waiting). Image size: 10 bytes.',
      'Successfully pulled image "b:1" in 1s (2.39s including waiting). Image size: 20 bytes.',
    ]);
  });
});

describe('credentials (docs/semantics.md kubelet §8)', () => {
  const registry = 'private.example.com';
  const image = `${registry}/team/app:v1`;
  const good = { username: 'alice', password: 'right' };

  it('tries pod secrets, then node, then plugins, one pull per credential, until one works', async () => {
    const node = new Keyring().add(
      { kind: 'node', path: '/var/lib/kubelet/config.json' },
      decodeDockerConfigJson({ auths: { [registry]: { username: 'node', password: 'wrong' } } }),
    );
    const runner: ProgramRunner = async () => ({
      kind: 'exited',
      exitCode: 0,
      stderr: Buffer.alloc(0),
      stdout: Buffer.from(
        JSON.stringify({
          kind: 'CredentialProviderResponse',
          apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
          cacheKeyType: 'Registry',
          auth: { [registry]: good },
        }),
      ),
    });
    const plugins = new CredentialProviders(
      parseCredentialProviderConfig({
        apiVersion: 'kubelet.config.k8s.io/v1',
        kind: 'CredentialProviderConfig',
        providers: [
          {
            name: 'fake-provider',
            matchImages: [registry],
            defaultCacheDuration: '1m',
            apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
          },
        ],
      }),
      { binDir: '/nonexistent', runProgram: runner },
    );
    const s = setup({ node, plugins });
    s.fake.addRemote(image, { digest: D1, auth: [good] });
    const secrets = [
      dockerSecret('first', registry, 'bob', 'nope'),
      dockerSecret('second', 'other.example.com', 'x', 'y'),
      dockerSecret('third', registry, 'carol', 'nope'),
    ];
    const result = await ensure(s, image, 'IfNotPresent', secrets);
    assert.equal(result.imageRef, D1);
    assert.deepEqual(
      s.fake.calls.filter((c) => c.op === 'pullImage').map((c) => c.username),
      ['bob', 'carol', 'node', 'alice'],
    );
    assert.equal(result.credential?.sourceLabel, 'credential provider fake-provider');
  });

  it('pulls anonymously once when nothing matches; aggregates the errors when every credential fails', async () => {
    const s = setup();
    s.fake.addRemote(image, { digest: D1, auth: [good] });
    const anonymous = await ensure(s, image, 'Always');
    assert.deepEqual(
      s.fake.calls.filter((c) => c.op === 'pullImage').map((c) => c.username),
      [undefined],
    );
    assert.equal(anonymous.message, `resolve ${image}: authentication required or refused (HTTP 401)`);

    const t = setup();
    t.fake.addRemote(image, { digest: D1, auth: [good] });
    t.fake.failNextPulls('e1', 'e2');
    const failed = await ensure(t, image, 'Always', [
      dockerSecret('a', registry, 'u1', 'p'),
      dockerSecret('b', registry, 'u2', 'p'),
    ]);
    assert.equal(failed.message, '[e1, e2]');
    assert.equal(t.fake.count('pullImage'), 2, 'no anonymous attempt after the credentials');
  });

  it('returns a keyring error as is: no event, no intent, no back-off', async () => {
    const intents: string[] = [];
    const verifier = recordingVerifier('pull', intents);
    const s = setup({ verifier });
    const broken = {
      metadata: { name: 'broken', namespace: 'default' },
      type: 'kubernetes.io/dockerconfigjson',
      stringData: { '.dockerconfigjson': '{not json' },
    };
    const result = await ensure(s, image, 'Always', [broken]);
    assert.ok(result.reason?.startsWith('invalid pull secret default/broken'), result.reason);
    assert.equal(result.message, result.reason);
    assert.deepEqual(s.events, []);
    assert.deepEqual(intents, []);
    assert.equal(s.manager.backOff.size, 0);
  });

  it('looks credentials up lazily, at most once per call', async () => {
    let lookups = 0;
    const node = new Keyring();
    const counting = { lookup: (name: string) => (lookups++, node.lookup(name)) } as unknown as Keyring;
    const s = setup({ node: counting, config: { imagePullCredentialsVerificationPolicy: 'AlwaysVerify' } });
    s.fake.addLocal('nginx:1.25', D1).addRemote('nginx:1.25', { digest: D1 });
    await ensure(s, 'nginx:1.25', 'IfNotPresent');
    assert.equal(lookups, 1, 'verification found no record (pull), and the pull reused the lookup');
    const t = setup({ node: counting });
    t.fake.addLocal('nginx:1.25', D1);
    lookups = 0;
    await ensure(t, 'nginx:1.25', 'IfNotPresent');
    assert.equal(lookups, 0, 'a preloaded image needs no credentials');
  });
});

function recordingVerifier(answer: MustPullDecision | Error, log: string[]): PullVerifier {
  return {
    recordPullIntent: async (image) => void log.push(`intent ${image}`),
    recordImagePulled: async (image, imageRef, credentials?: ImagePullCredentials) =>
      void log.push(`pulled ${image} ${imageRef} ${JSON.stringify(credentials)}`),
    recordImagePullFailed: async (image) => void log.push(`failed ${image}`),
    mustAttemptImagePull: async (image, imageRef, getPodCredentials: () => Promise<PodCredentials>) => {
      log.push(`check ${image} ${imageRef}`);
      if (answer instanceof Error) throw answer;
      if (answer === 'pull') await getPodCredentials();
      return answer;
    },
  };
}

describe('KEP-2535 in the image manager (docs/semantics.md kubelet §3, §10)', () => {
  it('obeys an injected verifier on every call: one that never learns makes every sync re-pull', async () => {
    const log: string[] = [];
    const s = setup({ verifier: recordingVerifier('pull', log) });
    s.fake.addLocal('nginx:1.25', D1).addRemote('nginx:1.25', { digest: D1 });
    await ensure(s, 'nginx:1.25', 'IfNotPresent');
    await ensure(s, 'nginx:1.25', 'IfNotPresent');
    assert.equal(s.fake.count('pullImage'), 2);
    assert.deepEqual(log.slice(0, 3), [
      `check nginx:1.25 ${D1}`,
      'intent nginx:1.25',
      `pulled nginx:1.25 ${D1} {"nodePodsAccessible":true}`,
    ]);
    assert.equal(requests(s.metrics, 'ifnotpresent', 'true', 'true'), 2);
  });

  it('Never + present but not allowed: exactly the absent-image event and error (presence not revealed)', async () => {
    const s = setup({ verifier: recordingVerifier('pull', []) });
    s.fake.addLocal('private/app:v1', D1);
    const result = await ensure(s, 'private/app:v1', 'Never');
    assert.deepEqual(result, {
      imageRef: '',
      message: 'Container image "private/app:v1" is not present with pull policy of Never',
      reason: 'ErrImageNeverPull',
    });
    assert.deepEqual(eventLines(s.events), [
      'Warning ErrImageNeverPull Container image "private/app:v1" is not present with pull policy of Never',
    ]);
    assert.equal(requests(s.metrics, 'never', 'true', 'true'), 1);
  });

  it('returns a verification error as is', async () => {
    const s = setup({ verifier: recordingVerifier(new Error('records unreadable'), []) });
    s.fake.addLocal('nginx:1.25', D1);
    assert.deepEqual(
      { reason: (await ensure(s, 'nginx:1.25', 'IfNotPresent')).reason, events: s.events.length },
      { reason: 'records unreadable', events: 0 },
    );
    assert.equal(requests(s.metrics, 'ifnotpresent', 'true', 'unknown'), 1);
  });

  it('records the intent before the back-off check and a failure for every outcome but success', async () => {
    const log: string[] = [];
    const s = setup({ verifier: recordingVerifier('use', log) });
    await ensure(s, 'nginx:wrong', 'Always');
    await ensure(s, 'nginx:wrong', 'Always');
    assert.deepEqual(log, ['intent nginx:wrong', 'failed nginx:wrong', 'intent nginx:wrong', 'failed nginx:wrong']);
  });

  it('records the secret that pulled the image', async () => {
    const log: string[] = [];
    const s = setup({ verifier: recordingVerifier('use', log) });
    s.fake.addRemote('reg.example.com/app:v1', { digest: D1, auth: [{ username: 'u', password: 'p' }] });
    await ensure(s, 'reg.example.com/app:v1', 'Always', [dockerSecret('regcred', 'reg.example.com', 'u', 'p')]);
    const pulled = log.find((l) => l.startsWith('pulled')) ?? '';
    assert.match(
      pulled,
      /"kubernetesSecrets":\[\{"uid":"uid-regcred","namespace":"default","name":"regcred","credentialHash":"[0-9a-f]{64}"\}\]/,
    );
  });

  it('fails with the kubelet message when the intent cannot be recorded', async () => {
    const verifier: PullVerifier = {
      ...recordingVerifier('use', []),
      recordPullIntent: async () => Promise.reject(new Error('failed to record image pull intent: EROFS')),
    };
    const s = setup({ verifier });
    const result = await ensure(s, 'nginx:1.25', 'Always');
    assert.deepEqual(
      { reason: result.reason, message: result.message },
      {
        reason: 'failed to record image pull intent: EROFS',
        message:
          'Failed to record image pull intent for container image "nginx:1.25": failed to record image pull intent: EROFS',
      },
    );
    assert.deepEqual(s.events, []);
    assert.equal(s.manager.backOff.size, 0);
  });

  it('with the real pull manager, a pod lacking the secret cannot use an image another pod pulled with it', async () => {
    const s = setup();
    s.fake.addRemote('reg.example.com/app:v1', { digest: D1, auth: [{ username: 'u', password: 'p' }] });
    const secret = dockerSecret('regcred', 'reg.example.com', 'u', 'p');
    assert.equal(
      (
        await s.manager.ensureImageExists({
          pod,
          image: 'reg.example.com/app:v1',
          pullPolicy: 'IfNotPresent',
          pullSecrets: [secret],
        })
      ).imageRef,
      D1,
    );
    const intruder = { uid: 'intruder', namespace: 'default', name: 'intruder' };
    const never = await s.manager.ensureImageExists({
      pod: intruder,
      image: 'reg.example.com/app:v1',
      pullPolicy: 'Never',
    });
    assert.equal(never.reason, 'ErrImageNeverPull');
    const ifNotPresent = await s.manager.ensureImageExists({
      pod: intruder,
      image: 'reg.example.com/app:v1',
      pullPolicy: 'IfNotPresent',
    });
    assert.equal(ifNotPresent.reason, 'ErrImagePull', 'it must pull, and the registry refuses it');
    const friend = await s.manager.ensureImageExists({
      pod: { ...intruder, uid: 'friend' },
      image: 'reg.example.com/app:v1',
      pullPolicy: 'Never',
      pullSecrets: [secret],
    });
    assert.equal(friend.imageRef, D1);
    assert.equal(
      friend.message,
      'Container image "reg.example.com/app:v1" already present on machine and can be accessed by the pod',
    );
  });
});

describe('latency tracker hooks (docs/semantics.md kubelet §3)', () => {
  it('starts right before Pulling, finishes after a pull and on every local use', async () => {
    let tracker!: PodStartupLatencyTracker;
    const s = setup({ tracker: (clock) => (tracker = new PodStartupLatencyTracker(clock)) });
    s.fake.addLocal('local:1', D1);
    await ensure(s, 'local:1', 'IfNotPresent');
    assert.equal(tracker.pulling(pod.uid), undefined, 'local use alone records nothing');
    s.clock.advance(1000);
    const started = s.clock.now();
    await ensure(s, 'nginx:wrong', 'Always');
    assert.deepEqual(tracker.pulling(pod.uid), { firstStartedPulling: started, lastFinishedPulling: undefined });
    await ensure(s, 'nginx:wrong', 'Always');
    s.clock.advance(1000);
    await ensure(s, 'local:1', 'IfNotPresent');
    assert.deepEqual(
      tracker.pulling(pod.uid),
      { firstStartedPulling: started, lastFinishedPulling: started + 1000 },
      'a failed pod finishes once an image is found present',
    );
  });
});

describe('identical results (docs/semantics.md kubelet §12)', () => {
  async function scenario(options: Parameters<typeof setup>[0]): Promise<string[]> {
    const s = setup(options);
    s.fake.addRemote('a:1', { digest: D1 }).addLocal('b:1', D2);
    const out: string[] = [];
    for (const [image, policy] of [
      ['a:1', 'Always'],
      ['b:1', 'IfNotPresent'],
      ['nope:1', 'IfNotPresent'],
      ['nope:1', 'IfNotPresent'],
      ['c:1', 'Never'],
      ['Bad', 'Always'],
    ] as const) {
      const r = await ensure(s, image, policy);
      out.push(`${r.imageRef}|${r.reason}|${r.message}`);
      s.clock.advance(1000);
    }
    return [...out, ...eventLines(s.events)];
  }

  it('with the serial and the parallel puller', async () => {
    const serial = await scenario({ scheduler: (c) => new SerialPullScheduler(c) });
    const parallel = await scenario({ scheduler: (c) => new ParallelPullScheduler(c, 3) });
    const unlimited = await scenario({ scheduler: (c) => new ParallelPullScheduler(c) });
    assert.deepEqual(parallel, serial);
    assert.deepEqual(unlimited, serial);
  });

  it('with the KEP-2535 gate on and off, only the "already present" message differs', async () => {
    const on = await scenario({});
    const off = await scenario({ config: { ensureSecretPulledImages: false } });
    assert.deepEqual(
      off,
      on.map((line) =>
        line.replace(' already present on machine and can be accessed by the pod', ' already present on machine'),
      ),
    );
    assert.notDeepEqual(off, on);
  });
});
