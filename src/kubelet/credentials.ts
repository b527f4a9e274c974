/**
 * The kubelet's credentials for one image (kubelet.md §8) and their KEP-2535 views: the pod's
 * pull secrets (one keyring), the node's docker config, then credential provider plugins.
 */
import {
  keyringFromPullSecrets,
  lookupPullCredentials,
  type CredentialProviders,
  type Keyring,
  type KeyringMatch,
  type NodeKeyring,
} from '../credentials/index.ts';
import type { ImagePullCredentials, PodCredentials } from './pull-records.ts';

/** The node-wide sources; the pod's secrets come with each request. */
export interface NodeCredentialSources {
  readonly node?: NodeKeyring | Keyring;
  readonly plugins?: CredentialProviders;
}

/**
 * Every credential for `repository` (normalized, no tag or digest) in the kubelet's order.
 * Throws PullSecretError when a usable secret is malformed (the kubelet fails the lookup).
 */
export async function lookupImageCredentials(
  repository: string,
  pullSecrets: readonly unknown[],
  sources: NodeCredentialSources,
  podNamespace: string,
): Promise<KeyringMatch[]> {
  const podSecrets = keyringFromPullSecrets(pullSecrets, { defaultNamespace: podNamespace });
  return lookupPullCredentials(repository, {
    podSecrets,
    ...(sources.node !== undefined && { node: sources.node }),
    ...(sources.plugins !== undefined && { plugins: sources.plugins }),
  });
}

/**
 * `getPodCredentials` for the verifier: every secret-sourced credential as
 * `{uid, namespace, name, credentialHash}` in order. Node and plain plugin credentials never
 * count. (Service-account-sourced credentials need pod-bound tokens, which kimg does not mint,
 * so there is never a service account here.)
 */
export function podCredentialsOf(matches: readonly KeyringMatch[]): PodCredentials {
  const secrets = [];
  for (const match of matches) {
    if (match.source.kind !== 'secret') continue;
    secrets.push({
      uid: match.source.uid,
      namespace: match.source.namespace,
      name: match.source.name,
      credentialHash: match.hash,
    });
  }
  return { secrets };
}

/** What a successful pull records: a secret's coordinates and hash, else node-accessible. */
export function pulledCredentialsOf(match: KeyringMatch | undefined): ImagePullCredentials {
  if (match === undefined || match.source.kind !== 'secret') return { nodePodsAccessible: true };
  const { uid, namespace, name } = match.source;
  return { kubernetesSecrets: [{ uid, namespace, name, credentialHash: match.hash }] };
}
