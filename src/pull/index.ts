/** Pulling images from registries into the store. */
export {
  PullError,
  Puller,
  type PullOptions,
  type PullResult,
  type PulledManifest,
  type PullerOptions,
  type ResolveResult,
} from './puller.ts';
export type { PullEvent, PullEventSink } from './events.ts';
export { loadCredentialSource, toClientCredential, type CredentialOptions } from './credential-source.ts';
export { EndpointResolver } from './endpoints.ts';
export { indexChildren, openRegistry, repositoryOf, type RegistryAccessOptions } from './registry-access.ts';
export {
  MAX_CONFIG_BYTES,
  MemoryBlobSink,
  fetchRemoteConfig,
  fetchRemoteManifest,
  resolveRemote,
  type RemoteConfig,
  type RemoteManifest,
  type RemoteOptions,
  type RemoteResolution,
} from './remote.ts';
export {
  describeStoredImage,
  pickPlatformImage,
  storedName,
  type StoredImage,
  type StoredPlatformImage,
} from './local.ts';
