/**
 * The kubelet's pull decision for one container image, as a pure function of the policy, the
 * image's presence and the KEP-2535 verification: kubernetes `pkg/kubelet/images/image_manager.go`
 * (`imagePullPrecheck`, tag v1.33.0; `shouldPullImage` in older tags). Presence and verification are
 * injected; no events, metrics or credentials here. `ImageManager` turns a decision into events
 * and a pull; `kimg ensure --dry-run` (preflight) into advice and a resolve: one rule, two uses.
 */
import { applyDefaultImageTag } from './image-name.ts';
import type { PullPolicy } from './policy.ts';

/** What the kubelet does about one container image. */
export type PullDecision =
  /** The name does not parse (InvalidImageName). */
  | { readonly kind: 'invalid-name'; readonly error: string }
  /** Asking the runtime whether the image is present failed (ImageInspectError). */
  | { readonly kind: 'inspect-failed'; readonly image: string; readonly error: unknown }
  /** `Never`, and the image is absent, or present but not this pod's to use (KEP-2535): the
   * kubelet does not reveal which, both are ErrImageNeverPull. */
  | { readonly kind: 'never-pull'; readonly image: string; readonly present: boolean }
  /** The KEP-2535 check itself failed (e.g. a pull Secret that cannot be read). */
  | { readonly kind: 'verify-failed'; readonly image: string; readonly imageRef: string; readonly error: unknown }
  /** Run the stored image; `verified` when KEP-2535 checked the pod may use it. */
  | { readonly kind: 'use-local'; readonly image: string; readonly imageRef: string; readonly verified: boolean }
  /** Pull `image` (the name with the default tag); `presentAs` when it is stored but must be
   * pulled anyway (the pod could not prove access); never looked up under `Always`. */
  | { readonly kind: 'pull'; readonly image: string; readonly presentAs?: string };

export interface PullDecisionInput {
  /** The image as written in the pod spec. */
  readonly image: string;
  readonly policy: PullPolicy;
  /** The `KubeletEnsureSecretPulledImages` gate (KEP-2535). */
  readonly ensureSecretPulledImages: boolean;
  /** The runtime's imageRef for the image, `''` when absent (ImageService.getImageRef). Not
   * asked under `Always`. */
  getImageRef(image: string): Promise<string>;
  /** KEP-2535, with the pod's credentials: may the pod use the stored `imageRef` ('use'), or
   * must it pull ('pull')? Asked only when the gate is on and the image is present. */
  mustAttempt(imageRef: string): Promise<'use' | 'pull'>;
}

/**
 * The decision: default tag → (policy ≠ Always ⇒ presence) → `Never` and absent ⇒ never-pull →
 * present ⇒ (gate off ⇒ use it; gate on ⇒ verified ⇒ use it, else `Never` ⇒ never-pull, else
 * pull) → absent or `Always` ⇒ pull. Failures of the injected lookups are decisions too.
 */
export async function decidePull(input: PullDecisionInput): Promise<PullDecision> {
  const tagged = applyDefaultImageTag(input.image);
  if (!tagged.ok) return { kind: 'invalid-name', error: tagged.error };
  const image = tagged.image;
  if (input.policy === 'Always') return { kind: 'pull', image };

  let imageRef: string;
  try {
    imageRef = await input.getImageRef(image);
  } catch (error) {
    return { kind: 'inspect-failed', image, error };
  }
  if (imageRef === '')
    return input.policy === 'Never' ? { kind: 'never-pull', image, present: false } : { kind: 'pull', image };
  if (!input.ensureSecretPulledImages) return { kind: 'use-local', image, imageRef, verified: false };

  let verdict: 'use' | 'pull';
  try {
    verdict = await input.mustAttempt(imageRef);
  } catch (error) {
    return { kind: 'verify-failed', image, imageRef, error };
  }
  if (verdict === 'use') return { kind: 'use-local', image, imageRef, verified: true };
  // Presence is not revealed to a pod that may not use the image.
  if (input.policy === 'Never') return { kind: 'never-pull', image, present: true };
  return { kind: 'pull', image, presentAs: imageRef };
}
