import { classifyImage } from '../admission/index.ts';
import type { ImageSlot } from './slots.ts';

/** A check finding or a policy violation at one image slot (docs/semantics.md admission §5.5, §5.6). */
export interface Finding {
  readonly slot: ImageSlot;
  /** `missing-digest`, `invalid-reference`, or a policy rule id (`disallowed-tag`, …). */
  readonly rule: string;
  readonly message: string;
}

/**
 * `kimg pin --check`: a `missing-digest` finding for every slot pinning would resolve, an
 * `invalid-reference` one for every slot it could not parse. Empty and whitespace-only values
 * (template placeholders) and skipped prefixes are not findings; nothing is looked up.
 */
export function checkSlots(slots: readonly ImageSlot[], options: { skipPrefixes?: readonly string[] } = {}): Finding[] {
  const findings: Finding[] = [];
  for (const slot of slots) {
    // The engine's slot rules (docs/semantics.md admission §4.4), so --check flags exactly what pinning would act on.
    const c = classifyImage(slot.image, options.skipPrefixes ?? []);
    if (c.kind === 'invalid')
      findings.push({
        slot,
        rule: 'invalid-reference',
        message: `${slot.image}: invalid image reference (${c.reason})`,
      });
    else if (c.kind === 'tag')
      findings.push({ slot, rule: 'missing-digest', message: `${slot.image}: not pinned to a digest` });
  }
  return findings;
}

/** What `kimg lint` needs of a validating policy: the admission engine's `ImagePolicy`. */
export interface ImagePolicyLike {
  evaluate(image: string): { readonly violations: readonly { readonly rule: string; readonly message?: string }[] };
}

/** Every violation of `policy` at every slot, in slot order (docs/semantics.md admission §4.15, offline). */
export function lintSlots(slots: readonly ImageSlot[], policy: ImagePolicyLike): Finding[] {
  return slots.flatMap((slot) =>
    policy
      .evaluate(slot.image)
      .violations.map((v) => ({ slot, rule: v.rule, message: v.message ?? `${v.rule}: ${slot.image}` })),
  );
}

/** One line per finding: `<file>:<line>:<column>: <path>: <rule>: <image>` (1-based, counted in the file). */
export function formatFindingsText(findings: readonly Finding[]): string {
  return findings
    .map(({ slot, rule }) => `${slot.file}:${slot.line}:${slot.column}: ${slot.path}: ${rule}: ${slot.image}\n`)
    .join('');
}

/** The JSON form of findings, one record each (`line`, 1-based, locates the image's text). */
export interface FindingRecord {
  readonly file: string;
  readonly doc: number;
  readonly path: string;
  readonly image: string;
  readonly rule: string;
  readonly container: string | null;
  readonly line: number;
  /** 1-based column of the image's text in its line. */
  readonly column: number;
}

/**
 * The findings as flat records (file, document, path, image, rule, line, column), the shape
 * `-o json` and `-o yaml` print.
 */
export function findingRecords(findings: readonly Finding[]): FindingRecord[] {
  return findings.map(({ slot, rule }) => ({
    file: slot.file,
    doc: slot.doc,
    path: slot.path,
    image: slot.image,
    rule,
    container: slot.container ?? null,
    line: slot.line,
    column: slot.column,
  }));
}
