/**
 * KEP-2535's image pull manager (docs/semantics.md kubelet §10): remembers which credentials pulled which image
 * and decides whether a pod may use an image already on the node. The image manager only knows
 * the `PullVerifier` interface; `ImagePullManager` is the kubelet's implementation over a
 * records accessor (on disk, cached, or in memory).
 */
import type { Clock } from '../signals/index.ts';
import { repositoryOf } from './image-name.ts';
import { KeyedMutex } from '../signals/index.ts';
import {
  checkRecordedCredentials,
  mergePulledRecord,
  type ImagePullCredentials,
  type ImagePulledRecord,
  type PodCredentials,
} from './pull-records.ts';
import type { PullRecordsAccessor } from './pull-records-store.ts';
import {
  parseAllowlist,
  requiresVerification,
  type Allowlist,
  type VerificationPolicy,
} from './verification-policy.ts';

export type MustPullDecision = 'pull' | 'use';

/**
 * All the image manager knows of KEP-2535 (upstream's `pullmanager.PullManager`). `image` is
 * always the image as written. Contract: each `recordPullIntent(image)` is matched by exactly
 * one `recordImagePulled` or `recordImagePullFailed` for the same image, whatever happens in
 * between (the image manager keeps it in a `finally`), so intents left on disk mean a pull was
 * interrupted by a crash. `mustAttemptImagePull` is asked only for an image already present.
 */
export interface PullVerifier {
  recordPullIntent(image: string): Promise<void>;
  recordImagePulled(image: string, imageRef: string, credentials: ImagePullCredentials | undefined): Promise<void>;
  recordImagePullFailed(image: string): Promise<void>;
  /** May the pod use the present image `imageRef`? Rejects with getPodCredentials' error. */
  mustAttemptImagePull(
    image: string,
    imageRef: string,
    getPodCredentials: () => Promise<PodCredentials>,
  ): Promise<MustPullDecision>;
}

/** A decision with the reason in words, for `--dry-run` and `explain`. */
export interface MustPullExplanation {
  readonly decision: MustPullDecision;
  readonly why: string;
}

export interface ImagePullManagerOptions {
  readonly records: PullRecordsAccessor;
  readonly policy: VerificationPolicy;
  readonly allowlist?: readonly string[];
  readonly clock: Clock;
  /** Errors the kubelet only logs (record writes, unreadable records). */
  readonly onError?: (error: unknown, context: string) => void;
  /** `kubelet_imagemanager_image_mustpull_checks_total{result}`. */
  readonly onMustPullCheck?: (result: MustPullDecision | 'error') => void;
}

/** An image as the runtime lists it, for start-up recovery and record pruning. */
export interface ListedImage {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
}

/**
 * The kubelet's KEP-2535 `PullVerifier`: records which credentials pulled which image
 * (intents before a pull, records after), and decides whether a pod may use an image already on
 * the node under the verification policy and allowlist. Record write errors are reported to
 * `onError` and never fail a pull, as in the kubelet.
 */
export class ImagePullManager implements PullVerifier {
  readonly policy: VerificationPolicy;
  readonly allowlist: Allowlist;
  readonly #records: PullRecordsAccessor;
  readonly #clock: Clock;
  readonly #options: ImagePullManagerOptions;
  readonly #intentCounters = new Map<string, number>();
  readonly #intentLocks = new KeyedMutex();
  readonly #recordLocks = new KeyedMutex();

  constructor(options: ImagePullManagerOptions) {
    this.#options = options;
    this.#records = options.records;
    this.#clock = options.clock;
    this.policy = options.policy;
    this.allowlist = parseAllowlist(options.allowlist ?? []);
  }

  /**
   * Start-up: each intent whose image is among a listed image's RepoTags/RepoDigests becomes a
   * pulled record for that image's ID without credentials (forcing re-verification), and its
   * intent file goes; other intents stay.
   */
  async initialize(images: readonly ListedImage[]): Promise<void> {
    const intents = new Set((await this.#records.listIntents()).map((i) => i.image));
    for (const image of images) {
      const found = new Set([...image.repoDigests, ...image.repoTags].filter((name) => intents.has(name)));
      for (const name of found) await this.recordImagePulled(name, image.id, undefined);
    }
  }

  async recordPullIntent(image: string): Promise<void> {
    await this.#intentLocks.run(image, async () => {
      try {
        await this.#records.writeIntent(image);
      } catch (err) {
        throw new Error(`failed to record image pull intent: ${(err as Error).message}`, { cause: err });
      }
      this.#intentCounters.set(image, (this.#intentCounters.get(image) ?? 0) + 1);
    });
  }

  async recordImagePulled(
    image: string,
    imageRef: string,
    credentials: ImagePullCredentials | undefined,
  ): Promise<void> {
    try {
      await this.#writePulledRecordIfChanged(image, imageRef, credentials);
    } catch (err) {
      // The intent stays, so the image still counts as kubelet-pulled; a restart retries.
      this.#options.onError?.(err, `failed to write image pulled record for ${imageRef}`);
      return;
    }
    await this.#decrementIntent(image);
  }

  async recordImagePullFailed(image: string): Promise<void> {
    await this.#decrementIntent(image);
  }

  async mustAttemptImagePull(
    image: string,
    imageRef: string,
    getPodCredentials: () => Promise<PodCredentials>,
  ): Promise<MustPullDecision> {
    try {
      const { decision } = await this.explainMustAttemptImagePull(image, imageRef, getPodCredentials, { write: true });
      this.#options.onMustPullCheck?.(decision);
      return decision;
    } catch (err) {
      this.#options.onMustPullCheck?.('error');
      throw err;
    }
  }

  /** The decision and why; with `write: false` (a preflight) nothing is recorded. */
  async explainMustAttemptImagePull(
    image: string,
    imageRef: string,
    getPodCredentials: () => Promise<PodCredentials>,
    options: { write?: boolean } = {},
  ): Promise<MustPullExplanation> {
    if (imageRef === '') return { decision: 'pull', why: 'the image is not present' };
    let record: ImagePulledRecord | undefined;
    let pulledByKubelet: boolean;
    try {
      ({ record, pulledByKubelet } = await this.#recordLocks.run(imageRef, () =>
        this.#intentLocks.run(image, async () => {
          const found = await this.#records.getRecord(imageRef);
          if (found !== undefined) return { record: found, pulledByKubelet: true };
          if ((this.#intentCounters.get(image) ?? 0) > 0) return { record: undefined, pulledByKubelet: true };
          return { record: undefined, pulledByKubelet: await this.#records.intentExists(image) };
        }),
      ));
    } catch (err) {
      this.#options.onError?.(err, 'unable to access cache records about image pulls');
      return { decision: 'pull', why: 'the pull records could not be read (fail safe)' };
    }
    if (!requiresVerification(this.policy, this.allowlist, image, pulledByKubelet)) {
      return {
        decision: 'use',
        why: `${this.policy} requires no verification${pulledByKubelet ? '' : ' (the image was not pulled by the kubelet)'}`,
      };
    }
    if (record === undefined)
      return { decision: 'pull', why: 'a pull of it is in flight or was interrupted; no record of its credentials' };
    const repository = repositoryOf(image);
    if (repository === undefined) return { decision: 'pull', why: 'the image name does not parse' };
    const check = await checkRecordedCredentials(record, repository, getPodCredentials);
    if (check.decision === 'use' && check.merge !== undefined && options.write !== false) {
      try {
        await this.#writePulledRecordIfChanged(image, imageRef, { kubernetesSecrets: [check.merge] });
      } catch (err) {
        this.#options.onError?.(err, `failed to write an image pulled record for ${imageRef}`);
      }
    }
    return { decision: check.decision, why: check.why };
  }

  /**
   * GC: drops records whose imageRef no longer exists and that were last updated before the
   * round began (`roundStart`, ms). Returns the imageRefs pruned.
   */
  async pruneOrphanedRecords(existingImageRefs: ReadonlySet<string>, roundStart: number): Promise<string[]> {
    const pruned: string[] = [];
    for (const record of await this.#records.listRecords()) {
      if (existingImageRefs.has(record.imageRef)) continue;
      await this.#recordLocks.run(record.imageRef, async () => {
        const current = await this.#records.getRecord(record.imageRef);
        if (current === undefined || Date.parse(current.lastUpdatedTime) >= roundStart) return;
        await this.#records.deleteRecord(record.imageRef);
        pruned.push(record.imageRef);
      });
    }
    return pruned;
  }

  /** In-flight pulls per image (reference counts of intents). */
  intentCount(image: string): number {
    return this.#intentCounters.get(image) ?? 0;
  }

  async #writePulledRecordIfChanged(
    image: string,
    imageRef: string,
    credentials: ImagePullCredentials | undefined,
  ): Promise<void> {
    const repository = repositoryOf(image);
    if (repository === undefined)
      throw new Error(`invalid image name ${JSON.stringify(image)} was passed to the pull manager`);
    await this.#recordLocks.run(imageRef, async () => {
      let existing: ImagePulledRecord | undefined;
      try {
        existing = await this.#records.getRecord(imageRef);
      } catch (err) {
        this.#options.onError?.(err, `failed to retrieve the image pulled record for ${imageRef}`);
        existing = undefined;
      }
      const { record, changed } = mergePulledRecord(existing, imageRef, repository, credentials, this.#clock.now());
      if (changed) await this.#records.writeRecord(record);
    });
  }

  async #decrementIntent(image: string): Promise<void> {
    await this.#intentLocks.run(image, async () => {
      const count = this.#intentCounters.get(image) ?? 0;
      if (count <= 1) {
        try {
          await this.#records.deleteIntent(image);
        } catch (err) {
          this.#options.onError?.(err, `failed to remove the image pull intent for ${image}`);
          return;
        }
        this.#intentCounters.delete(image);
        return;
      }
      this.#intentCounters.set(image, count - 1);
    });
  }
}
