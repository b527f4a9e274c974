/**
 * One image string as the pinning rules see it (docs/semantics.md admission §4.3, §4.4): what kind of slot value it is,
 * the reference it resolves as, and the value written once its digest is known. Pure.
 */
import { trimNamed, tryParseNormalizedNamed, type NamedReference } from '../reference/index.ts';
import type { OutputFormat } from './config.ts';

export type ImageClass =
  /** Empty or whitespace only (`" "` is a template placeholder): untouched, silent. */
  | { readonly kind: 'blank' }
  /** Starts with a skip prefix: untouched, silent, never looked up. */
  | { readonly kind: 'skipped'; readonly prefix: string }
  /** Does not parse: never sent to a registry. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /** Has a digest (and maybe a tag). */
  | { readonly kind: 'digest'; readonly named: NamedReference; readonly digest: string; readonly tag?: string }
  /** Tag or name only: to resolve. `lookup` is the parseDockerRef string (the dedupe key). */
  | { readonly kind: 'tag'; readonly named: NamedReference; readonly lookup: string; readonly implicitLatest: boolean };

/** Classifies an image as written, in the order of docs/semantics.md admission §4.4 (slot rules 1–4). */
export function classifyImage(image: string, skipPrefixes: readonly string[] = []): ImageClass {
  if (image.trim() === '') return { kind: 'blank' };
  for (const prefix of skipPrefixes) if (image.startsWith(prefix)) return { kind: 'skipped', prefix };
  const parsed = tryParseNormalizedNamed(image);
  if (!parsed.ok) return { kind: 'invalid', reason: parsed.error.message };
  const named = parsed.value;
  if (named.digest !== undefined)
    return { kind: 'digest', named, digest: named.digest, ...(named.tag !== undefined && { tag: named.tag }) };
  // parseDockerRef's string without a second parse: the normalized name, `latest` by default.
  const lookup = named.tag === undefined ? `${named.name}:latest` : named.toString();
  return { kind: 'tag', named, lookup, implicitLatest: named.tag === undefined };
}

/**
 * The value written for `image` (as written, parsed as `named`) pinned to `digest`:
 * `preserve` keeps the spelling and appends `@digest`; `canonical` is the full normalized
 * reference with its tag (`docker.io/library/redis:latest@D`); `digest-only` drops the tag
 * (`docker.io/library/redis@D`).
 */
export function pinnedValue(image: string, named: NamedReference, digest: string, format: OutputFormat): string {
  switch (format) {
    case 'preserve':
      return `${image}@${digest}`;
    case 'canonical':
      // parseDockerRef(image): the normalized name with its tag, `latest` when it has none.
      return `${named.tag === undefined ? `${named.name}:latest` : named.toString()}@${digest}`;
    case 'digest-only':
      return `${trimNamed(named).toString()}@${digest}`;
  }
}

const MAX_SHOWN = 200;

/**
 * An image for a message: as written, unless over 200 characters, then its start and end around
 * `…` (so a warning stays under the apiserver's 256-character limit without cutting a shorter
 * image or digest).
 */
export function showImage(image: string): string {
  const printable = image.replace(/[\u0000-\u001f\u007f]/g, '?');
  if (printable.length <= MAX_SHOWN) return printable;
  return `${printable.slice(0, 100)}…${printable.slice(-99)}`;
}
