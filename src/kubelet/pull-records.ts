/**
 * KEP-2535 records (docs/semantics.md kubelet §10) and the pure rules over them: how the credentials of a
 * successful pull merge into an `ImagePulledRecord`, and whether a pod's credentials let it use an
 * image already on the node.
 */

export interface ImagePullSecretRef {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** credentialHash of the keyring credential that was used (docs/semantics.md kubelet §10). */
  readonly credentialHash: string;
}

export interface ImagePullServiceAccountRef {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
}

export interface ImagePullCredentials {
  readonly kubernetesSecrets?: readonly ImagePullSecretRef[];
  readonly kubernetesServiceAccounts?: readonly ImagePullServiceAccountRef[];
  /** Pulled with node credentials or none: every pod on the node may use it. */
  readonly nodePodsAccessible?: boolean;
}

export interface ImagePulledRecord {
  /** RFC 3339, UTC, whole seconds. */
  readonly lastUpdatedTime: string;
  readonly imageRef: string;
  /** By normalized repository without tag or digest (`docker.io/library/nginx`). */
  readonly credentialMapping: Readonly<Record<string, ImagePullCredentials>>;
}

export interface ImagePullIntent {
  /** The image as written in the pod spec. */
  readonly image: string;
}

/** What `getPodCredentials` yields: the pod's secret-sourced credentials in order, and the first SA-sourced one. */
export interface PodCredentials {
  readonly secrets: readonly ImagePullSecretRef[];
  readonly serviceAccount?: ImagePullServiceAccountRef | undefined;
}

/** Records merge pod secrets found while matching only while an entry holds fewer than this many. */
export const WRITE_RECORD_WHILE_MATCHING_LIMIT = 100;

/** `2025-01-02T03:04:05Z`. */
export function recordTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function hasCredentials(credentials: ImagePullCredentials | undefined): credentials is ImagePullCredentials {
  return (
    credentials !== undefined &&
    (credentials.nodePodsAccessible === true ||
      (credentials.kubernetesSecrets?.length ?? 0) > 0 ||
      (credentials.kubernetesServiceAccounts?.length ?? 0) > 0)
  );
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function compareCoordinates(
  a: { namespace: string; name: string; uid: string },
  b: { namespace: string; name: string; uid: string },
): number {
  return byteOrder(a.namespace, b.namespace) || byteOrder(a.name, b.name) || byteOrder(a.uid, b.uid);
}

const coordinates = (x: { namespace: string; name: string; uid: string }) =>
  JSON.stringify([x.namespace, x.name, x.uid]);

function sameCredentials(a: ImagePullCredentials, b: ImagePullCredentials): boolean {
  return JSON.stringify(normalizeCredentials(a)) === JSON.stringify(normalizeCredentials(b));
}

function normalizeCredentials(c: ImagePullCredentials): ImagePullCredentials {
  return {
    ...((c.kubernetesSecrets?.length ?? 0) > 0 && {
      kubernetesSecrets: c.kubernetesSecrets?.map((s) => ({
        uid: s.uid,
        namespace: s.namespace,
        name: s.name,
        credentialHash: s.credentialHash,
      })),
    }),
    ...((c.kubernetesServiceAccounts?.length ?? 0) > 0 && {
      kubernetesServiceAccounts: c.kubernetesServiceAccounts?.map((s) => ({
        uid: s.uid,
        namespace: s.namespace,
        name: s.name,
      })),
    }),
    ...(c.nodePodsAccessible === true && { nodePodsAccessible: true }),
  };
}

function mergeCredentials(existing: ImagePullCredentials, incoming: ImagePullCredentials): ImagePullCredentials {
  if (existing.nodePodsAccessible === true) return existing;
  if (incoming.nodePodsAccessible === true) return { nodePodsAccessible: true };
  const secrets = new Map<string, ImagePullSecretRef>();
  for (const secret of [...(existing.kubernetesSecrets ?? []), ...(incoming.kubernetesSecrets ?? [])])
    secrets.set(coordinates(secret), secret);
  const accounts = new Map<string, ImagePullServiceAccountRef>();
  for (const account of [...(existing.kubernetesServiceAccounts ?? []), ...(incoming.kubernetesServiceAccounts ?? [])])
    accounts.set(coordinates(account), account);
  return normalizeCredentials({
    kubernetesSecrets: [...secrets.values()].sort(compareCoordinates),
    kubernetesServiceAccounts: [...accounts.values()].sort(compareCoordinates),
  });
}

/**
 * The record after a pull of `repository` with `credentials` (`writePulledRecordIfChanged`):
 * a new record is always written; an existing one changes only when the merge changes it, and
 * only then is `lastUpdatedTime` bumped.
 */
export function mergePulledRecord(
  existing: ImagePulledRecord | undefined,
  imageRef: string,
  repository: string,
  credentials: ImagePullCredentials | undefined,
  now: number,
): { record: ImagePulledRecord; changed: boolean } {
  if (existing === undefined) {
    return {
      record: {
        lastUpdatedTime: recordTime(now),
        imageRef,
        credentialMapping: hasCredentials(credentials) ? { [repository]: normalizeCredentials(credentials) } : {},
      },
      changed: true,
    };
  }
  if (!hasCredentials(credentials)) return { record: existing, changed: false };
  const current = existing.credentialMapping[repository];
  const merged = current === undefined ? normalizeCredentials(credentials) : mergeCredentials(current, credentials);
  if (current !== undefined && sameCredentials(current, merged)) return { record: existing, changed: false };
  return {
    record: {
      ...existing,
      lastUpdatedTime: recordTime(now),
      credentialMapping: { ...existing.credentialMapping, [repository]: merged },
    },
    changed: true,
  };
}

export type RecordCheck =
  | { readonly decision: 'pull'; readonly why: string }
  | { readonly decision: 'use'; readonly why: string; readonly merge?: ImagePullSecretRef };

/**
 * Steps 5–10 of `mustAttemptImagePull`, given the pulled record of a present image: may the pod
 * use it? `getPodCredentials` is called only when the record names secrets or service accounts.
 * A pod secret that matched by hash under other coordinates, or by coordinates with a new hash,
 * is returned as `merge` for the caller to record (while the entry has fewer than 100 secrets).
 */
export async function checkRecordedCredentials(
  record: ImagePulledRecord,
  repository: string,
  getPodCredentials: () => Promise<PodCredentials>,
): Promise<RecordCheck> {
  const entry = record.credentialMapping[repository];
  if (entry === undefined) return { decision: 'pull', why: `no credentials recorded for ${repository}` };
  if (entry.nodePodsAccessible === true) return { decision: 'use', why: 'pulled with node credentials or none' };
  const recordedSecrets = entry.kubernetesSecrets ?? [];
  const recordedAccounts = entry.kubernetesServiceAccounts ?? [];
  if (recordedSecrets.length === 0 && recordedAccounts.length === 0)
    return { decision: 'pull', why: 'the record names no credentials' };
  const pod = await getPodCredentials();
  const mayMerge = recordedSecrets.length < WRITE_RECORD_WHILE_MATCHING_LIMIT;
  for (const podSecret of pod.secrets) {
    for (const recorded of recordedSecrets) {
      const hashesMatch = recorded.credentialHash !== '' && podSecret.credentialHash === recorded.credentialHash;
      const coordinatesMatch =
        podSecret.uid === recorded.uid &&
        podSecret.namespace === recorded.namespace &&
        podSecret.name === recorded.name;
      if (hashesMatch) {
        const why = `secret ${podSecret.namespace}/${podSecret.name} holds the credential it was pulled with`;
        return !coordinatesMatch && mayMerge ? { decision: 'use', why, merge: podSecret } : { decision: 'use', why };
      }
      if (coordinatesMatch && mayMerge) {
        return {
          decision: 'use',
          why: `secret ${podSecret.namespace}/${podSecret.name} was used to pull it`,
          merge: podSecret,
        };
      }
    }
  }
  const account = pod.serviceAccount;
  if (
    account !== undefined &&
    recordedAccounts.some((a) => a.uid === account.uid && a.namespace === account.namespace && a.name === account.name)
  ) {
    return { decision: 'use', why: `service account ${account.namespace}/${account.name} was used to pull it` };
  }
  return { decision: 'pull', why: "none of the pod's credentials was used to pull it" };
}
