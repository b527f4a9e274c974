/**
 * Registry credentials: the kubelet keyring (pull secrets, node config, credential provider
 * plugins) and the user's Docker/containers credential files and helpers for the registry
 * client. Credentials print as `<redacted>`; errors name inputs, never secrets.
 */
export {
  BasicCredential,
  IdentityTokenCredential,
  REDACTED,
  RegistryTokenCredential,
  isCredential,
  redact,
  secretSpellings,
  type Credential,
} from './credential.ts';
export { credentialHash } from './credential-hash.ts';
export {
  CredentialHelperError,
  CredentialProviderError,
  DockerConfigError,
  NodeConfigError,
  ProviderConfigError,
  PullSecretError,
  type CredentialHelperFailure,
  type CredentialProviderFailure,
} from './errors.ts';

// Kubelet keyring (kubelet.md §6, §8).
export {
  Keyring,
  describeSource,
  imageNameString,
  indexKey,
  isDockerHubFallbackTarget,
  lookupInOrder,
  urlsMatch,
  type CredentialSource,
  type ImageName,
  type KeyringMatch,
} from './keyring.ts';
export {
  AUTH_FORMAT_PROBLEM,
  decodeDockercfg,
  decodeDockerConfigJson,
  encodeKubeletEntry,
  type KubeletDockerConfig,
} from './kubelet-config.ts';
export {
  SECRET_TYPE_DOCKERCFG,
  SECRET_TYPE_DOCKER_CONFIG_JSON,
  keyringFromPullSecrets,
  parsePullSecret,
  type PullSecretConfig,
  type PullSecretOptions,
  type SecretCredentialSource,
  type SecretObject,
} from './secrets.ts';
export {
  NODE_CONFIG_LIFETIME_MS,
  NodeKeyring,
  nodeConfigJsonPaths,
  nodeDockercfgPaths,
  readNodeDockerConfig,
  type NodeConfigLocations,
  type NodeKeyringOptions,
} from './node-keyring.ts';
export { lookupPullCredentials, type PullCredentialSources } from './pull-credentials.ts';

// Credential provider plugins (kubelet.md §9).
export {
  CONFIG_API_VERSIONS,
  PROVIDER_API_VERSIONS,
  parseCredentialProviderConfig,
  type CredentialProviderConfig,
  type CredentialProviderSpec,
  type ProviderTokenAttributes,
} from './provider-config.ts';
export {
  CredentialProviderPlugin,
  CredentialProviders,
  PROVIDER_TIMEOUT_MS,
  type CredentialProviderOptions,
  type PluginAnswer,
} from './provider.ts';
export {
  serviceAccountCacheKey,
  type PluginPodContext,
  type ServiceAccountAccess,
  type ServiceAccountInfo,
  type ServiceAccountScope,
  type ServiceAccountTokenRequest,
} from './service-account.ts';
export {
  parseProviderResponse,
  providerRequest,
  type CacheKeyType,
  type ProviderResponse,
} from './provider-response.ts';
export { CACHE_PURGE_INTERVAL_MS, GLOBAL_CACHE_KEY, type Clock } from './provider-cache.ts';
export { parseGoDuration } from './go-duration.ts';

// Docker config.json / containers auth.json and credential helpers (registry-client.md §7).
export {
  DOCKER_HUB_SERVER_URL,
  candidateKeys,
  helperServerURL,
  normalizeAuthKey,
  normalizeRegistryHost,
  parseDockerConfigFile,
  resolveInDockerConfig,
  type DockerAuthEntry,
  type DockerConfigFile,
  type DockerConfigResolution,
  type RegistryTarget,
} from './docker-config.ts';
export {
  MAX_CREDENTIAL_FILE_BYTES,
  containersAuthPaths,
  defaultCredentialFilePaths,
  dockerConfigPath,
  loadCredentialFiles,
  type CredentialFileLocations,
} from './docker-config-files.ts';
export {
  HELPER_TIMEOUT_MS,
  getFromCredentialHelper,
  isValidHelperName,
  parseHelperOutput,
  type CredentialHelperOptions,
} from './credential-helper.ts';
export { HostCredentialResolver, type HostCredential, type HostCredentialResolverOptions } from './host-credentials.ts';
export { runProgram, type ProgramOutcome, type ProgramRunner, type RunProgramOptions } from './run-program.ts';
