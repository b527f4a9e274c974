/**
 * Digest pinning and image policy (docs/semantics.md admission): the engine shared by the admission
 * webhook and the offline CLI (`Pinner`, `ImagePolicy`, `findImages`), the configuration
 * vocabulary, AdmissionReview handling and the HTTPS webhook server.
 *
 * This face carries what the README documents and what other folders use, with the types of
 * their signatures; AdmissionReview codecs, caches, messages and constants are imported from
 * their files.
 */

// Configuration (docs/semantics.md admission §3).
export {
  checkPlatform,
  parseAdmissionConfig,
  parseExtraPodSpecPaths,
  parsePolicyConfig,
  type AdmissionConfig,
  type ExistingDigestMode,
  type MutateConfig,
  type OutputFormat,
  type PolicyConfig,
} from './config.ts';
export { loadAdmissionConfig, readConfigFile } from './config-file.ts';
export { AdmissionConfigError, ResolveFailure } from './errors.ts';

// Where images are (docs/semantics.md admission §4.1).
export { findImages, groupOf, kindOf, podSpecPaths, type ImageSlot } from './pod-specs.ts';

// Pinning (docs/semantics.md admission §4.3–§4.9, §4.14).
export { classifyImage, pinnedValue } from './images.ts';
export { Pinner, type PinResult, type PinnerOptions } from './pinner.ts';
export { RegistryResolver, type DigestResolver, type RegistryResolverOptions } from './resolver.ts';
export { createAdmissionRuntime, resolverFromConfig, type AdmissionRuntime } from './setup.ts';
export { SecretInformer } from './informer.ts';
export {
  MemoryObjectSource,
  dockerConfigCredentials,
  podCredentials,
  type CredentialLookup,
} from './pod-credentials.ts';

// Policy (docs/semantics.md admission §4.15).
export { ImagePolicy, validate, type PolicyEvaluation } from './policy.ts';

// AdmissionReview handling and the webhook (docs/semantics.md admission §1, §4.4, §4.10–§4.16).
export { AdmissionHandler, type AdmissionHandlerOptions } from './handler.ts';
export { WebhookServer, type WebhookServerOptions } from './server.ts';
export { generateWebhookCertificates, renderWebhookManifests, type WebhookManifestOptions } from './manifests.ts';
