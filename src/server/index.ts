/**
 * `kimg registry serve`: the store served as an OCI distribution registry on a node, optionally
 * pulling through to upstream registries and accepting pushes; the containerd and CRI-O
 * configuration that points a node at it.
 */
export {
  RegistryServer,
  isLoopback,
  type RegistryServerOptions,
  type WriteSide,
  type WriteContext,
  type WriteSideFactory,
} from './server.ts';
export { DistributionError, type DistributionErrorCode } from './errors.ts';
export { BasicAuthenticator, apr1 } from './auth.ts';
export { ServerMetrics } from './metrics.ts';
export { repositoryOf, catalogName, type RepositoryName } from './names.ts';
export type { Upstream } from './read.ts';
export { renderHostsToml, renderRegistriesConf, checkMirrorUrl, type MirrorOptions } from './node-config.ts';
export { allowPush, type UploadOptions } from './uploads.ts';
export { renderDaemonSet, type DaemonSetOptions } from './daemonset.ts';
