/**
 * The kubelet's image garbage collection (docs/semantics.md kubelet §11): images are detected (first seen,
 * last used), candidates are those neither in use nor pinned, least recently used first (ties:
 * first detected first). An age pass removes candidates unused for longer than the maximum age;
 * a space pass, when usage reaches the high threshold, frees down to the low threshold, skipping
 * images used at or after the round began or younger than the minimum age.
 */
import type { Clock } from '../signals/index.ts';
import { EventReason, messages, type EventRecorder } from './events.ts';
import { aggregateMessages, formatGoDuration } from './go-format.ts';
import { errorText, type ImageInfo, type ImageService } from './image-service.ts';

export interface ImageGcPolicy {
  readonly highThresholdPercent: number;
  readonly lowThresholdPercent: number;
  readonly minAgeMs: number;
  /** 0 = off. */
  readonly maxAgeMs: number;
}

/** What the collector remembers of an image. `lastUsed` 0 = never seen in use. */
export interface ImageGcRecord {
  readonly firstDetected: number;
  readonly lastUsed: number;
}

/** The collector's memory, to persist between runs of a one-shot CLI. */
export interface ImageGcState {
  /** When collection began (the kubelet's start): the age pass waits `maxAge` after it. */
  readonly startedAt: number;
  readonly images: Readonly<Record<string, ImageGcRecord>>;
}

export type GcDecisionReason =
  | 'age'
  | 'space'
  | 'in-use'
  | 'pinned'
  | 'used-too-recently'
  | 'younger-than-min-age'
  | 'enough-freed'
  | 'below-threshold'
  | 'deletion-failed';

export interface GcDecision {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly size: number;
  readonly firstDetected: number;
  readonly lastUsed: number;
  readonly action: 'remove' | 'keep';
  readonly reason: GcDecisionReason;
}

export interface FsStats {
  readonly capacity: number;
  readonly available: number;
}

export interface GcRoundResult {
  readonly dryRun: boolean;
  readonly capacity: number;
  readonly available: number;
  readonly usagePercent: number;
  /** Bytes the space pass had to free (0 below the high threshold). */
  readonly amountToFree: number;
  readonly freed: number;
  /** Every image in eviction order, then in-use and pinned ones, with what happened to it. */
  readonly decisions: readonly GcDecision[];
  /** The round's error (the kubelet returns it), when any. */
  readonly error?: string;
}

interface Candidate extends ImageGcRecord {
  readonly id: string;
  readonly size: number;
  readonly repoTags: readonly string[];
}

/** Least recently used first; ties by first detection; then by id, so the order is stable. */
export function evictionOrder<T extends { id: string; lastUsed: number; firstDetected: number }>(
  images: readonly T[],
): T[] {
  return [...images].sort(
    (a, b) => a.lastUsed - b.lastUsed || a.firstDetected - b.firstDetected || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/** Usage in percent as the kubelet computes it (integer division), available clamped to capacity. */
export function usagePercent(capacity: number, available: number): number {
  const clamped = Math.min(available, capacity);
  return 100 - Math.trunc((clamped * 100) / capacity);
}

/** Bytes to free to get down to the low threshold: `capacity·(100−low)/100 − available`. */
export function amountToFree(capacity: number, available: number, lowThresholdPercent: number): number {
  return Math.trunc((capacity * (100 - lowThresholdPercent)) / 100) - Math.min(available, capacity);
}

export interface ImageGarbageCollectorOptions {
  readonly imageService: ImageService;
  readonly policy: ImageGcPolicy;
  readonly clock: Clock;
  readonly recorder?: EventRecorder;
  readonly state?: ImageGcState;
  /** Node name for the node events. */
  readonly nodeName?: string;
}

/**
 * The kubelet's image garbage collection: `detectImages` tracks when each image was first
 * seen and last used; `garbageCollect` removes unused, unpinned images, least recently used
 * first: images older than the maximum age, then, when disk usage reaches the high threshold,
 * enough to come down to the low one, skipping images younger than the minimum age. Every
 * decision comes back with its reason; `dryRun` removes nothing.
 */
export class ImageGarbageCollector {
  readonly policy: ImageGcPolicy;
  readonly #service: ImageService;
  readonly #clock: Clock;
  readonly #recorder: EventRecorder | undefined;
  readonly #nodeName: string;
  readonly #startedAt: number;
  readonly #records = new Map<string, ImageGcRecord>();

  constructor(options: ImageGarbageCollectorOptions) {
    this.policy = options.policy;
    this.#service = options.imageService;
    this.#clock = options.clock;
    this.#recorder = options.recorder;
    this.#nodeName = options.nodeName ?? 'node';
    this.#startedAt = options.state?.startedAt ?? options.clock.now();
    for (const [id, record] of Object.entries(options.state?.images ?? {})) this.#records.set(id, record);
  }

  exportState(): ImageGcState {
    return { startedAt: this.#startedAt, images: Object.fromEntries(this.#records) };
  }

  /** Records that containers used these imageRefs now (the kubelet sees running containers). */
  markUsed(imageRefs: Iterable<string>, now = this.#clock.now()): void {
    for (const id of imageRefs) {
      const record = this.#records.get(id);
      this.#records.set(id, { firstDetected: record?.firstDetected ?? now, lastUsed: now });
    }
  }

  /** `detectImages`: new images are first detected now, used ones last used now, vanished ones forgotten. */
  async detectImages(detectTime: number, inUse: ReadonlySet<string>): Promise<ImageInfo[]> {
    const images = await this.#service.listImages();
    const now = this.#clock.now();
    const current = new Set<string>();
    for (const image of images) {
      current.add(image.id);
      const record = this.#records.get(image.id) ?? { firstDetected: detectTime, lastUsed: 0 };
      this.#records.set(image.id, inUse.has(image.id) ? { ...record, lastUsed: now } : record);
    }
    for (const id of [...this.#records.keys()]) if (!current.has(id)) this.#records.delete(id);
    return images;
  }

  /**
   * One round. `inUse` are the imageRefs containers use; `fsStats` is read after the age pass.
   * With `dryRun` nothing is removed and removals count as if they had succeeded.
   */
  async garbageCollect(options: {
    inUse?: ReadonlySet<string>;
    fsStats: () => Promise<FsStats>;
    dryRun?: boolean;
  }): Promise<GcRoundResult> {
    const dryRun = options.dryRun === true;
    const began = this.#clock.now();
    const inUse = options.inUse ?? new Set<string>();
    const images = await this.detectImages(began, inUse);
    const decisions: GcDecision[] = [];
    const held: GcDecision[] = [];
    let candidates: Candidate[] = [];
    for (const image of images) {
      const record = this.#records.get(image.id);
      if (record === undefined) continue;
      const base = { id: image.id, repoTags: image.repoTags, size: image.size, ...record };
      if (inUse.has(image.id)) held.push({ ...base, action: 'keep', reason: 'in-use' });
      else if (image.pinned === true) held.push({ ...base, action: 'keep', reason: 'pinned' });
      else candidates.push(base);
    }
    candidates = evictionOrder(candidates);
    const errors: string[] = [];
    const remove = async (candidate: Candidate): Promise<boolean> => {
      if (dryRun) return true;
      try {
        await this.#service.removeImage(candidate.id);
        this.#records.delete(candidate.id);
        return true;
      } catch (err) {
        errors.push(errorText(err));
        return false;
      }
    };

    let ageFreed = 0;
    const roundErrors: string[] = [];
    if (this.policy.maxAgeMs > 0 && began - this.#startedAt > this.policy.maxAgeMs) {
      const remaining: Candidate[] = [];
      for (const candidate of candidates) {
        if (began - candidate.lastUsed > this.policy.maxAgeMs && (await remove(candidate))) {
          decisions.push({ ...candidate, action: 'remove', reason: 'age' });
          ageFreed += candidate.size;
          continue;
        }
        // A failed deletion stays a candidate for the space pass.
        remaining.push(candidate);
      }
      if (errors.length > 0) {
        roundErrors.push(
          `wanted to free images older than ${formatGoDuration(this.policy.maxAgeMs)}, encountered errors in image deletion: ${aggregateMessages(errors)}`,
        );
      }
      candidates = remaining;
    }

    const stats = await options.fsStats();
    const capacity = stats.capacity;
    const available = Math.min(dryRun ? stats.available + ageFreed : stats.available, capacity);
    const result = (
      extra: Partial<GcRoundResult> & { usagePercent: number; amountToFree: number; freed: number },
    ): GcRoundResult => {
      const error = [...roundErrors, ...(extra.error === undefined ? [] : [extra.error])];
      return {
        dryRun,
        capacity,
        available,
        ...extra,
        decisions: [...decisions, ...held],
        ...(error.length > 0 && { error: error.join('; ') }),
      };
    };
    if (capacity === 0) {
      const message = messages.invalidDiskCapacity();
      this.#nodeEvent(EventReason.InvalidDiskCapacity, message);
      for (const c of candidates)
        if (!decisions.some((d) => d.id === c.id)) decisions.push({ ...c, action: 'keep', reason: 'below-threshold' });
      return result({ usagePercent: 0, amountToFree: 0, freed: 0, error: message });
    }
    const usage = usagePercent(capacity, available);
    const keepRest = (from: readonly Candidate[], reason: GcDecisionReason) => {
      for (const c of from) if (!decisions.some((d) => d.id === c.id)) decisions.push({ ...c, action: 'keep', reason });
    };
    if (usage < this.policy.highThresholdPercent) {
      keepRest(candidates, 'below-threshold');
      return result({ usagePercent: usage, amountToFree: 0, freed: 0 });
    }
    const toFree = amountToFree(capacity, available, this.policy.lowThresholdPercent);
    let freed = 0;
    const spaceErrorsBefore = errors.length;
    let index = 0;
    for (; index < candidates.length; index++) {
      const candidate = candidates[index];
      if (candidate === undefined) break;
      if (candidate.lastUsed >= began) {
        decisions.push({ ...candidate, action: 'keep', reason: 'used-too-recently' });
        continue;
      }
      if (began - candidate.firstDetected < this.policy.minAgeMs) {
        decisions.push({ ...candidate, action: 'keep', reason: 'younger-than-min-age' });
        continue;
      }
      if (!(await remove(candidate))) {
        decisions.push({ ...candidate, action: 'keep', reason: 'deletion-failed' });
        continue;
      }
      decisions.push({ ...candidate, action: 'remove', reason: 'space' });
      freed += candidate.size;
      if (freed >= toFree) {
        index++;
        break;
      }
    }
    keepRest(candidates.slice(index), 'enough-freed');
    if (errors.length > spaceErrorsBefore) {
      return result({
        usagePercent: usage,
        amountToFree: toFree,
        freed,
        error: `wanted to free ${toFree} bytes, but freed ${freed} bytes space with errors in image deletion: ${aggregateMessages(errors.slice(spaceErrorsBefore))}`,
      });
    }
    if (freed < toFree) {
      const message = messages.freeDiskSpaceFailed(toFree, freed);
      this.#nodeEvent(EventReason.FreeDiskSpaceFailed, message);
      return result({ usagePercent: usage, amountToFree: toFree, freed, error: message });
    }
    return result({ usagePercent: usage, amountToFree: toFree, freed });
  }

  #nodeEvent(reason: string, message: string): void {
    this.#recorder?.({
      type: 'Warning',
      reason,
      message,
      object: { kind: 'Node', name: this.#nodeName },
      timestamp: this.#clock.now(),
      source: 'kubelet',
    });
  }
}
