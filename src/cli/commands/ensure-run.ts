/**
 * The `kimg ensure` loop: one pod worker per pod, all running at once as the kubelet's do; one
 * sync each, or with `watch` re-synced on the kubelet's pod-worker cadence until every image is
 * ready (or the deadline passes, or the signal aborts).
 */
import {
  PodImageWorker,
  backOffKey,
  nextSyncDelayMs,
  type Clock,
  type ImageManager,
  type KubeletEvent,
  type PodSyncResult,
} from '../../kubelet/index.ts';
import { secretLookup, type SecretEntry, type WorkloadPod } from './ensure-workloads.ts';

export interface SyncReport {
  readonly pod: WorkloadPod;
  readonly result: PodSyncResult;
  readonly syncedAt: number;
  /** When the next sync is due; undefined when done. */
  readonly nextSyncAt: number | undefined;
  /** Per failing container, when its back-off window ends and how long it is. */
  readonly backOff: readonly { container: string; image: string; retryAt: number; windowMs: number }[];
}

export interface EnsureRunOptions {
  readonly manager: ImageManager;
  readonly pods: readonly WorkloadPod[];
  readonly secrets: readonly SecretEntry[];
  /** Where pod and container events go (the same recorder the manager writes to). */
  readonly recorder: (event: KubeletEvent) => void;
  readonly clock: Clock;
  readonly watch?: boolean;
  /** Stop watching after this long (ms). */
  readonly watchTimeoutMs?: number;
  readonly random?: () => number;
  readonly signal?: AbortSignal;
  readonly onSync?: (report: SyncReport) => void;
}

export interface EnsureRunResult {
  readonly pods: readonly { readonly pod: WorkloadPod; readonly result: PodSyncResult; readonly syncs: number }[];
  readonly ready: boolean;
  /** Watching stopped before every image was ready (deadline or interruption). */
  readonly stopped: boolean;
}

export async function runEnsure(options: EnsureRunOptions): Promise<EnsureRunResult> {
  const { manager, clock } = options;
  const random = options.random ?? Math.random;
  const deadline = options.watchTimeoutMs === undefined ? undefined : clock.now() + options.watchTimeoutMs;
  let stopped = false;

  const loop = async (pod: WorkloadPod) => {
    const worker = new PodImageWorker({
      manager,
      pod,
      getSecret: secretLookup(options.secrets, pod.namespace),
      recorder: options.recorder,
    });
    let syncs = 0;
    for (;;) {
      const result = await worker.sync(options.signal);
      syncs++;
      const delay = options.watch === true ? nextSyncDelayMs(result, random) : undefined;
      const nextSyncAt = delay === undefined ? undefined : clock.now() + delay;
      const backOff = result.containers.flatMap((c) => {
        const state = c.ready ? undefined : manager.backOff.state(backOffKey(pod.uid, c.image));
        return state === undefined
          ? []
          : [{ container: c.name, image: c.image, retryAt: state.retryAt, windowMs: state.windowMs }];
      });
      options.onSync?.({ pod, result, syncedAt: clock.now(), nextSyncAt, backOff });
      if (nextSyncAt === undefined) return { pod, result, syncs };
      if (deadline !== undefined && nextSyncAt > deadline) {
        stopped = true;
        return { pod, result, syncs };
      }
      try {
        await clock.sleep(nextSyncAt - clock.now(), options.signal);
      } catch {
        stopped = true;
        return { pod, result, syncs };
      }
    }
  };

  const pods = await Promise.all(options.pods.map(loop));
  return { pods, ready: pods.every((p) => p.result.ready), stopped };
}
