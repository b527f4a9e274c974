import { ManifestSource } from './document.ts';
import { applyEdits, type ScalarEdit } from './edit.ts';
import { ManifestFileError } from './errors.ts';
import type { LockEntry } from './lock.ts';
import { findImageSlots, type ImageSlot, type SlotOptions } from './slots.ts';

/**
 * What pinning one image gave (the admission engine's `PinResult`): the value to write (the
 * input when nothing changes), the digest written, warnings; `denied` when the engine refuses
 * the image (a digest its tag no longer points at, under `verify-deny`), `failure` when the
 * lookup failed (`reason` is the keyword of docs/semantics.md admission §4.5: `not found`, `auth`, `timeout`, …).
 */
export interface PinOutcome {
  readonly image: string;
  readonly changed: boolean;
  readonly digest?: string | undefined;
  readonly warnings: readonly string[];
  readonly denied?: string | undefined;
  readonly failure?: { readonly reason: string; readonly detail?: string; readonly message: string } | undefined;
}

/**
 * Pins images as written: the admission engine's `Pinner` (blank values, skip prefixes,
 * invalid references and existing digests are its rules). `pinAll`, when present, pins a batch
 * as one request (each distinct reference looked up once).
 */
export interface PinEngine {
  pin(image: string): Promise<PinOutcome>;
  pinAll?(images: readonly string[]): Promise<readonly PinOutcome[]>;
}

export type PinOptions = SlotOptions;

/** A slot whose image could not be pinned, and why (cause keywords: `not found`, `auth`, …). */
export interface PinFailure {
  readonly slot: ImageSlot;
  readonly cause: string;
}

export interface PinWarning {
  readonly slot: ImageSlot;
  readonly message: string;
}

export interface PinnedFile {
  readonly file: string;
  /** The new text; the input text, byte for byte, when nothing changed. */
  readonly text: string;
  readonly changed: boolean;
  /** Each slot rewritten: where, and from what to what. */
  readonly changes: readonly { readonly slot: ImageSlot; readonly image: string }[];
}

export interface PinReport {
  /** In input order. Empty when any image failed: nothing is to be written then. */
  readonly files: readonly PinnedFile[];
  readonly slots: readonly ImageSlot[];
  /** One per failed image, at its first slot. */
  readonly failures: readonly PinFailure[];
  /** One per image and message, at the image's first slot. */
  readonly warnings: readonly PinWarning[];
  /** Each image as written that was resolved, with the digest written (for `--lock`). */
  readonly resolutions: readonly LockEntry[];
}

/**
 * Pins every image slot of the sources with the engine and rewrites only those scalars' text.
 * All or nothing: if any image fails, `files` is empty and `failures` says why. Every rewritten
 * file is read back and checked to hold exactly the intended images, so a file is never
 * produced half-right.
 */
export async function pinManifests(
  sources: readonly ManifestSource[],
  engine: PinEngine,
  options: PinOptions = {},
): Promise<PinReport> {
  const perSource = sources.map((source) => ({ source, slots: findImageSlots(source, options) }));
  const slots = perSource.flatMap((p) => p.slots);
  const order = new Map(slots.map((slot, i) => [slot, i]));
  const firstSlot = new Map<string, ImageSlot>();
  for (const slot of slots) if (!firstSlot.has(slot.image)) firstSlot.set(slot.image, slot);

  const outcomes = new Map<string, PinOutcome>();
  const failures: PinFailure[] = [];
  const results = await pinEach(engine, [...firstSlot.keys()]);
  for (const [image, slot] of firstSlot) {
    const result = results.get(image);
    if (result === undefined || result instanceof Error)
      failures.push({ slot, cause: result?.message ?? 'not pinned' });
    else if (result.failure !== undefined) failures.push({ slot, cause: failureCause(result.failure) });
    else if (result.denied !== undefined) failures.push({ slot, cause: result.denied });
    else outcomes.set(image, result);
  }

  const warnings: PinWarning[] = [];
  const resolutions: LockEntry[] = [];
  for (const [image, slot] of firstSlot) {
    const outcome = outcomes.get(image);
    if (outcome === undefined) continue;
    for (const message of new Set(outcome.warnings)) warnings.push({ slot, message });
    if (rewrites(outcome, image)) resolutions.push({ ref: image, digest: outcome.digest ?? digestOf(outcome.image) });
  }
  const bySlotOrder = (a: { slot: ImageSlot }, b: { slot: ImageSlot }) =>
    (order.get(a.slot) ?? 0) - (order.get(b.slot) ?? 0);
  failures.sort(bySlotOrder);
  warnings.sort(bySlotOrder);
  if (failures.length > 0) return { files: [], slots, failures, warnings, resolutions: [] };

  const files = rewriteSlots(
    perSource,
    (slot) => {
      const outcome = outcomes.get(slot.image);
      return outcome !== undefined && rewrites(outcome, slot.image) ? outcome.image : undefined;
    },
    options,
  );
  return { files, slots, failures, warnings, resolutions };
}

/**
 * Rewrites, file by file, the slots `valueFor` gives a new value (undefined leaves a slot as it
 * is), every other character kept. Each rewritten file is read back and checked to hold exactly
 * the intended images (`ErrManifestRewrite` otherwise), so a file is never produced half-right.
 * `kimg pin` and `kimg relocate` both write through here.
 */
export function rewriteSlots(
  perSource: readonly { readonly source: ManifestSource; readonly slots: readonly ImageSlot[] }[],
  valueFor: (slot: ImageSlot) => string | undefined,
  options: SlotOptions = {},
): PinnedFile[] {
  return perSource.map(({ source, slots: own }): PinnedFile => {
    const changes = own.flatMap((slot) => {
      const image = valueFor(slot);
      return image !== undefined && image !== slot.image ? [{ slot, image }] : [];
    });
    if (changes.length === 0) return { file: source.file, text: source.text, changed: false, changes };
    const text = applyEdits(
      source.text,
      changes.map(({ slot, image }): ScalarEdit => ({ location: slot.location, value: image })),
    );
    verifyRewrite(source, own, text, changes, options);
    return { file: source.file, text, changed: text !== source.text, changes };
  });
}

function rewrites(outcome: PinOutcome, image: string): boolean {
  return outcome.changed && outcome.image !== image;
}

/** Re-reads the rewritten text: same documents, same slots, each holding the intended image. */
function verifyRewrite(
  source: ManifestSource,
  slots: readonly ImageSlot[],
  text: string,
  changes: readonly { slot: ImageSlot; image: string }[],
  options: SlotOptions,
): void {
  const fail = (reason: string): never => {
    throw new ManifestFileError(
      'ErrManifestRewrite',
      `${source.file}: refusing to write a rewrite that does not read back as intended: ${reason}`,
      { file: source.file },
    );
  };
  let reread: ManifestSource;
  try {
    reread = ManifestSource.parse(source.file, text);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  if (reread.documents.length !== source.documents.length) fail('the number of documents changed');
  const expected = new Map(slots.map((slot) => [`${slot.doc} ${slot.path}`, slot.image]));
  for (const { slot, image } of changes) expected.set(`${slot.doc} ${slot.path}`, image);
  const actual = findImageSlots(reread, options);
  if (actual.length !== expected.size) fail('the number of image fields changed');
  for (const slot of actual) {
    const want = expected.get(`${slot.doc} ${slot.path}`);
    if (want !== slot.image)
      fail(`document ${slot.doc} ${slot.path} reads "${slot.image}", expected "${want ?? '(no such field)'}"`);
  }
}

function digestOf(image: string): string {
  const at = image.lastIndexOf('@');
  return at === -1 ? '' : image.slice(at + 1);
}

/** `not found (manifest unknown: …)`: the keyword first, as the stderr line shows it. */
function failureCause(failure: NonNullable<PinOutcome['failure']>): string {
  return failure.detail !== undefined && failure.detail !== ''
    ? `${failure.reason} (${failure.detail})`
    : failure.reason;
}

/** Every image's outcome, or the error the engine threw for it (an engine bug, not a lookup). */
async function pinEach(engine: PinEngine, images: readonly string[]): Promise<Map<string, PinOutcome | Error>> {
  const out = new Map<string, PinOutcome | Error>();
  const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
  if (engine.pinAll !== undefined) {
    try {
      const results = await engine.pinAll(images);
      images.forEach((image, i) => out.set(image, results[i] ?? new Error('no result')));
      return out;
    } catch (err) {
      for (const image of images) out.set(image, asError(err));
      return out;
    }
  }
  await Promise.all(
    images.map(async (image) => {
      try {
        out.set(image, await engine.pin(image));
      } catch (err) {
        out.set(image, asError(err));
      }
    }),
  );
  return out;
}
