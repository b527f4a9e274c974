/** Writing images: copies between registries, the store, OCI layouts and archives (push, copy,
 * save, load), with every byte verified and the name written last. */
export {
  copyImage,
  MAX_REFERRER_DEPTH,
  MAX_REFERRERS_PER_COPY,
  type CopiedReferrer,
  type CopyEvent,
  type CopyEventSink,
  type CopyOptions,
  type CopyResult,
} from './engine.ts';
export { openDestination, openSource, parseTransport, type TransportContext, type TransportRef } from './transports.ts';
export { LayoutDestination, LayoutSource } from './layout.ts';
export { RegistryDestination, RegistrySource, registryBlobSource } from './registry.ts';
export {
  CopyError,
  type BlobOutcome,
  type CopyErrorCode,
  type ImageDestination,
  type ImageSource,
  type PushBlobContext,
  type TopLevel,
} from './types.ts';
