/** OCI image-spec media types, descriptors, and strict reading of manifests and indexes. */
export {
  MANIFEST_ACCEPT,
  MediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  stripMediaTypeParameters,
} from './media-types.ts';
export type { Descriptor, ImageIndex, ImageManifest, ManifestDocument, Platform } from './types.ts';
export {
  EMPTY_SHA256,
  ManifestError,
  manifestBlobs,
  parseDescriptor,
  parseManifestDocument,
  type DocumentLimits,
  type ManifestErrorCode,
  type ParseDocumentOptions,
} from './document.ts';
export { JsonError, MAX_JSON_DEPTH, parseStrictJson } from './json.ts';
export {
  InvalidPlatformError,
  PlatformNotFoundError,
  describeAvailable,
  formatPlatform,
  hostPlatform,
  isAttestationPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatcher,
  selectPlatform,
  type HostInfo,
  type PlatformMatchOptions,
} from './platform.ts';
export { referrerOf, referrersAmong } from './referrers.ts';
export {
  MAX_INDEX_DEPTH,
  MAX_WALK_DESCRIPTORS,
  WalkLimitError,
  childrenOf,
  forPlatform,
  isDocumentMediaType,
  walkImage,
  type Children,
  type Visit,
  type WalkLimit,
  type WalkOptions,
  type WalkStats,
  type WalkStep,
} from './walk.ts';
