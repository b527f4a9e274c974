/**
 * The kubelet's image events and waiting reasons, with its exact texts (docs/semantics.md kubelet §3, §4).
 * `<img>` is always the image as written in the pod spec; Go's `%q` quotes it.
 */
import { goQuote, formatGoDuration } from './go-format.ts';

/** `containerStatuses[].state.waiting.reason` values the image manager returns. */
export const WaitingReason = {
  ErrImagePull: 'ErrImagePull',
  ImagePullBackOff: 'ImagePullBackOff',
  ErrImageNeverPull: 'ErrImageNeverPull',
  InvalidImageName: 'InvalidImageName',
  ImageInspectError: 'ImageInspectError',
  RegistryUnavailable: 'RegistryUnavailable',
  SignatureValidationFailed: 'SignatureValidationFailed',
} as const;
export type WaitingReason = (typeof WaitingReason)[keyof typeof WaitingReason];

/** Event reasons (`pkg/kubelet/events`). */
export const EventReason = {
  Pulling: 'Pulling',
  Pulled: 'Pulled',
  Failed: 'Failed',
  BackOff: 'BackOff',
  InspectFailed: 'InspectFailed',
  ErrImageNeverPull: 'ErrImageNeverPull',
  FailedToRetrieveImagePullSecret: 'FailedToRetrieveImagePullSecret',
  FreeDiskSpaceFailed: 'FreeDiskSpaceFailed',
  InvalidDiskCapacity: 'InvalidDiskCapacity',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

export type EventType = 'Normal' | 'Warning';

/** What an event is about: a container of a pod (`spec.containers{app}`) or the node. */
export interface EventObject {
  readonly kind: 'Pod' | 'Node';
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  /** `spec.containers{name}`, `spec.initContainers{name}`. */
  readonly fieldPath?: string;
}

export interface KubeletEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
  readonly object?: EventObject;
  /** Clock time (ms) the event was recorded. */
  readonly timestamp: number;
  /** Always `kubelet`, as `kubectl describe` shows in the From column. */
  readonly source: 'kubelet';
}

export type EventRecorder = (event: KubeletEvent) => void;

export const messages = {
  pulling: (img: string) => `Pulling image ${goQuote(img)}`,
  pulled: (img: string, pullMs: number, totalMs: number, sizeBytes: number) =>
    `Successfully pulled image ${goQuote(img)} in ${formatGoDuration(pullMs)} (${formatGoDuration(totalMs)} including waiting). Image size: ${sizeBytes} bytes.`,
  alreadyPresent: (img: string) => `Container image ${goQuote(img)} already present on machine`,
  alreadyPresentAndAccessible: (img: string) =>
    `Container image ${goQuote(img)} already present on machine and can be accessed by the pod`,
  failedToPull: (img: string, error: string) => `Failed to pull image ${goQuote(img)}: ${error}`,
  backOff: (img: string) => `Back-off pulling image ${goQuote(img)}`,
  neverPull: (img: string) => `Container image ${goQuote(img)} is not present with pull policy of Never`,
  invalidImageName: (img: string, error: string) => `Failed to apply default image tag ${goQuote(img)}: ${error}`,
  /** v1.35 formats the still-empty image ref here, not the name; kept. */
  inspectFailed: (error: string) => `Failed to inspect image "": ${error}`,
  pullIntentFailed: (img: string, error: string) =>
    `Failed to record image pull intent for container image ${goQuote(img)}: ${error}`,
  /** The container-start event every image error adds (`Failed`, Warning). */
  containerError: (reason: string) => `Error: ${reason}`,
  secretsMissing: (names: readonly string[]) =>
    `Unable to retrieve some image pull secrets (${names.join(', ')}); attempting to pull the image may not succeed.`,
  freeDiskSpaceFailed: (toFree: number, freed: number) =>
    `Failed to garbage collect required amount of images. Attempted to free ${toFree} bytes, but only found ${freed} bytes eligible to free.`,
  invalidDiskCapacity: () => 'invalid capacity 0 on image filesystem',
  /** `kubectl logs` for a container waiting on ErrImagePull or ImagePullBackOff. */
  logsWaiting: (container: string, pod: string) =>
    `container ${goQuote(container)} in pod ${goQuote(pod)} is waiting to start: image can't be pulled`,
} as const;

const REGISTRY_UNAVAILABLE = 'RegistryUnavailable';
const SIGNATURE_VALIDATION_FAILED = 'SignatureValidationFailed';

/**
 * `evalCRIPullErr`: the waiting reason and message for a runtime pull error, by prefix of its
 * text. `RegistryUnavailable…` and `SignatureValidationFailed…` get their own reasons; anything
 * else is `ErrImagePull` with the text as is. `<img>` is printed unquoted here, as upstream does.
 */
export function evalPullError(img: string, errorText: string): { reason: WaitingReason; message: string } {
  if (errorText.startsWith(REGISTRY_UNAVAILABLE)) {
    return {
      reason: WaitingReason.RegistryUnavailable,
      message: `image pull failed for ${img} because the registry is unavailable${errorText.slice(REGISTRY_UNAVAILABLE.length)}`,
    };
  }
  if (errorText.startsWith(SIGNATURE_VALIDATION_FAILED)) {
    return {
      reason: WaitingReason.SignatureValidationFailed,
      message: `image pull failed for ${img} because the signature validation failed${errorText.slice(SIGNATURE_VALIDATION_FAILED.length)}`,
    };
  }
  return { reason: WaitingReason.ErrImagePull, message: errorText };
}

/** The waiting reasons `kubectl logs` reports as "image can't be pulled". */
export function isImagePullWaitingReason(reason: string | undefined): boolean {
  return reason === WaitingReason.ErrImagePull || reason === WaitingReason.ImagePullBackOff;
}
