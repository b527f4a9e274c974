/**
 * Image archives: `oci-archive` (an OCI layout in a tar) and `docker-archive` (`docker save`)
 * read as image sources without extracting anything, `kimg save` writing one tar both
 * `ctr images import` and `docker load` accept, and `kimg load` into the store.
 */
export {
  Archive,
  MAX_METADATA_BYTES,
  type ArchiveFormat,
  type ArchiveImage,
  type OpenArchiveOptions,
} from './archive.ts';
export { ArchiveError, type ArchiveErrorCode } from './errors.ts';
export { loadArchive, storeNameOf, type LoadEvent, type LoadOptions, type LoadedImage } from './load.ts';
export { saveArchive, type SaveImage, type SaveOptions, type SaveResult } from './save.ts';
export { openArchiveSource, selectArchiveImage, type ArchiveImageSource, type ArchiveTopLevel } from './source.ts';
export type { TarLimits } from './tar-index.ts';
