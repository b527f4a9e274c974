/**
 * The registry client (OCI distribution protocol): resolve, manifests and blobs over ordered
 * endpoints, with token auth, realm policy, retries, redirects and in-process resume.
 */
export {
  RegistryClient,
  type CallOptions,
  type EndpointRequest,
  type GetManifestOptions,
  type RegistryClientOptions,
} from './client.ts';
export type { AuthOptions, PingResult } from './auth.ts';
export type { BlobProgress, FetchBlobOptions, FetchBlobResult } from './blobs.ts';
export type { ManifestResult, ResolveResult } from './manifests.ts';
export type { ListTagsOptions, TagList } from './tags.ts';
export {
  MAX_REFERRERS,
  MAX_REFERRER_PAGES,
  MAX_REFERRER_PAGE_BYTES,
  referrersTag,
  type ListReferrersOptions,
  type ReferrerList,
} from './referrers.ts';
export {
  pushScope,
  type BlobSource,
  type PushBlobOptions,
  type PushBlobResult,
  type PutManifestResult,
} from './upload.ts';
export type { ProxySettings, TransportOptions } from './transport.ts';
export type {
  BlobSink,
  Capability,
  Clock,
  Credential,
  CredentialSource,
  Endpoint,
  EndpointTls,
  EventSink,
  RegistryEvent,
  RepositoryRef,
} from './types.ts';
export {
  RegistryError,
  type RateLimit,
  type RegistryErrorCode,
  type RegistryErrorDetail,
  type RegistryErrorFacts,
} from './errors.ts';
export { DEFAULT_RETRY_POLICY, isPlainHttpAnswer, parseRetryAfter, systemClock, type RetryPolicy } from './retry.ts';
export {
  parseChallenges,
  parseScope,
  parseScopes,
  formatScope,
  mergeScopes,
  type Challenge,
  type Scope,
} from './challenge.ts';
export { checkRealm, classifyHost, type AddressClass, type RealmDecision } from './realm.ts';
export { redactUrl } from './redact.ts';
export { defaultEndpoints } from './endpoints.ts';
export { credentialIdentity } from './token.ts';
export { ERROR_BODY_LIMIT, MANIFEST_LIMIT, TOKEN_LIMIT } from './body.ts';
