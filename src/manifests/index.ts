/**
 * Offline digest pinning of Kubernetes manifests (docs/semantics.md admission §5): find the image fields of workload
 * kinds in YAML and JSON files, rewrite only those scalars' characters, check, lint, lock files
 * and KRM ResourceLists. Resolution, pin formatting and policy are the admission engine's.
 */
export { ManifestSource, type Position } from './document.ts';
export {
  ImageLockError,
  ManifestFileError,
  RelocateError,
  type ImageLockErrorCode,
  type ManifestFileErrorCode,
  type RelocateErrorCode,
} from './errors.ts';
export { applyEdits, renderScalar, type ScalarEdit } from './edit.ts';
export {
  checkSlots,
  findingRecords,
  formatFindingsText,
  lintSlots,
  type Finding,
  type FindingRecord,
  type ImagePolicyLike,
} from './findings.ts';
export { readResourceList, slotResult, withResults, type KrmResult, type KrmSeverity } from './krm.ts';
export {
  LOCK_API_VERSION,
  LOCK_KIND,
  LockResolver,
  LockedResolutions,
  formatImageLock,
  makeImageLock,
  parseImageLock,
  type ImageLock,
  type LockEntry,
} from './lock.ts';
export { formatFieldPath, parseFieldPath, type ConcreteSegment, type PathSegment } from './paths.ts';
export {
  pinManifests,
  rewriteSlots,
  type PinEngine,
  type PinFailure,
  type PinOptions,
  type PinOutcome,
  type PinReport,
  type PinWarning,
  type PinnedFile,
} from './pin.ts';
export {
  KRM_ANNOTATIONS,
  findImageSlots,
  type ImageSlot,
  type ObjectRef,
  type ScalarLocation,
  type ScalarStyle,
  type SlotOptions,
} from './slots.ts';
export {
  relocate,
  type InPlaceImage,
  type RelocateEvent,
  type RelocateOptions,
  type RelocateReport,
  type RelocatedImage,
} from './relocate.ts';
export {
  assertNoCollisions,
  formatRelocateTarget,
  isUnderTarget,
  parseRelocateTarget,
  relocatedRepository,
  type NameMapping,
  type RelocateTarget,
} from './relocate-names.ts';
