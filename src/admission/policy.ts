/**
 * The validating image policy (docs/semantics.md admission §3.3, §4.15), stricter than the Gatekeeper library where it
 * is loose: tags are read from the parsed reference (a registry port is not a tag, `x:latest@D`
 * is judged by its digest only when configured so), digests must parse to count, and allowed
 * repositories match the normalized repository at path boundaries. Pure; never contacts a
 * registry.
 */
import { tryParseNormalizedNamed } from '../reference/index.ts';
import { DEFAULT_POLICY, parsePolicyConfig, type PolicyConfig } from './config.ts';
import { findImages, type FindImagesOptions, type ImageSlot } from './pod-specs.ts';

export type PolicyRule =
  'disallowed-tag' | 'implicit-latest' | 'missing-digest' | 'invalid-reference' | 'registry-not-allowed';

export interface PolicyViolation {
  readonly rule: PolicyRule;
  readonly message: string;
}

export interface PolicyEvaluation {
  /** No violation, or `enforcement: warn`. */
  readonly allowed: boolean;
  readonly violations: readonly PolicyViolation[];
}

/** One violation in an object (docs/semantics.md admission §4.15): field path, rule, image as written, container (or volume) name. */
export interface ViolationRecord {
  readonly path: string;
  readonly rule: PolicyRule;
  readonly image: string;
  readonly container: string;
}

function matchesExempt(image: string, entries: readonly string[]): boolean {
  for (const entry of entries) {
    if (entry.endsWith('*') ? image.startsWith(entry.slice(0, -1)) : image === entry) return true;
  }
  return false;
}

/** `<repository>` matches by equality; `<prefix>/*` matches repositories below `<prefix>/`, any depth. */
export function repositoryAllowed(repository: string, entries: readonly string[]): boolean {
  for (const entry of entries) {
    if (entry.endsWith('/*') ? repository.startsWith(entry.slice(0, -1)) : repository === entry) return true;
  }
  return false;
}

/**
 * The validating image policy: `evaluate(image)` returns whether one image is allowed and
 * which rules it breaks (disallowed or implicit `latest` tags, a missing digest, a repository
 * outside the allowed list). Pure and synchronous; never contacts a registry.
 */
export class ImagePolicy {
  readonly config: PolicyConfig;

  /** Takes a parsed policy, or any object in the vocabulary of docs/semantics.md admission §3.3 (checked: AdmissionConfigError). */
  constructor(config: Partial<PolicyConfig> | PolicyConfig = DEFAULT_POLICY) {
    this.config = parsePolicyConfig({ ...DEFAULT_POLICY, ...config });
  }

  /** True when the policy checks nothing at all. */
  get isEmpty(): boolean {
    const c = this.config;
    return (
      c.disallowedTags.length === 0 &&
      !c.requireDigest &&
      !c.digestMustBeValid &&
      !c.rejectInvalidReferences &&
      c.allowedRepositories.length === 0
    );
  }

  /** The rules an image (as written) breaks. */
  evaluate(image: string): PolicyEvaluation {
    const violations = this.violations(image);
    return { allowed: violations.length === 0 || this.config.enforcement === 'warn', violations };
  }

  private violations(image: string): PolicyViolation[] {
    const c = this.config;
    if (matchesExempt(image, c.exemptImages)) return [];
    const parsed = tryParseNormalizedNamed(image);
    if (!parsed.ok) {
      if (!c.digestMustBeValid && !c.rejectInvalidReferences) return [];
      const why = image.trim() === '' ? 'the image is empty' : parsed.error.message;
      return [{ rule: 'invalid-reference', message: `invalid image reference: ${why}` }];
    }
    const named = parsed.value;
    const out: PolicyViolation[] = [];
    const hasDigest = named.digest !== undefined;
    if (named.tag !== undefined) {
      if (c.disallowedTags.includes(named.tag) && !(hasDigest && c.digestSatisfiesTagRules)) {
        out.push({ rule: 'disallowed-tag', message: `the tag "${named.tag}" is not allowed` });
      }
    } else if (!hasDigest && c.implicitLatestIsLatest && c.disallowedTags.includes('latest')) {
      out.push({ rule: 'implicit-latest', message: 'no tag or digest: the implicit "latest" tag is not allowed' });
    }
    if (c.requireDigest && !hasDigest)
      out.push({ rule: 'missing-digest', message: 'missing digest: the image must be pinned (@sha256:…)' });
    if (c.allowedRepositories.length > 0 && !repositoryAllowed(named.name, c.allowedRepositories)) {
      out.push({
        rule: 'registry-not-allowed',
        message: `the repository ${named.name} is not in the allowed repositories`,
      });
    }
    return out;
  }

  /** Every violation in an object's image slots, in slot order. */
  validate(object: unknown, options: FindImagesOptions = {}): ViolationRecord[] {
    return this.validateSlots(findImages(object, options));
  }

  validateSlots(slots: readonly ImageSlot[]): ViolationRecord[] {
    const out: ViolationRecord[] = [];
    for (const slot of slots) {
      for (const v of this.violations(slot.image))
        out.push({ path: slot.path, rule: v.rule, image: slot.image, container: slot.name ?? '' });
    }
    return out;
  }
}

/** The library form of docs/semantics.md admission §4.15: every violation of `policy` in `object`. */
export function validate(
  object: unknown,
  policy: ImagePolicy | Partial<PolicyConfig>,
  options: FindImagesOptions = {},
): ViolationRecord[] {
  return (policy instanceof ImagePolicy ? policy : new ImagePolicy(policy)).validate(object, options);
}
