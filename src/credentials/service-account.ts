/**
 * Service-account token mode for credential provider plugins (KEP-4412, beta and on since
 * Kubernetes 1.34; kubernetes pkg/credentialprovider/plugin/plugin.go): a plugin whose
 * configuration has `tokenAttributes` receives, for the pod being pulled for, a token of the
 * pod's service account for the configured audience and the service account's annotations the
 * configuration selects. The kubelet gets both from the apiserver; kimg gets them from the
 * caller (`ServiceAccountAccess`), so a library user plugs in a TokenRequest client and the CLI
 * plugs in token files.
 */

/** The pod a lookup is for. Plain plugins ignore it; service-account mode needs it. */
export interface PluginPodContext {
  readonly namespace: string;
  readonly name?: string;
  readonly uid?: string;
  /** `spec.serviceAccountName`; empty or absent means the pod names none. */
  readonly serviceAccountName?: string;
}

/** What the kubelet reads of a ServiceAccount object. */
export interface ServiceAccountInfo {
  readonly uid: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A TokenRequest as the kubelet makes it: for the audience, bound to the pod. */
export interface ServiceAccountTokenRequest {
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly audience: string;
  readonly podName: string;
  readonly podUid: string;
}

/**
 * Where service-account-mode plugins get what the kubelet asks the apiserver for. Either call
 * may throw or (for the account) answer undefined when it does not exist: the plugin is then
 * not run for that pod, as the kubelet skips it.
 */
export interface ServiceAccountAccess {
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccountInfo | undefined>;
  getServiceAccountToken(request: ServiceAccountTokenRequest): Promise<string>;
}

/** The service account a plugin run was made for: it is part of the cache and single-flight keys. */
export interface ServiceAccountScope {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** The selected annotations (required ones, and optional ones present). */
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * An unambiguous key for a scope: namespace, name, UID and the annotations sorted by key, as
 * upstream's length-prefixed `generateServiceAccountCacheKey` (JSON arrays are unambiguous too).
 */
export function serviceAccountCacheKey(scope: ServiceAccountScope): string {
  const annotations = Object.keys(scope.annotations)
    .sort()
    .map((key) => [key, scope.annotations[key] ?? '']);
  return JSON.stringify([scope.namespace, scope.name, scope.uid, annotations]);
}

/**
 * The annotations a plugin receives: every required key (a missing one means the plugin is not
 * run: `undefined`), and the optional keys the account has.
 */
export function selectAnnotations(
  annotations: Readonly<Record<string, string>>,
  required: readonly string[],
  optional: readonly string[],
): Record<string, string> | undefined {
  const selected: Record<string, string> = {};
  for (const key of required) {
    if (!Object.hasOwn(annotations, key)) return undefined;
    selected[key] = annotations[key] ?? '';
  }
  for (const key of optional) if (Object.hasOwn(annotations, key)) selected[key] = annotations[key] ?? '';
  return selected;
}
