/**
 * The kubelet's image handling (docs/semantics.md kubelet): pull-policy defaulting, the image manager
 * (`ensureImageExists` with back-off, events, credentials, throttling, pull scheduling),
 * KEP-2535 credential verification of images already on the node, image garbage collection,
 * and the preflight behind `kimg ensure --dry-run`. Clock and image service are injected.
 *
 * This face carries what the README documents and what other folders use (at most 60 names,
 * checked by `face.test.ts`); everything else is imported from its file. Test doubles
 * (`FakeImageService`, `ManualClock`) live in `kimg/kubelet/testing`.
 */
export { PullPolicy, defaultPullPolicy } from './policy.ts';

// Time and Go text formats.
export { systemClock, type Clock } from '../signals/index.ts';
export { formatGoDuration, goQuote, humanDuration } from './go-format.ts';

// Names, events, back-off, throttling, pull scheduling.
export { applyDefaultImageTag } from './image-name.ts';
export {
  EventReason,
  WaitingReason,
  evalPullError,
  messages,
  type EventRecorder,
  type KubeletEvent,
} from './events.ts';
export { Backoff, backOffKey } from './backoff.ts';
export { TokenBucket } from './throttle.ts';
export { ParallelPullScheduler, SerialPullScheduler } from './pull-scheduler.ts';

// Configuration.
export {
  parseFeatureGates,
  readKubeletConfigDocument,
  resolveKubeletImageConfig,
  type KubeletImageConfig,
  type KubeletImageConfigInput,
} from './config.ts';

// The image service (runtime) and the image manager.
export type { ImageInfo, ImageResolver, ImageService, PullImageOptions, ResolvedImage } from './image-service.ts';
export { StoreImageService, type StoreImageServiceOptions } from './store-image-service.ts';
export type { NodeCredentialSources } from './image-credentials.ts';
export {
  ImageManager,
  type EnsureImageRequest,
  type EnsureImageResult,
  type ImageManagerOptions,
  type PodRef,
} from './image-manager.ts';
export { MetricsRegistry, PodStartupLatencyTracker, type MetricsSink } from './metrics.ts';

// Pods.
export {
  PodImageWorker,
  nextSyncDelayMs,
  podStatusText,
  type ContainerImageSpec,
  type ContainerImageState,
  type PodImageSpec,
  type PodSyncResult,
} from './pod.ts';
export { preflightPod, type PreflightContainer, type PreflightOptions, type PreflightReport } from './preflight.ts';

// KEP-2535: verifying access to images already on the node.
export { CachedPullRecords, FsPullRecords, MemoryPullRecords } from './pull-records-store.ts';
export { ImagePullManager, type ImagePullManagerOptions, type PullVerifier } from './pull-manager.ts';

// Image garbage collection.
export { ImageGarbageCollector, type GcRoundResult, type ImageGcState } from './gc.ts';
