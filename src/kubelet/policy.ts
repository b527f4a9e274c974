import { tryParseNormalizedNamed } from '../reference/index.ts';

export const PullPolicy = {
  Always: 'Always',
  IfNotPresent: 'IfNotPresent',
  Never: 'Never',
} as const;

export type PullPolicy = (typeof PullPolicy)[keyof typeof PullPolicy];

export function isPullPolicy(value: string): value is PullPolicy {
  return value === 'Always' || value === 'IfNotPresent' || value === 'Never';
}

/**
 * The `imagePullPolicy` the API server gives a container that sets none
 * (`SetDefaults_Container`): `Always` when the tag is `latest`, written or implied, else
 * `IfNotPresent`. An explicit policy is kept. Quirks kept on purpose, as Kubernetes has them:
 * a name that does not parse defaults to `IfNotPresent`; `:latest` survives a digest
 * (`busybox:latest@sha256:…` is `Always`); the comparison is case-sensitive.
 */
export function defaultPullPolicy(image: string, policy?: PullPolicy | ''): PullPolicy {
  if (policy) return policy;
  const parsed = tryParseNormalizedNamed(image);
  if (!parsed.ok) return PullPolicy.IfNotPresent;
  const { tag, digest } = parsed.value;
  const effectiveTag = tag ?? (digest === undefined ? 'latest' : '');
  return effectiveTag === 'latest' ? PullPolicy.Always : PullPolicy.IfNotPresent;
}
