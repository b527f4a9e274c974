/**
 * The kubelet configuration fields that govern images (docs/semantics.md kubelet §7, §10, §11), with the
 * kubelet's defaults and validation messages. Read from a `KubeletConfiguration` document and/or
 * flag values; fields this module does not use are ignored.
 */
import { parseGoDuration } from '../credentials/index.ts';
import { KimgError } from '../errors/index.ts';
import {
  DEFAULT_VERIFICATION_POLICY,
  allowlistProblems,
  isVerificationPolicy,
  type VerificationPolicy,
} from './verification-policy.ts';

export interface KubeletImageConfig {
  readonly serializeImagePulls: boolean;
  /** Undefined = unlimited (in parallel mode). */
  readonly maxParallelImagePulls: number | undefined;
  readonly registryPullQPS: number;
  readonly registryBurst: number;
  readonly imageGCHighThresholdPercent: number;
  readonly imageGCLowThresholdPercent: number;
  readonly imageMinimumGCAgeMs: number;
  /** 0 = off. */
  readonly imageMaximumGCAgeMs: number;
  readonly imagePullCredentialsVerificationPolicy: VerificationPolicy;
  readonly preloadedImagesVerificationAllowlist: readonly string[];
  /** Feature gate `KubeletEnsureSecretPulledImages` (beta, on by default since v1.35). */
  readonly ensureSecretPulledImages: boolean;
}

/** The fields as written (config file or flags), before defaulting. Durations are Go strings. */
export interface KubeletImageConfigInput {
  readonly serializeImagePulls?: boolean;
  readonly maxParallelImagePulls?: number;
  readonly registryPullQPS?: number;
  readonly registryBurst?: number;
  readonly imageGCHighThresholdPercent?: number;
  readonly imageGCLowThresholdPercent?: number;
  readonly imageMinimumGCAge?: string;
  readonly imageMaximumGCAge?: string;
  readonly imagePullCredentialsVerificationPolicy?: string;
  readonly preloadedImagesVerificationAllowlist?: readonly string[];
  readonly featureGates?: Readonly<Record<string, boolean>>;
}

export const KUBELET_CONFIG_API_VERSION = 'kubelet.config.k8s.io/v1beta1';
export const ENSURE_SECRET_PULLED_IMAGES_GATE = 'KubeletEnsureSecretPulledImages';

export const DEFAULT_KUBELET_IMAGE_CONFIG: KubeletImageConfig = {
  serializeImagePulls: true,
  maxParallelImagePulls: undefined,
  registryPullQPS: 5,
  registryBurst: 10,
  imageGCHighThresholdPercent: 85,
  imageGCLowThresholdPercent: 80,
  imageMinimumGCAgeMs: 120_000,
  imageMaximumGCAgeMs: 0,
  imagePullCredentialsVerificationPolicy: DEFAULT_VERIFICATION_POLICY,
  preloadedImagesVerificationAllowlist: [],
  ensureSecretPulledImages: true,
};

export class KubeletConfigError extends KimgError<'kubelet.ErrInvalidConfiguration'> {
  readonly problems: readonly string[];
  readonly source: string | undefined;

  constructor(problems: readonly string[], source?: string) {
    super(
      'kubelet.ErrInvalidConfiguration',
      `invalid kubelet configuration${source === undefined ? '' : ` ${source}`}: ${problems.join('; ')}`,
    );
    this.problems = problems;
    this.source = source;
  }
}

const FIELDS: Record<
  keyof Omit<KubeletImageConfigInput, 'featureGates'>,
  'boolean' | 'number' | 'string' | 'string[]'
> = {
  serializeImagePulls: 'boolean',
  maxParallelImagePulls: 'number',
  registryPullQPS: 'number',
  registryBurst: 'number',
  imageGCHighThresholdPercent: 'number',
  imageGCLowThresholdPercent: 'number',
  imageMinimumGCAge: 'string',
  imageMaximumGCAge: 'string',
  imagePullCredentialsVerificationPolicy: 'string',
  preloadedImagesVerificationAllowlist: 'string[]',
};

/** The image fields of a `KubeletConfiguration` document (parsed YAML/JSON); wrong types are listed. */
export function readKubeletConfigDocument(document: unknown, source?: string): KubeletImageConfigInput {
  const problems: string[] = [];
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new KubeletConfigError(['expected a KubeletConfiguration object'], source);
  }
  const doc = document as Record<string, unknown>;
  if (doc['kind'] !== undefined && doc['kind'] !== 'KubeletConfiguration')
    problems.push(`kind: must be "KubeletConfiguration", found ${JSON.stringify(doc['kind'])}`);
  if (doc['apiVersion'] !== undefined && doc['apiVersion'] !== KUBELET_CONFIG_API_VERSION) {
    problems.push(`apiVersion: must be "${KUBELET_CONFIG_API_VERSION}", found ${JSON.stringify(doc['apiVersion'])}`);
  }
  const input: Record<string, unknown> = {};
  for (const [field, type] of Object.entries(FIELDS)) {
    const value = doc[field];
    if (value === undefined || value === null) continue;
    const ok =
      type === 'string[]'
        ? Array.isArray(value) && value.every((v) => typeof v === 'string')
        : type === 'number'
          ? typeof value === 'number' && Number.isFinite(value)
          : typeof value === type;
    if (!ok) problems.push(`${field}: expected ${type === 'string[]' ? 'a list of strings' : `a ${type}`}`);
    else input[field] = value;
  }
  const gates = doc['featureGates'];
  if (gates !== undefined && gates !== null) {
    if (
      typeof gates !== 'object' ||
      Array.isArray(gates) ||
      !Object.values(gates).every((v) => typeof v === 'boolean')
    ) {
      problems.push('featureGates: expected a map of gate names to true/false');
    } else {
      input['featureGates'] = gates;
    }
  }
  if (problems.length > 0) throw new KubeletConfigError(problems, source);
  return input as KubeletImageConfigInput;
}

/** `--feature-gates A=true,B=false`. */
export function parseFeatureGates(text: string): Record<string, boolean> {
  const gates: Record<string, boolean> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const [name, value] = item.split('=', 2).map((s) => s.trim());
    if (name === undefined || name === '' || (value !== 'true' && value !== 'false')) {
      throw new KubeletConfigError([`--feature-gates: ${JSON.stringify(item)} is not NAME=true|false`]);
    }
    gates[name] = value === 'true';
  }
  return gates;
}

function durationMs(field: string, text: string | undefined, fallback: number, problems: string[]): number {
  if (text === undefined) return fallback;
  const ns = parseGoDuration(text);
  if (ns === undefined) {
    problems.push(`${field}: ${JSON.stringify(text)} is not a duration (e.g. 2m0s)`);
    return fallback;
  }
  return Number(ns / 1_000_000n);
}

/**
 * Layers inputs (later wins: config file, then flags, as the kubelet does), applies the
 * kubelet's defaults and validates. Throws KubeletConfigError listing every problem.
 */
export function resolveKubeletImageConfig(...inputs: readonly KubeletImageConfigInput[]): KubeletImageConfig {
  const merged: Record<string, unknown> = {};
  const gates: Record<string, boolean> = {};
  for (const input of inputs) {
    for (const [key, value] of Object.entries(input)) {
      if (value === undefined) continue;
      if (key === 'featureGates') Object.assign(gates, value);
      else merged[key] = value;
    }
  }
  const m = merged as KubeletImageConfigInput;
  const problems: string[] = [];
  const d = DEFAULT_KUBELET_IMAGE_CONFIG;
  const maxParallel = m.maxParallelImagePulls;
  const serialize = m.serializeImagePulls ?? (maxParallel === undefined || maxParallel < 2);
  const high = m.imageGCHighThresholdPercent ?? d.imageGCHighThresholdPercent;
  const low = m.imageGCLowThresholdPercent ?? d.imageGCLowThresholdPercent;
  const minAge = durationMs('imageMinimumGCAge', m.imageMinimumGCAge, d.imageMinimumGCAgeMs, problems);
  const maxAge = durationMs('imageMaximumGCAge', m.imageMaximumGCAge, d.imageMaximumGCAgeMs, problems);
  const qps = m.registryPullQPS ?? d.registryPullQPS;
  const burst = m.registryBurst ?? d.registryBurst;
  const policy = m.imagePullCredentialsVerificationPolicy ?? d.imagePullCredentialsVerificationPolicy;
  const allowlist = m.preloadedImagesVerificationAllowlist ?? [];

  if (high < 0 || high > 100)
    problems.push(
      `imageGCHighThresholdPercent (--image-gc-high-threshold) ${high} must be between 0 and 100, inclusive`,
    );
  if (low < 0 || low > 100)
    problems.push(`imageGCLowThresholdPercent (--image-gc-low-threshold) ${low} must be between 0 and 100, inclusive`);
  if (low >= high) {
    problems.push(
      `imageGCLowThresholdPercent (--image-gc-low-threshold) ${low} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) ${high}`,
    );
  }
  if (maxAge < 0) problems.push(`imageMaximumGCAge ${m.imageMaximumGCAge} must not be negative`);
  if (maxAge > 0 && maxAge <= minAge)
    problems.push(
      `imageMaximumGCAge ${m.imageMaximumGCAge} must be greater than imageMinimumGCAge ${m.imageMinimumGCAge ?? '2m0s'}`,
    );
  if (maxParallel !== undefined && maxParallel < 1)
    problems.push(`maxParallelImagePulls ${maxParallel} must be a positive number`);
  if (maxParallel !== undefined && !Number.isInteger(maxParallel))
    problems.push(`maxParallelImagePulls ${maxParallel} must be a whole number`);
  if (serialize && maxParallel !== undefined && maxParallel > 1) {
    problems.push(
      'maxParallelImagePulls cannot be larger than 1 unless SerializeImagePulls (--serialize-image-pulls) is set to false',
    );
  }
  if (qps < 0) problems.push(`registryPullQPS (--registry-qps) ${qps} must not be a negative number`);
  if (burst < 0) problems.push(`registryBurst (--registry-burst) ${burst} must not be a negative number`);
  if (!Number.isInteger(burst)) problems.push(`registryBurst (--registry-burst) ${burst} must be a whole number`);
  if (!isVerificationPolicy(policy)) {
    problems.push(
      `imagePullCredentialsVerificationPolicy: unsupported value ${JSON.stringify(policy)} (NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages, AlwaysVerify)`,
    );
  } else if (policy !== 'NeverVerifyAllowlistedImages' && allowlist.length > 0) {
    problems.push(
      'preloadedImagesVerificationAllowlist can only be set with imagePullCredentialsVerificationPolicy "NeverVerifyAllowlistedImages"',
    );
  } else {
    problems.push(...allowlistProblems(allowlist));
  }
  if (problems.length > 0) throw new KubeletConfigError(problems);
  return {
    serializeImagePulls: serialize,
    maxParallelImagePulls: maxParallel,
    registryPullQPS: qps,
    registryBurst: burst,
    imageGCHighThresholdPercent: high,
    imageGCLowThresholdPercent: low,
    imageMinimumGCAgeMs: minAge,
    imageMaximumGCAgeMs: maxAge,
    imagePullCredentialsVerificationPolicy: policy as VerificationPolicy,
    preloadedImagesVerificationAllowlist: [...new Set(allowlist)],
    ensureSecretPulledImages: gates[ENSURE_SECRET_PULLED_IMAGES_GATE] ?? d.ensureSecretPulledImages,
  };
}
