/**
 * Digest pinning and image policy (spec admission.md): the engine shared by the admission
 * webhook and the offline CLI (`Pinner`, `ImagePolicy`, `findImages`), the configuration
 * vocabulary, AdmissionReview handling and the HTTPS webhook server.
 */

// Configuration (§3).
export {
  DEFAULT_OWN_NAMESPACE,
  DEFAULT_POLICY,
  DEFAULT_SKIP_CONTROLLER_OWNED,
  checkPlatform,
  checkRepositoryEntry,
  defaultMutateConfig,
  defaultResolverConfig,
  parseAdmissionConfig,
  parseExtraPodSpecPaths,
  parseMutateConfig,
  parsePolicyConfig,
  parseResolveMode,
  parseResolverConfig,
  type AdmissionConfig,
  type ConfigEnvironment,
  type ExistingDigestMode,
  type MutateConfig,
  type OutputFormat,
  type PolicyConfig,
  type ResolveMode,
  type ResolverConfig,
  type SecretSourceConfig,
} from './config.ts';
export { loadAdmissionConfig, readConfigFile } from './config-file.ts';
export { parse as parseYamlStream, stringifyAll as stringifyYamlStream } from './yaml.ts';
export { AdmissionConfigError, ResolveFailure } from './errors.ts';

// Where images are (§4.1).
export {
  escapePointerSegment,
  findImages,
  groupKindKey,
  groupOf,
  imagesInPodSpec,
  isCoveredKind,
  kindOf,
  podSpecPaths,
  podSpecsOf,
  toPointer,
  valueAt,
  type FindImagesOptions,
  type GroupKind,
  type ImageSlot,
  type PodSpecLocation,
  type SlotList,
} from './pod-specs.ts';

// Pinning (§4.3–§4.9, §4.14).
export { classifyImage, pinnedValue, showImage, type ImageClass } from './images.ts';
export { imageWarning, prefixedImage, WARNING_LIMIT } from './messages.ts';
export {
  Pinner,
  type LookupEvent,
  type PinContext,
  type PinResult,
  type PinStatus,
  type PinnerOptions,
  type PinnerStats,
  type StaleServeEvent,
} from './pinner.ts';
export {
  RegistryResolver,
  combineHostsConfig,
  registryHostsConfig,
  selectPlatformManifest,
  type DigestResolver,
  type RegistryResolverOptions,
  type RegistryCredential,
  type ResolveContext,
} from './resolver.ts';
export {
  createAdmissionRuntime,
  loadResolverHosts,
  resolverFromConfig,
  type AdmissionRuntime,
  type AdmissionRuntimeOptions,
} from './setup.ts';
export { SecretInformer, type InformerOptions } from './informer.ts';
export { BudgetExpired, failureReason, isTransientFailure, toResolveFailure } from './failures.ts';
export { TtlCache, type StaleEntry } from './cache.ts';
export {
  MemoryObjectSource,
  dockerConfigCredentials,
  loadObjectFile,
  podCredentials,
  type ClusterObjectSource,
  type CredentialLookup,
  type DockerConfigCredentialOptions,
  type ServiceAccountObject,
} from './credentials.ts';

// Policy (§4.15).
export {
  ImagePolicy,
  repositoryAllowed,
  validate,
  type PolicyEvaluation,
  type PolicyRule,
  type PolicyViolation,
  type ViolationRecord,
} from './policy.ts';

// AdmissionReview handling and the webhook (§1, §4.4, §4.10–§4.16).
export {
  AdmissionHandler,
  type AdmissionHandlerOptions,
  type Decision,
  type DecisionReason,
  type MutateCallOptions,
  type PatchOperation,
} from './handler.ts';
export {
  parseAdmissionReview,
  parseTimeoutParameter,
  requestBudgetMs,
  reviewOf,
  ADMISSION_API_VERSION,
  DEFAULT_TIMEOUT_MS,
  type AdmissionStatus,
  type GroupVersionKind,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type ReviewParseResult,
} from './review.ts';
export { WebhookMetrics } from './metrics.ts';
export { WebhookServer, type WebhookServerOptions } from './server.ts';
export {
  OPT_IN_LABEL,
  generateWebhookCertificates,
  renderWebhookManifests,
  webhookManifestObjects,
  type CertificateRequest,
  type WebhookCertificates,
  type WebhookManifestOptions,
} from './manifests.ts';
