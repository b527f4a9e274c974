/**
 * Registry host configuration as container runtimes read it (containerd hosts directories,
 * containers-registries.conf), resolved to the ordered endpoints a pull contacts.
 */
export type {
  Capability,
  ClientCertificate,
  Endpoint,
  HostSettings,
  PullKind,
  RegistryHost,
  RepositoryName,
  TlsSettings,
} from './types.ts';
export { ALL_CAPABILITIES } from './types.ts';
export { HostsConfigError, RegistryBlockedError } from './errors.ts';
export {
  DEFAULT_INSECURE_LOOPBACK,
  isInsecureByRule,
  isLoopbackHost,
  splitHostPort,
  type InsecureHostRule,
} from './address.ts';
export {
  containerdRegistryHosts,
  findHostsDir,
  loadContainerdHosts,
  loadHostsDir,
  parseHostsToml,
  type ContainerdHosts,
  type ContainerdHostsOptions,
  type HostSpec,
  type HostsDirConfig,
} from './containerd.ts';
export {
  defaultRegistriesConfPaths,
  findRegistry,
  loadRegistriesConf,
  mergeRegistriesConf,
  parseRegistriesConf,
  prefixMatchLength,
  registriesConfSources,
  type MirrorEntry,
  type PullFromMirror,
  type PullSource,
  type RegistriesConf,
  type RegistriesConfFile,
  type RegistriesConfPaths,
  type RegistryEntry,
  type ShortNameMode,
} from './registries-conf.ts';
export { certsFor, defaultCertsDirRoots, loadCertsDirs, type CertFiles, type CertsDirs } from './certs-dirs.ts';
export { hostEndpoint, resolveHosts, type HostsConfig } from './resolve.ts';
export { DEFAULT_HOSTS_DIRS, loadHostsConfig, type LoadHostsConfigOptions } from './load.ts';
export { explainHosts, type ExplainOptions } from './explain.ts';
