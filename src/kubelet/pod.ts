/**
 * The part of a pod the image manager needs, and the pod-level steps the kubelet takes around
 * `ensureImageExists` (docs/semantics.md kubelet §4, §5, §8): reading the pull secrets (missing ones warn with
 * `FailedToRetrieveImagePullSecret` and the pull proceeds), init containers one at a time before
 * the others, the `Failed` / `Error: <reason>` event of every image error, and when the pod
 * worker syncs again.
 */
import type { EventObject, EventRecorder } from './events.ts';
import { EventReason, WaitingReason, messages } from './events.ts';
import type { Clock } from '../signals/index.ts';
import type { EnsureImageResult, ImageManager } from './image-manager.ts';
import { defaultPullPolicy, isPullPolicy, type PullPolicy } from './policy.ts';

export interface ContainerImageSpec {
  readonly name: string;
  readonly image: string;
  /** As written; `''` or absent is defaulted as the API server does. */
  readonly imagePullPolicy?: string;
}

export interface PodImageSpec {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccountName?: string;
  /** `spec.imagePullSecrets[].name`, in order (empty names are skipped). */
  readonly imagePullSecrets: readonly string[];
  readonly initContainers: readonly ContainerImageSpec[];
  readonly containers: readonly ContainerImageSpec[];
}

export interface ContainerImageState {
  readonly name: string;
  readonly init: boolean;
  readonly image: string;
  readonly pullPolicy: PullPolicy;
  readonly ready: boolean;
  readonly imageRef: string;
  /** `state.waiting`; `PodInitializing` for containers behind an unfinished init container. */
  readonly waiting?: { readonly reason: string; readonly message: string };
  /** The last ensureImageExists result, when the container was tried in this sync. */
  readonly result?: EnsureImageResult;
}

export interface PodSyncResult {
  readonly containers: readonly ContainerImageState[];
  readonly missingSecrets: readonly string[];
  /** Every image is ready. */
  readonly ready: boolean;
  /** Some image failed, and every failure was a back-off (the kubelet counts the sync a success). */
  readonly backOffOnly: boolean;
}

/** The policy a container runs with: its own, else the API server's default. Throws on an unknown one. */
export function containerPullPolicy(container: ContainerImageSpec): PullPolicy {
  const written = container.imagePullPolicy ?? '';
  if (written !== '' && !isPullPolicy(written)) {
    throw new RangeError(
      `container ${JSON.stringify(container.name)}: imagePullPolicy ${JSON.stringify(written)} is not Always, IfNotPresent or Never`,
    );
  }
  return defaultPullPolicy(container.image, written === '' ? undefined : written);
}

export function containerFieldPath(container: { name: string }, init: boolean): string {
  return `${init ? 'spec.initContainers' : 'spec.containers'}{${container.name}}`;
}

/** Pod worker cadence (docs/semantics.md kubelet §5): 10 s after a failed sync, the 1 min resync otherwise; up to +50 % jitter. */
export const WORKER_BACKOFF_PERIOD_MS = 10_000;
export const WORKER_RESYNC_INTERVAL_MS = 60_000;

/**
 * When the pod worker syncs a pod again after `result`: never when every image is ready, else
 * the back-off period (or the resync interval when only back-off held it), with up to 50 %
 * jitter.
 */
export function nextSyncDelayMs(result: PodSyncResult, random: () => number = Math.random): number | undefined {
  if (result.ready) return undefined;
  const base = result.backOffOnly ? WORKER_RESYNC_INTERVAL_MS : WORKER_BACKOFF_PERIOD_MS;
  return base * (1 + random() * 0.5);
}

/**
 * One pod's image work across syncs: containers whose images are ready are not asked again (the
 * kubelet would have started them); init containers go first, one at a time.
 */
export class PodImageWorker {
  readonly pod: PodImageSpec;
  readonly #manager: ImageManager;
  readonly #getSecret: (name: string) => unknown;
  readonly #recorder: EventRecorder | undefined;
  readonly #clock: Clock;
  readonly #ready = new Map<string, string>();

  constructor(options: {
    manager: ImageManager;
    pod: PodImageSpec;
    getSecret: (name: string) => unknown;
    recorder?: EventRecorder;
  }) {
    this.#manager = options.manager;
    this.pod = options.pod;
    this.#getSecret = options.getSecret;
    this.#recorder = options.recorder;
    this.#clock = options.manager.clock;
    for (const c of [...this.pod.initContainers, ...this.pod.containers]) containerPullPolicy(c);
  }

  async sync(signal?: AbortSignal): Promise<PodSyncResult> {
    const pod = this.pod;
    const podObject: EventObject = { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid };
    const secrets: unknown[] = [];
    const missing: string[] = [];
    for (const name of pod.imagePullSecrets) {
      if (name === '') continue;
      const secret = this.#getSecret(name);
      if (secret === undefined) missing.push(name);
      else secrets.push(secret);
    }
    if (missing.length > 0) {
      this.#recorder?.({
        type: 'Warning',
        reason: EventReason.FailedToRetrieveImagePullSecret,
        message: messages.secretsMissing(missing),
        object: podObject,
        timestamp: this.#clock.now(),
        source: 'kubelet',
      });
    }

    const states: ContainerImageState[] = [];
    const reasons: string[] = [];
    const ensure = async (container: ContainerImageSpec, init: boolean): Promise<ContainerImageState> => {
      const key = `${init ? 'init' : 'app'}/${container.name}`;
      const pullPolicy = containerPullPolicy(container);
      const base = { name: container.name, init, image: container.image, pullPolicy };
      const readyRef = this.#ready.get(key);
      if (readyRef !== undefined) return { ...base, ready: true, imageRef: readyRef };
      const eventObject: EventObject = { ...podObject, fieldPath: containerFieldPath(container, init) };
      const result = await this.#manager.ensureImageExists({
        pod,
        image: container.image,
        pullPolicy,
        pullSecrets: secrets,
        eventObject,
        ...(signal !== undefined && { signal }),
      });
      if (result.reason !== undefined) {
        reasons.push(result.reason);
        this.#recorder?.({
          type: 'Warning',
          reason: EventReason.Failed,
          message: messages.containerError(result.reason),
          object: eventObject,
          timestamp: this.#clock.now(),
          source: 'kubelet',
        });
        return {
          ...base,
          ready: false,
          imageRef: '',
          waiting: { reason: result.reason, message: result.message },
          result,
        };
      }
      this.#ready.set(key, result.imageRef);
      return { ...base, ready: true, imageRef: result.imageRef, result };
    };

    let blocked = false;
    for (const container of pod.initContainers) {
      if (blocked) {
        states.push(this.#initializing(container, true));
        continue;
      }
      const state = await ensure(container, true);
      states.push(state);
      if (!state.ready) blocked = true;
    }
    for (const container of pod.containers) {
      states.push(blocked ? this.#initializing(container, false) : await ensure(container, false));
    }
    return {
      containers: states,
      missingSecrets: missing,
      ready: states.every((s) => s.ready),
      backOffOnly: reasons.length > 0 && reasons.every((r) => r === WaitingReason.ImagePullBackOff),
    };
  }

  #initializing(container: ContainerImageSpec, init: boolean): ContainerImageState {
    const key = `${init ? 'init' : 'app'}/${container.name}`;
    const readyRef = this.#ready.get(key);
    const base = { name: container.name, init, image: container.image, pullPolicy: containerPullPolicy(container) };
    if (readyRef !== undefined) return { ...base, ready: true, imageRef: readyRef };
    return { ...base, ready: false, imageRef: '', waiting: { reason: 'PodInitializing', message: '' } };
  }
}

/** `kubectl get pods` STATUS for the image states: `Init:ImagePullBackOff`, `ErrImagePull`, … */
export function podStatusText(states: readonly ContainerImageState[]): string {
  const inits = states.filter((s) => s.init);
  const failingInit = inits.find((s) => s.waiting !== undefined && s.waiting.reason !== 'PodInitializing');
  if (failingInit?.waiting !== undefined) return `Init:${failingInit.waiting.reason}`;
  const pendingInit = inits.filter((s) => !s.ready);
  if (pendingInit.length > 0) return `Init:${inits.length - pendingInit.length}/${inits.length}`;
  const failing = states.find((s) => !s.init && s.waiting !== undefined);
  if (failing?.waiting !== undefined) return failing.waiting.reason;
  return 'ContainerCreating';
}
