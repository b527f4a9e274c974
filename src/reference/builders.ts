/** Go's builders and accessors over named references: WithTag, WithDigest, TrimNamed, … */
import { ReferenceFailure } from './errors.ts';
import { assemble, type NamedReference } from './reference.ts';
import { Scan, scanDigest, scanWholeTag } from './scanner.ts';

/** The tag Docker and the kubelet assume when a reference names none. */
export const DEFAULT_TAG = 'latest';

/**
 * `named` with `tag` in place of any tag it had; an existing digest is kept (`name:tag@digest`).
 * Throws InvalidReferenceError `ErrTagInvalidFormat` unless `tag` matches `[\w][\w.-]{0,127}`.
 */
export function withTag(named: NamedReference, tag: string): NamedReference {
  const scan = new Scan();
  if (!scanWholeTag(scan, tag)) throw new ReferenceFailure('ErrTagInvalidFormat', tag, scan.offset, scan.problem).error;
  return assemble(named.domain, named.path, tag, named.digest);
}

/**
 * `named` with `digest`; an existing tag is kept. Upstream checks the reference grammar only
 * (`algorithm:hex{32,}`), not go-digest's rules, so a 37-digit sha256 is accepted here (docs/semantics.md references §3).
 * Throws InvalidReferenceError `ErrDigestInvalidFormat`.
 */
export function withDigest(named: NamedReference, digest: string): NamedReference {
  const scan = new Scan();
  if (!scanDigest(scan, digest, 0)) {
    throw new ReferenceFailure('ErrDigestInvalidFormat', digest, scan.offset, scan.problem).error;
  }
  return assemble(named.domain, named.path, named.tag, digest);
}

/** The name alone: domain and path, without tag or digest. */
export function trimNamed(ref: NamedReference): NamedReference {
  return ref.kind === 'name' ? ref : assemble(ref.domain, ref.path);
}

/** Adds the tag `latest` when `ref` has neither tag nor digest; otherwise returns `ref`. */
export function tagNameOnly(ref: NamedReference): NamedReference {
  return ref.kind === 'name' ? withTag(ref, DEFAULT_TAG) : ref;
}

/**
 * The registry part of the name ("" when there is none). Go splits `Name()` again for foreign
 * implementations of Named; every NamedReference carries its split, so this is the field.
 */
export function domain(ref: NamedReference): string {
  return ref.domain;
}

/** The repository path within the registry. */
export function path(ref: NamedReference): string {
  return ref.path;
}
