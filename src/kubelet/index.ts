/**
 * The kubelet's image handling (kubelet.md): pull-policy defaulting, the image manager
 * (`ensureImageExists` with back-off, events, credentials, throttling, pull scheduling),
 * KEP-2535 credential verification of images already on the node, image garbage collection,
 * and the preflight behind `kimg ensure --dry-run`. Clock and image service are injected.
 */
export { PullPolicy, defaultPullPolicy, isPullPolicy } from './policy.ts';

// Time and Go text formats.
export { ManualClock, systemClock, type Clock } from './clock.ts';
export { aggregateMessages, formatGoDuration, goQuote, humanDuration } from './go-format.ts';

// Names, events, back-off, throttling, pull scheduling.
export {
  applyDefaultImageTag,
  parseImageName,
  repositoryOf,
  type DefaultTagResult,
  type ImageNameResult,
  type ParsedImageName,
} from './image-name.ts';
export {
  EventReason,
  WaitingReason,
  evalPullError,
  isImagePullWaitingReason,
  messages,
  type EventObject,
  type EventRecorder,
  type EventType,
  type KubeletEvent,
} from './events.ts';
export {
  Backoff,
  IMAGE_BACKOFF_INITIAL_MS,
  IMAGE_BACKOFF_MAX_MS,
  backOffKey,
  type BackoffEntry,
  type BackoffState,
} from './backoff.ts';
export { PULL_QPS_EXCEEDED, PullQpsExceededError, TokenBucket, pullThrottle } from './throttle.ts';
export {
  ParallelPullScheduler,
  SERIAL_QUEUE_CAPACITY,
  SerialPullScheduler,
  pullSchedulerFor,
  type PullScheduler,
  type ScheduledPullResult,
} from './pull-scheduler.ts';

// Configuration.
export {
  DEFAULT_KUBELET_IMAGE_CONFIG,
  ENSURE_SECRET_PULLED_IMAGES_GATE,
  KUBELET_CONFIG_API_VERSION,
  KubeletConfigError,
  parseFeatureGates,
  readKubeletConfigDocument,
  resolveKubeletImageConfig,
  type KubeletImageConfig,
  type KubeletImageConfigInput,
} from './config.ts';

// The image service (runtime) and the image manager.
export {
  PullAttemptsError,
  errorText,
  pullWithCredentials,
  type CredentialPullResult,
  type ImageInfo,
  type ImageResolver,
  type ImageService,
  type PullImageOptions,
  type ResolvedImage,
} from './image-service.ts';
export { StoreImageService, runtimeError, type StoreImageServiceOptions } from './store-image-service.ts';
export { FakeImageService, type FakeCall, type FakeRemoteImage } from './fake-image-service.ts';
export {
  lookupImageCredentials,
  podCredentialsOf,
  pulledCredentialsOf,
  type NodeCredentialSources,
} from './credentials.ts';
export {
  ImageManager,
  type EnsureImageRequest,
  type EnsureImageResult,
  type ImageManagerOptions,
  type PodRef,
} from './image-manager.ts';
export {
  METRIC_ENSURE_IMAGE_REQUESTS,
  METRIC_IMAGE_PULL_DURATION,
  METRIC_MUSTPULL_CHECKS,
  MetricsRegistry,
  PodStartupLatencyTracker,
  imageSizeBucket,
  type Labels,
  type MetricsSink,
  type PullLatencyTracker,
} from './metrics.ts';

// Pods.
export {
  PodImageWorker,
  WORKER_BACKOFF_PERIOD_MS,
  WORKER_RESYNC_INTERVAL_MS,
  containerFieldPath,
  containerPullPolicy,
  nextSyncDelayMs,
  podStatusText,
  type ContainerImageSpec,
  type ContainerImageState,
  type PodImageSpec,
  type PodSyncResult,
} from './pod.ts';
export {
  preflightPod,
  type PreflightAttempt,
  type PreflightContainer,
  type PreflightOptions,
  type PreflightProblem,
  type PreflightReport,
} from './preflight.ts';

// KEP-2535: verifying access to images already on the node.
export {
  DEFAULT_VERIFICATION_POLICY,
  VerificationPolicy,
  allowlistProblems,
  isAllowlisted,
  isVerificationPolicy,
  parseAllowlist,
  requiresVerification,
  type Allowlist,
} from './verification-policy.ts';
export {
  WRITE_RECORD_WHILE_MATCHING_LIMIT,
  checkRecordedCredentials,
  mergePulledRecord,
  recordTime,
  type ImagePullCredentials,
  type ImagePullIntent,
  type ImagePulledRecord,
  type ImagePullSecretRef,
  type ImagePullServiceAccountRef,
  type PodCredentials,
  type RecordCheck,
} from './pull-records.ts';
export {
  RECORDS_API_VERSION,
  RecordDecodeError,
  decodePullIntent,
  decodePulledRecord,
  encodePullIntent,
  encodePulledRecord,
  recordFileName,
} from './pull-records-codec.ts';
export {
  CachedPullRecords,
  FsPullRecords,
  IMAGE_MANAGER_DIR,
  INTENT_CACHE_SIZE,
  MemoryPullRecords,
  RECORD_CACHE_SIZE,
  type PullRecordsAccessor,
} from './pull-records-store.ts';
export {
  ImagePullManager,
  type ImagePullManagerOptions,
  type ListedImage,
  type MustPullDecision,
  type MustPullExplanation,
  type PullVerifier,
} from './pull-manager.ts';

// Image garbage collection.
export {
  ImageGarbageCollector,
  amountToFree,
  evictionOrder,
  usagePercent,
  type FsStats,
  type GcDecision,
  type GcDecisionReason,
  type GcRoundResult,
  type ImageGarbageCollectorOptions,
  type ImageGcPolicy,
  type ImageGcRecord,
  type ImageGcState,
} from './gc.ts';
