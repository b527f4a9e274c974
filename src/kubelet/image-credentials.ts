/**
 * The kubelet's credentials for one image (docs/semantics.md kubelet §8) and their KEP-2535 views: the pod's
 * pull secrets (one keyring), the node's docker config, then credential provider plugins.
 */
import {
  keyringFromPullSecrets,
  lookupPullCredentials,
  type CredentialProviders,
  type Keyring,
  type KeyringMatch,
  type NodeKeyring,
  type PluginPodContext,
} from '../credentials/index.ts';
import type { ImagePullCredentials, PodCredentials } from './pull-records.ts';

/** The node-wide sources; the pod's secrets come with each request. */
export interface NodeCredentialSources {
  readonly node?: NodeKeyring | Keyring;
  readonly plugins?: CredentialProviders;
}

/**
 * Every credential for `repository` (normalized, no tag or digest) in the kubelet's order.
 * `pod` is the pod's namespace, or the pod itself (name, UID, service account), which plugins in
 * service-account token mode need. Throws PullSecretError when a usable secret is malformed (the
 * kubelet fails the lookup).
 */
export async function lookupImageCredentials(
  repository: string,
  pullSecrets: readonly unknown[],
  sources: NodeCredentialSources,
  pod: string | PluginPodContext,
): Promise<KeyringMatch[]> {
  const context: PluginPodContext = typeof pod === 'string' ? { namespace: pod } : pod;
  const podSecrets = keyringFromPullSecrets(pullSecrets, { defaultNamespace: context.namespace });
  return lookupPullCredentials(repository, {
    podSecrets,
    ...(sources.node !== undefined && { node: sources.node }),
    ...(sources.plugins !== undefined && { plugins: sources.plugins }),
    pod: context,
  });
}

/**
 * `getPodCredentials` for the verifier: every secret-sourced credential as
 * `{uid, namespace, name, credentialHash}` in order, and the first credential a
 * service-account-mode plugin gave as `{uid, namespace, name}`. Node and plain plugin
 * credentials never count.
 */
export function podCredentialsOf(matches: readonly KeyringMatch[]): PodCredentials {
  const secrets = [];
  let serviceAccount: PodCredentials['serviceAccount'];
  for (const match of matches) {
    const source = match.source;
    if (source.kind === 'serviceAccount') {
      serviceAccount ??= { uid: source.uid, namespace: source.namespace, name: source.name };
      continue;
    }
    if (source.kind !== 'secret') continue;
    secrets.push({ uid: source.uid, namespace: source.namespace, name: source.name, credentialHash: match.hash });
  }
  return serviceAccount === undefined ? { secrets } : { secrets, serviceAccount };
}

/** What a successful pull records: a secret's coordinates and hash, a service account's
 * coordinates, else node-accessible. */
export function pulledCredentialsOf(match: KeyringMatch | undefined): ImagePullCredentials {
  const source = match?.source;
  if (source?.kind === 'serviceAccount') {
    return { kubernetesServiceAccounts: [{ uid: source.uid, namespace: source.namespace, name: source.name }] };
  }
  if (match === undefined || source?.kind !== 'secret') return { nodePodsAccessible: true };
  const { uid, namespace, name } = source;
  return { kubernetesSecrets: [{ uid, namespace, name, credentialHash: match.hash }] };
}
