/**
 * KEP-2535's verification policies (docs/semantics.md kubelet §10): when an image already on the node must be
 * re-verified against the pod's credentials, and the `preloadedImagesVerificationAllowlist`.
 */
import { tryParseNormalizedNamed } from '../reference/index.ts';

export const VerificationPolicy = {
  NeverVerify: 'NeverVerify',
  NeverVerifyPreloadedImages: 'NeverVerifyPreloadedImages',
  NeverVerifyAllowlistedImages: 'NeverVerifyAllowlistedImages',
  AlwaysVerify: 'AlwaysVerify',
} as const;
export type VerificationPolicy = (typeof VerificationPolicy)[keyof typeof VerificationPolicy];

export const DEFAULT_VERIFICATION_POLICY: VerificationPolicy = VerificationPolicy.NeverVerifyPreloadedImages;

export function isVerificationPolicy(value: unknown): value is VerificationPolicy {
  return typeof value === 'string' && Object.values(VerificationPolicy).includes(value as VerificationPolicy);
}

/** A validated allowlist: exact repositories and `<prefix>/` prefixes (from `<prefix>/*`). */
export interface Allowlist {
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** The problems of each entry, in order; empty when every entry is acceptable. */
export function allowlistProblems(entries: readonly string[]): string[] {
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    const problem = entryProblem(entry);
    if (problem !== undefined)
      problems.push(`preloadedImagesVerificationAllowlist[${i}] ${JSON.stringify(entry)}: ${problem}`);
  });
  return problems;
}

function entryProblem(entry: string): string | undefined {
  if (entry === '') return 'must not be empty';
  if (entry.trim() !== entry) return 'must not have surrounding whitespace';
  const star = entry.indexOf('*');
  if (star !== -1) {
    if (entry === '*' || entry === '/*') return 'a wildcard needs a prefix: write <registry>/<path>/*';
    if (star !== entry.length - 1 || !entry.endsWith('/*')) return 'the only wildcard allowed is one final "/*"';
    return undefined;
  }
  const parsed = tryParseNormalizedNamed(entry);
  if (!parsed.ok) return `does not parse as an image repository (${parsed.error.reason})`;
  const { domain, path, tag, digest } = parsed.value;
  const normalized = `${domain}/${path}`;
  if (tag !== undefined || digest !== undefined) return 'must not have a tag or digest';
  if (normalized !== entry) return `must be written as the normalized repository ${JSON.stringify(normalized)}`;
  return undefined;
}

/** Builds the allowlist; throws a RangeError listing every problem (the kubelet refuses to start). */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  const problems = allowlistProblems(entries);
  if (problems.length > 0) throw new RangeError(problems.join('; '));
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  for (const entry of entries) {
    if (entry.endsWith('/*')) prefixes.add(entry.slice(0, -1));
    else exact.add(entry);
  }
  return { exact, prefixes: [...prefixes] };
}

/** The pod image (normalized, tag and digest stripped) is an exact entry or under a prefix. */
export function isAllowlisted(allowlist: Allowlist, image: string): boolean {
  const parsed = tryParseNormalizedNamed(image);
  if (!parsed.ok) return false;
  const repository = `${parsed.value.domain}/${parsed.value.path}`;
  return allowlist.exact.has(repository) || allowlist.prefixes.some((prefix) => repository.startsWith(prefix));
}

/** `RequireCredentialVerificationForImage`: must the pod's access to this present image be checked? */
export function requiresVerification(
  policy: VerificationPolicy,
  allowlist: Allowlist,
  image: string,
  pulledByKubelet: boolean,
): boolean {
  switch (policy) {
    case VerificationPolicy.NeverVerify:
      return false;
    case VerificationPolicy.NeverVerifyPreloadedImages:
      return pulledByKubelet;
    case VerificationPolicy.NeverVerifyAllowlistedImages:
      return !isAllowlisted(allowlist, image);
    case VerificationPolicy.AlwaysVerify:
      return true;
  }
}
