/** The image store: an OCI image layout written by verified ingest (download → verify → fsync →
 * rename) with cross-process locking, read back with bounded reads and no symlink following. */
export { defaultStorePath } from './paths.ts';
export {
  openStore,
  type OpenBlobStreamOptions,
  type OpenIngestOptions,
  type Store,
  type StoreOptions,
} from './store.ts';
export { StoreError, type StoreErrorCode } from './errors.ts';
export { isNoSpace } from './reserve.ts';
export type { Ingest } from './ingest.ts';
export { SMALL_INGEST_BYTES } from './small-ingest.ts';
export type { BlobUpload } from './upload.ts';
export {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  withoutNameAnnotations,
  type ImageRecord,
} from './layout-index.ts';
export { splitImageName, type ImageNameParts } from './image-name.ts';
export type { GcOptions, GcResult, OverLimitImage } from './gc.ts';
export type { FsckProblem, FsckProblemKind, FsckReport } from './fsck.ts';
