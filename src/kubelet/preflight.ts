/**
 * `kimg ensure --dry-run`: what the kubelet would do for each container of a pod, and which
 * failure it would hit, found by resolving every image with the credentials the kubelet would
 * use (manifests only, no layers), with the waiting reason and message it would show and a fix.
 */
import type { KeyringMatch } from '../credentials/index.ts';
import { isKimgError } from '../errors/index.ts';
import { tryParseNormalizedNamed } from '../reference/index.ts';
import { lookupImageCredentials, podCredentialsOf, type NodeCredentialSources } from './image-credentials.ts';
import { WaitingReason, evalPullError, messages } from './events.ts';
import { aggregateMessages } from './go-format.ts';
import { decidePull } from './decision.ts';
import { parseImageName } from './image-name.ts';
import { errorText, type ImageResolver, type ImageService, type ResolvedImage } from './image-service.ts';
import { containerPullPolicy, type ContainerImageSpec, type PodImageSpec } from './pod.ts';
import type { PullPolicy } from './policy.ts';
import type { ImagePullManager } from './pull-manager.ts';

export type PreflightProblem =
  | 'invalid-name'
  | 'inspect-failed'
  | 'never-absent'
  | 'never-not-verified'
  | 'secret-invalid'
  | 'no-credentials'
  | 'missing-secret'
  | 'credentials-refused'
  | 'unknown-tag'
  | 'unknown-repository'
  | 'missing-platform'
  | 'registry-unavailable'
  | 'pull-failed';

export interface PreflightAttempt {
  /** `secret default/regcred`, `node config /root/.docker/config.json`, or `anonymous`. */
  readonly credential: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly code?: string;
}

export interface PreflightContainer {
  readonly name: string;
  readonly init: boolean;
  readonly image: string;
  readonly pullPolicy: PullPolicy;
  /** What the kubelet would do: use the stored image, pull, or stop with an error. */
  readonly action: 'use-local' | 'pull' | 'fail';
  /** The waiting reason the container would show (undefined when its image would be ready). */
  readonly reason?: string;
  /** The kubelet's message: the waiting message on failure, else the Pulled event text. */
  readonly message: string;
  readonly problem?: PreflightProblem;
  readonly fix?: string;
  readonly imageRef?: string;
  readonly resolved?: ResolvedImage & { readonly credential: string };
  readonly attempts: readonly PreflightAttempt[];
  readonly notes: readonly string[];
}

export interface PreflightReport {
  readonly pod: { readonly namespace: string; readonly name: string };
  readonly missingSecrets: readonly string[];
  readonly containers: readonly PreflightContainer[];
  readonly ok: boolean;
}

export interface PreflightOptions {
  readonly imageService: ImageService & ImageResolver;
  readonly credentials?: NodeCredentialSources;
  /** KEP-2535 verifier, asked without recording anything; omit when the gate is off. */
  readonly verifier?: ImagePullManager;
  readonly ensureSecretPulledImages?: boolean;
  /** The node's platform, `os/arch[/variant]`. */
  readonly platform: string;
  readonly getSecret: (name: string) => unknown;
  readonly signal?: AbortSignal;
}

function describeMatch(match: KeyringMatch | undefined): string {
  return match === undefined ? 'anonymous' : match.sourceLabel;
}

/** A lowercase spelling that parses, to suggest for `Nginx`-style names. */
function suggestName(image: string): string | undefined {
  const lower = image.toLowerCase().trim();
  if (lower === image) return undefined;
  return tryParseNormalizedNamed(lower).ok ? lower : undefined;
}

/**
 * What the kubelet would do for each container of `pod` (the report behind
 * `kimg ensure --dry-run`): the decision, the credentials it would try and the failure it would
 * hit, found by resolving each image (manifests only, no layers), with the waiting reason,
 * message and a suggested fix. It changes nothing on the node and records nothing.
 */
export async function preflightPod(pod: PodImageSpec, options: PreflightOptions): Promise<PreflightReport> {
  const secrets: unknown[] = [];
  const missing: string[] = [];
  for (const name of pod.imagePullSecrets) {
    if (name === '') continue;
    const secret = options.getSecret(name);
    if (secret === undefined) missing.push(name);
    else secrets.push(secret);
  }
  const containers: PreflightContainer[] = [];
  for (const container of pod.initContainers)
    containers.push(await preflightContainer(pod, container, true, secrets, missing, options));
  for (const container of pod.containers)
    containers.push(await preflightContainer(pod, container, false, secrets, missing, options));
  return {
    pod: { namespace: pod.namespace, name: pod.name },
    missingSecrets: missing,
    containers,
    ok: containers.every((c) => c.action !== 'fail'),
  };
}

async function preflightContainer(
  pod: PodImageSpec,
  container: ContainerImageSpec,
  init: boolean,
  secrets: readonly unknown[],
  missingSecrets: readonly string[],
  options: PreflightOptions,
): Promise<PreflightContainer> {
  const img = container.image;
  const pullPolicy = containerPullPolicy(container);
  const notes: string[] = [];
  const base = { name: container.name, init, image: img, pullPolicy };
  if (container.imagePullPolicy === undefined || container.imagePullPolicy === '')
    notes.push(`imagePullPolicy defaults to ${pullPolicy} for this image`);
  const fail = (
    reason: string,
    message: string,
    problem: PreflightProblem,
    fix: string,
    attempts: PreflightAttempt[] = [],
  ): PreflightContainer => ({
    ...base,
    action: 'fail',
    reason,
    message,
    problem,
    fix,
    attempts,
    notes,
  });

  const parsed = parseImageName(img);
  const repository = parsed.ok ? parsed.value.repository : img;
  const registry = parsed.ok ? parsed.value.domain : '';
  let lookup: Promise<KeyringMatch[]> | undefined;
  const credentials = () => (lookup ??= lookupImageCredentials(repository, secrets, options.credentials ?? {}, pod));
  const secretError = (error: unknown) =>
    fail(
      errorText(error),
      errorText(error),
      'secret-invalid',
      'fix the pull secret: its data must be a valid docker config (kubectl create secret docker-registry …)',
    );

  // The kubelet's own decision (see decision.ts), asked without recording anything.
  const verifier = options.verifier;
  let why = '';
  const decision = await decidePull({
    image: img,
    policy: pullPolicy,
    ensureSecretPulledImages: options.ensureSecretPulledImages !== false && verifier !== undefined,
    getImageRef: (image) => options.imageService.getImageRef(image),
    mustAttempt: async (imageRef) => {
      const explanation = await verifier!.explainMustAttemptImagePull(
        img,
        imageRef,
        async () => podCredentialsOf(await credentials()),
        { write: false },
      );
      why = explanation.why;
      return explanation.decision;
    },
  });

  let imageRef = '';
  switch (decision.kind) {
    case 'invalid-name': {
      const suggestion = suggestName(img);
      return fail(
        WaitingReason.InvalidImageName,
        messages.invalidImageName(img, decision.error),
        'invalid-name',
        `write the image as [registry[:port]/]repository[:tag][@digest], repository in lowercase${suggestion === undefined ? '' : `, e.g. ${JSON.stringify(suggestion)}`}`,
      );
    }
    case 'inspect-failed':
      return fail(
        WaitingReason.ImageInspectError,
        messages.inspectFailed(errorText(decision.error)),
        'inspect-failed',
        "check the node's image store (kimg fsck)",
      );
    case 'never-pull':
      if (decision.present) {
        notes.push(`the image is present but the pod must prove access to it (KEP-2535, ${verifier!.policy}): ${why}`);
        return fail(
          WaitingReason.ErrImageNeverPull,
          messages.neverPull(img),
          'never-not-verified',
          "list the imagePullSecret the image was pulled with, or set imagePullPolicy: IfNotPresent so the kubelet re-pulls with this pod's credentials",
        );
      }
      return fail(
        WaitingReason.ErrImageNeverPull,
        messages.neverPull(img),
        'never-absent',
        `load the image onto the node first (kimg pull ${img}), or set imagePullPolicy: IfNotPresent`,
      );
    case 'verify-failed':
      return secretError(decision.error);
    case 'use-local':
      if (decision.verified) notes.push(`credential check (KEP-2535): ${why}`);
      return {
        ...base,
        action: 'use-local',
        message: decision.verified ? messages.alreadyPresentAndAccessible(img) : messages.alreadyPresent(img),
        imageRef: decision.imageRef,
        attempts: [],
        notes,
      };
    case 'pull':
      if (decision.presentAs !== undefined) {
        imageRef = decision.presentAs;
        notes.push(`the image is present but the pod must prove access to it (KEP-2535, ${verifier!.policy}): ${why}`);
      } else if (pullPolicy === 'Always') {
        // Not part of the decision (the kubelet does not look), but worth saying.
        imageRef = await options.imageService.getImageRef(decision.image).catch(() => '');
        if (imageRef !== '')
          notes.push('Always pulls on every start; the image is stored, so only a changed tag would transfer layers');
      }
  }
  const image = decision.image;

  let matches: KeyringMatch[];
  try {
    matches = await credentials();
  } catch (error) {
    return secretError(error);
  }
  const attempts: PreflightAttempt[] = [];
  const tries: (KeyringMatch | undefined)[] = matches.length === 0 ? [undefined] : matches;
  const errors: unknown[] = [];
  for (const match of tries) {
    try {
      const resolved = await options.imageService.resolveImage(image, match?.credential, {
        platform: options.platform,
        ...(options.signal !== undefined && { signal: options.signal }),
      });
      attempts.push({ credential: describeMatch(match), ok: true });
      if (resolved.platformDigest === undefined) {
        notes.push(
          `the image is built for ${resolved.platforms.join(', ') || 'an unknown platform'} only, not ${options.platform}: containerd and CRI-O refuse it (kimg pulls it)`,
        );
      }
      if (imageRef !== '' && resolved.digest === imageRef)
        notes.push('the stored image is up to date: the pull would transfer nothing');
      return {
        ...base,
        action: 'pull',
        message: messages.pulling(img),
        resolved: { ...resolved, credential: describeMatch(match) },
        ...(imageRef !== '' && { imageRef }),
        attempts,
        notes,
      };
    } catch (error) {
      errors.push(error);
      attempts.push({
        credential: describeMatch(match),
        ok: false,
        error: errorText(error),
        ...(isKimgError(error) && { code: error.code }),
      });
    }
  }
  const raw = aggregateMessages(errors.map(errorText));
  const { reason, message } = evalPullError(img, raw);
  const codes = new Set(errors.map((e) => (isKimgError(e) ? e.code : '')));
  const diagnosis = diagnose(codes, {
    registry,
    repository,
    tag: parsed.ok ? parsed.value.tag : '',
    matches,
    missingSecrets,
    pod,
    platform: options.platform,
    errors,
  });
  return fail(reason, message, diagnosis.problem, diagnosis.fix, attempts);
}

function diagnose(
  codes: ReadonlySet<string>,
  context: {
    registry: string;
    repository: string;
    tag: string;
    matches: readonly KeyringMatch[];
    missingSecrets: readonly string[];
    pod: PodImageSpec;
    platform: string;
    errors: readonly unknown[];
  },
): { problem: PreflightProblem; fix: string } {
  const { registry, repository, matches, missingSecrets, pod } = context;
  if (codes.has('ErrPlatformNotFound')) {
    const available = context.errors
      .map((e) => (e as { available?: readonly string[] }).available)
      .find((a) => a !== undefined);
    return {
      problem: 'missing-platform',
      fix: `the image has no ${context.platform} variant${available === undefined ? '' : ` (it offers ${available.join(', ')})`}: use a multi-platform image, or schedule the pod on a matching node (nodeSelector kubernetes.io/arch)`,
    };
  }
  if (codes.has('ErrUnauthorized') || codes.has('ErrDenied')) {
    if (matches.length > 0) {
      const used = [...new Set(matches.map((m) => m.sourceLabel))].join(', ');
      return {
        problem: 'credentials-refused',
        fix: `${registry} refused the credentials from ${used}: update the secret with a valid username and password or token for ${registry}`,
      };
    }
    if (missingSecrets.length > 0) {
      return {
        problem: 'missing-secret',
        fix: `the pod lists imagePullSecrets ${missingSecrets.join(', ')} but no such Secret exists in namespace ${pod.namespace}: create it (kubectl create secret docker-registry ${missingSecrets[0]} --docker-server=${registry} --docker-username=… --docker-password=… -n ${pod.namespace})`,
      };
    }
    const listed = pod.imagePullSecrets.filter((n) => n !== '');
    if (listed.length > 0) {
      return {
        problem: 'no-credentials',
        fix: `none of the pod's imagePullSecrets (${listed.join(', ')}) has an entry for ${registry}: add a ${registry} entry to one of them`,
      };
    }
    return {
      problem: 'no-credentials',
      fix: `${registry} needs credentials and the pod has no imagePullSecrets: kubectl create secret docker-registry regcred --docker-server=${registry} --docker-username=… --docker-password=… -n ${pod.namespace}, then add "imagePullSecrets: [{name: regcred}]" to the pod spec`,
    };
  }
  if (codes.has('ErrNameUnknown'))
    return {
      problem: 'unknown-repository',
      fix: `${repository} does not exist on ${registry}: check the repository name`,
    };
  if (codes.has('ErrManifestUnknown')) {
    return {
      problem: 'unknown-tag',
      fix: `${repository} has no ${context.tag === '' ? 'such digest' : `tag ${JSON.stringify(context.tag)}`} (or the repository does not exist): check the tag (kimg resolve ${repository}:<tag>)`,
    };
  }
  if (codes.has('ErrConnection') || codes.has('ErrRegistryUnavailable') || codes.has('ErrTLS')) {
    return {
      problem: 'registry-unavailable',
      fix: `${registry} could not be reached: check the name, the network, and the registry's TLS settings (hosts.toml)`,
    };
  }
  return { problem: 'pull-failed', fix: 'see the error above' };
}
