/**
 * The kubelet's image manager (`pkg/kubelet/images`, docs/semantics.md kubelet §3): `ensureImageExists` for one
 * container of one pod — default tag, per-policy decision, KEP-2535 verification, credentials,
 * back-off, the puller and throttle — with the kubelet's events, waiting reasons and messages.
 * Everything it touches is injected: the image service, the clock, the verifier, the recorder.
 */
import type { KeyringMatch } from '../credentials/index.ts';
import { Backoff, IMAGE_BACKOFF_INITIAL_MS, IMAGE_BACKOFF_MAX_MS, backOffKey } from './backoff.ts';
import { systemClock, type Clock } from '../signals/index.ts';
import { DEFAULT_KUBELET_IMAGE_CONFIG, type KubeletImageConfig } from './config.ts';
import {
  lookupImageCredentials,
  podCredentialsOf,
  pulledCredentialsOf,
  type NodeCredentialSources,
} from './image-credentials.ts';
import {
  EventReason,
  WaitingReason,
  evalPullError,
  messages,
  type EventObject,
  type EventRecorder,
  type EventType,
} from './events.ts';
import { decidePull, type PullDecision } from './decision.ts';
import { parseImageName } from './image-name.ts';
import { errorText, pullWithCredentials, type ImageService } from './image-service.ts';
import {
  METRIC_ENSURE_IMAGE_REQUESTS,
  METRIC_IMAGE_PULL_DURATION,
  METRIC_MUSTPULL_CHECKS,
  MetricsRegistry,
  imageSizeBucket,
  type MetricsSink,
  type PullLatencyTracker,
} from './metrics.ts';
import { PullQpsExceededError, pullThrottle, type TokenBucket } from './throttle.ts';
import { pullSchedulerFor, type PullScheduler } from './pull-scheduler.ts';
import { ImagePullManager, type PullVerifier } from './pull-manager.ts';
import { MemoryPullRecords } from './pull-records-store.ts';
import type { PullPolicy } from './policy.ts';

/** The pod an image is for. */
export interface PodRef {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** For credential provider plugins in service-account token mode. */
  readonly serviceAccountName?: string;
}

export interface EnsureImageRequest {
  readonly pod: PodRef;
  /** The container image as written in the pod spec. */
  readonly image: string;
  /** The container's `imagePullPolicy` (already defaulted: see defaultPullPolicy). */
  readonly pullPolicy: PullPolicy;
  /** The pod's pull Secrets that could be read, in `imagePullSecrets` order (Secret objects). */
  readonly pullSecrets?: readonly unknown[];
  /** What events are about; default the pod. */
  readonly eventObject?: EventObject;
  readonly signal?: AbortSignal;
}

/** `(imageRef, message, error)`: `reason` is the waiting reason, undefined on success. */
export interface EnsureImageResult {
  /** The imageRef of the image to run, `''` on failure. */
  readonly imageRef: string;
  /** The waiting message (`''` after a pull). */
  readonly message: string;
  readonly reason?: string;
  /** The underlying error, when there is one. */
  readonly error?: unknown;
  /** The credential that pulled the image (never the secret itself; see KeyringMatch). */
  readonly credential?: KeyringMatch;
}

export interface ImageManagerOptions {
  readonly imageService: ImageService;
  readonly clock?: Clock;
  readonly recorder?: EventRecorder;
  /** The kubelet configuration (puller mode, QPS, KEP-2535 gate and policy); default the kubelet's. */
  readonly config?: Partial<KubeletImageConfig>;
  /** Default: 10 s doubling to 300 s on the clock. */
  readonly backOff?: Backoff;
  /** Default: serial or parallel as the config says. */
  readonly scheduler?: PullScheduler;
  /** Default: from registryPullQPS/registryBurst; null for none. */
  readonly throttle?: TokenBucket | null;
  readonly credentials?: NodeCredentialSources;
  /** KEP-2535; default an ImagePullManager over in-memory records with the config's policy. */
  readonly verifier?: PullVerifier;
  readonly latencyTracker?: PullLatencyTracker;
  readonly metrics?: MetricsSink;
}

type Tri = 'true' | 'false' | 'unknown';

/** The `kubelet_image_manager_ensure_image_requests_total` labels a decision stands for:
 * presence is unknown under `Always` (not looked up) and before the lookup. */
function decisionLabels(decision: PullDecision, policy: PullPolicy): { present: Tri; required: Tri } {
  switch (decision.kind) {
    case 'invalid-name':
    case 'inspect-failed':
      return { present: 'unknown', required: 'unknown' };
    case 'never-pull':
      return decision.present ? { present: 'true', required: 'true' } : { present: 'false', required: 'unknown' };
    case 'verify-failed':
      return { present: 'true', required: 'unknown' };
    case 'use-local':
      return { present: 'true', required: 'false' };
    case 'pull':
      return {
        present: policy === 'Always' ? 'unknown' : decision.presentAs === undefined ? 'false' : 'true',
        required: 'true',
      };
  }
}

/**
 * The kubelet's image manager: `ensureImageExists` decides, for one container of one pod,
 * whether to use the image on the node or pull it (pull policy, KEP-2535 verification through a
 * `PullVerifier`), pulls with each credential in the kubelet's order, applies back-off and the
 * pull throttle, and reports what the kubelet would: events, a waiting reason and message, and
 * the imageRef to run. It never throws for an image problem; the result carries the reason.
 * Everything it touches (image service, clock, verifier, recorder, metrics) is injected.
 */
export class ImageManager {
  readonly clock: Clock;
  readonly backOff: Backoff;
  readonly scheduler: PullScheduler;
  readonly throttle: TokenBucket | undefined;
  readonly verifier: PullVerifier;
  readonly metrics: MetricsSink;
  readonly config: KubeletImageConfig;
  readonly #service: ImageService;
  readonly #recorder: EventRecorder | undefined;
  readonly #credentials: NodeCredentialSources;
  readonly #tracker: PullLatencyTracker | undefined;
  /** `<reason>: <message>` of the last real failure per back-off key (v1.32+). */
  readonly #lastFailure = new Map<string, string>();

  constructor(options: ImageManagerOptions) {
    this.#service = options.imageService;
    this.clock = options.clock ?? systemClock;
    this.config = { ...DEFAULT_KUBELET_IMAGE_CONFIG, ...options.config };
    this.backOff = options.backOff ?? new Backoff(IMAGE_BACKOFF_INITIAL_MS, IMAGE_BACKOFF_MAX_MS, this.clock);
    this.scheduler = options.scheduler ?? pullSchedulerFor(this.config, this.clock);
    this.throttle =
      options.throttle === null
        ? undefined
        : (options.throttle ?? pullThrottle(this.config.registryPullQPS, this.config.registryBurst, this.clock));
    const metrics = options.metrics ?? new MetricsRegistry();
    this.metrics = metrics;
    this.verifier =
      options.verifier ??
      new ImagePullManager({
        records: new MemoryPullRecords(),
        policy: this.config.imagePullCredentialsVerificationPolicy,
        allowlist: this.config.preloadedImagesVerificationAllowlist,
        clock: this.clock,
        onMustPullCheck: (result) => metrics.inc(METRIC_MUSTPULL_CHECKS, { result }),
      });
    this.#recorder = options.recorder;
    this.#credentials = options.credentials ?? {};
    this.#tracker = options.latencyTracker;
  }

  get ensureSecretPulledImages(): boolean {
    return this.config.ensureSecretPulledImages;
  }

  /** The remembered cause of the last failed pull for a back-off key, if any. */
  lastFailure(podUID: string, image: string): string | undefined {
    return this.#lastFailure.get(backOffKey(podUID, image));
  }

  /** kimg's explicit back-off reset for one pod and image (e.g. after fixing a secret). */
  resetBackOff(podUID: string, image: string): void {
    const key = backOffKey(podUID, image);
    this.backOff.reset(key);
    this.#lastFailure.delete(key);
  }

  async ensureImageExists(request: EnsureImageRequest): Promise<EnsureImageResult> {
    const labels = { policy: request.pullPolicy.toLowerCase(), present: 'unknown' as Tri, required: 'unknown' as Tri };
    try {
      return await this.#ensure(request, labels);
    } finally {
      this.metrics.inc(METRIC_ENSURE_IMAGE_REQUESTS, {
        pull_policy: labels.policy,
        present_locally: labels.present,
        pull_required: labels.required,
      });
    }
  }

  async #ensure(request: EnsureImageRequest, labels: { present: Tri; required: Tri }): Promise<EnsureImageResult> {
    const { pod, image: img, pullPolicy } = request;
    // The repository does not depend on the default tag: the name as written gives it.
    const parsed = parseImageName(img);
    const repository = parsed.ok ? parsed.value.repository : img;
    let lookup: Promise<KeyringMatch[]> | undefined;
    const credentials = () =>
      (lookup ??= lookupImageCredentials(repository, request.pullSecrets ?? [], this.#credentials, pod));
    const decision = await decidePull({
      image: img,
      policy: pullPolicy,
      ensureSecretPulledImages: this.ensureSecretPulledImages,
      getImageRef: (image) => this.#service.getImageRef(image),
      mustAttempt: (imageRef) =>
        this.verifier.mustAttemptImagePull(img, imageRef, async () => podCredentialsOf(await credentials())),
    });
    Object.assign(labels, decisionLabels(decision, pullPolicy));

    switch (decision.kind) {
      case 'invalid-name': {
        const message = messages.invalidImageName(img, decision.error);
        this.#event(request, 'Warning', EventReason.InspectFailed, message);
        return { imageRef: '', message, reason: WaitingReason.InvalidImageName };
      }
      case 'inspect-failed': {
        const message = messages.inspectFailed(errorText(decision.error));
        this.#event(request, 'Warning', EventReason.InspectFailed, message);
        return { imageRef: '', message, reason: WaitingReason.ImageInspectError, error: decision.error };
      }
      case 'never-pull':
        return this.#neverPull(request);
      case 'verify-failed': {
        const text = errorText(decision.error);
        return { imageRef: '', message: text, reason: text, error: decision.error };
      }
      case 'use-local':
        return this.#useLocal(
          request,
          decision.imageRef,
          decision.verified ? messages.alreadyPresentAndAccessible(img) : messages.alreadyPresent(img),
        );
      case 'pull': {
        let matches: KeyringMatch[];
        try {
          matches = await credentials();
        } catch (error) {
          const text = errorText(error);
          return { imageRef: '', message: text, reason: text, error };
        }
        return this.#pull(request, decision.image, matches);
      }
    }
  }

  #neverPull(request: EnsureImageRequest): EnsureImageResult {
    const message = messages.neverPull(request.image);
    this.#event(request, 'Warning', EventReason.ErrImageNeverPull, message);
    return { imageRef: '', message, reason: WaitingReason.ErrImageNeverPull };
  }

  #useLocal(request: EnsureImageRequest, imageRef: string, message: string): EnsureImageResult {
    this.#event(request, 'Normal', EventReason.Pulled, message);
    this.#tracker?.finishedPulling(request.pod.uid);
    return { imageRef, message };
  }

  async #pull(
    request: EnsureImageRequest,
    image: string,
    matches: readonly KeyringMatch[],
  ): Promise<EnsureImageResult> {
    const { pod, image: img } = request;
    const gate = this.ensureSecretPulledImages;
    if (gate) {
      try {
        await this.verifier.recordPullIntent(img);
      } catch (error) {
        const text = errorText(error);
        return { imageRef: '', message: messages.pullIntentFailed(img, text), reason: text, error };
      }
    }
    let pulled: { imageRef: string; credential: KeyringMatch | undefined } | undefined;
    try {
      const key = backOffKey(pod.uid, img);
      if (this.backOff.isInBackOffSinceUpdate(key, this.clock.now())) {
        const backOff = messages.backOff(img);
        this.#event(request, 'Normal', EventReason.BackOff, backOff);
        const previous = this.#lastFailure.get(key);
        return {
          imageRef: '',
          message: previous === undefined ? backOff : `${backOff}: ${previous}`,
          reason: WaitingReason.ImagePullBackOff,
        };
      }
      this.#lastFailure.delete(key);
      this.#event(request, 'Normal', EventReason.Pulling, messages.pulling(img));
      this.#tracker?.startedPulling(pod.uid);
      const handedOver = this.clock.now();
      const result = await this.scheduler.schedule(async () => {
        if (this.throttle !== undefined && !this.throttle.tryAccept()) throw new PullQpsExceededError();
        const done = await pullWithCredentials(this.#service, image, matches, {
          ...(request.signal !== undefined && { signal: request.signal }),
        });
        const size = done.imageRef === '' ? 0 : await this.#service.getImageSize(image).catch(() => 0);
        return { ...done, size };
      });
      if (!result.ok || result.value === undefined) {
        const raw = errorText(result.error);
        this.#event(request, 'Warning', EventReason.Failed, messages.failedToPull(img, raw));
        this.backOff.next(key, this.clock.now());
        const { reason, message } = evalPullError(img, raw);
        this.#lastFailure.set(key, `${reason}: ${message}`);
        return { imageRef: '', message, reason, error: result.error };
      }
      const { imageRef, credential, size } = result.value;
      const totalMs = this.clock.now() - handedOver;
      this.#event(request, 'Normal', EventReason.Pulled, messages.pulled(img, result.pullMs, totalMs, size));
      this.metrics.observe(
        METRIC_IMAGE_PULL_DURATION,
        { image_size_in_bytes: imageSizeBucket(size) },
        Math.trunc(result.pullMs) / 1000,
      );
      pulled = { imageRef, credential };
      this.backOff.gc();
      this.#tracker?.finishedPulling(pod.uid);
      return { imageRef, message: '', ...(credential !== undefined && { credential }) };
    } finally {
      if (gate) {
        if (pulled !== undefined)
          await this.verifier.recordImagePulled(img, pulled.imageRef, pulledCredentialsOf(pulled.credential));
        else await this.verifier.recordImagePullFailed(img);
      }
    }
  }

  #event(request: EnsureImageRequest, type: EventType, reason: string, message: string): void {
    const object: EventObject = request.eventObject ?? {
      kind: 'Pod',
      namespace: request.pod.namespace,
      name: request.pod.name,
      uid: request.pod.uid,
    };
    this.#recorder?.({ type, reason, message, object, timestamp: this.clock.now(), source: 'kubelet' });
  }
}
