/**
 * Registry credentials: the kubelet keyring (pull secrets, node config, credential provider
 * plugins) and the user's Docker/containers credential files and helpers for the registry
 * client. Credentials print as `<redacted>`; errors name inputs, never secrets.
 *
 * This face carries what other folders use and the types of its signatures; parsers, codecs
 * and constants are imported from their files.
 */
export { BasicCredential, IdentityTokenCredential, RegistryTokenCredential, type Credential } from './credential.ts';
export {
  CredentialHelperError,
  CredentialProviderError,
  DockerConfigError,
  NodeConfigError,
  ProviderConfigError,
  PullSecretError,
} from './errors.ts';
export { parseGoDuration } from './go-duration.ts';

// Kubelet keyring (docs/semantics.md kubelet §6, §8).
export { Keyring, type KeyringMatch } from './keyring.ts';
export { keyringFromPullSecrets, type SecretObject } from './secrets.ts';
export { NodeKeyring, type NodeKeyringOptions } from './node-keyring.ts';
export { lookupPullCredentials, type PullCredentialSources } from './pull-credentials.ts';

// Credential provider plugins (docs/semantics.md kubelet §9).
export { parseCredentialProviderConfig, type CredentialProviderConfig } from './provider-config.ts';
export { CredentialProviders, type CredentialProviderOptions } from './provider.ts';
export type { PluginPodContext, ServiceAccountAccess, ServiceAccountInfo } from './service-account.ts';

// Docker config.json / containers auth.json and credential helpers (docs/semantics.md registry §7).
export { HostCredentialResolver, type HostCredential, type HostCredentialResolverOptions } from './host-credentials.ts';
