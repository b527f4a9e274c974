/**
 * The kubelet's credential order for one image (docs/semantics.md kubelet §8): pod secrets, then node config,
 * then credential provider plugins. Each source keeps its own keyring (and Docker Hub fallback);
 * the caller tries each credential in turn, one pull per credential, then anonymous.
 */
import { imageNameString, type ImageName, type Keyring, type KeyringMatch } from './keyring.ts';
import type { NodeKeyring } from './node-keyring.ts';
import type { CredentialProviders } from './provider.ts';
import type { PluginPodContext } from './service-account.ts';

export interface PullCredentialSources {
  /** All of the pod's usable pull secrets in one keyring (see keyringFromPullSecrets). */
  readonly podSecrets?: Keyring;
  readonly node?: NodeKeyring | Keyring;
  readonly plugins?: CredentialProviders;
  /** The pod the lookup is for (service-account-mode plugins run for its service account). */
  readonly pod?: PluginPodContext;
}

/**
 * Every credential the kubelet would try for `image`, in its order: pod pull secrets, then
 * the node's config, then credential provider plugins, each source with its own keyring and
 * Docker Hub fallback. The caller makes one pull per credential, then one anonymous.
 */
export async function lookupPullCredentials(image: ImageName, sources: PullCredentialSources): Promise<KeyringMatch[]> {
  const name = imageNameString(image);
  const fromSecrets = sources.podSecrets?.lookup(name) ?? [];
  const fromNode = (await sources.node?.lookup(name)) ?? [];
  const fromPlugins = (await sources.plugins?.lookup(name, sources.pod)) ?? [];
  return [...fromSecrets, ...fromNode, ...fromPlugins];
}
