/**
 * Reference values. Go has one type per combination of parts (repository, taggedReference,
 * canonicalReference, reference, digestReference); here `kind` names the combination and the
 * two classes split on whether there is a name at all, so `ref.kind === 'digest'` narrows.
 */

import type { Algorithm } from '../digest/index.ts';
import type { ReferenceFailure } from './errors.ts';

/** Docker Hub's canonical domain, which normalization supplies for familiar names. */
export const DEFAULT_DOMAIN = 'docker.io';

export type NamedKind = 'name' | 'name+tag' | 'name+digest' | 'name+tag+digest';
export type ReferenceKind = NamedKind | 'digest';

/**
 * A repository name with an optional tag and digest; a value object whose fields are `readonly`.
 * Only this module's functions create one. Instances are not frozen at run time: Object.freeze
 * costs about a quarter of a whole parse, and parsing sits on admission and kubelet hot paths.
 */
export class NamedReference {
  readonly kind: NamedKind;
  /** `domain/path`, or `path` when there is no domain. */
  readonly name: string;
  /** The registry host and port, as written (may be ""); never counted in the length limit. */
  readonly domain: string;
  /** The repository path within the registry. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  readonly #text: string;

  /** @internal Validated parts only: use the parse and with* functions. */
  constructor(text: string, name: string, domain: string, path: string, tag?: string, digest?: string) {
    this.kind =
      tag === undefined
        ? digest === undefined
          ? 'name'
          : 'name+digest'
        : digest === undefined
          ? 'name+tag'
          : 'name+tag+digest';
    this.name = name;
    this.domain = domain;
    this.path = path;
    this.tag = tag;
    this.digest = digest;
    this.#text = text;
  }

  /** Go's `String()`: `name[:tag][@digest]`. */
  toString(): string {
    return this.#text;
  }

  /** Serialises as its string, as Go's reference.Field marshals as text. */
  toJSON(): string {
    return this.#text;
  }
}

/** A bare digest, which only parseAnyReference returns (Go's digestReference). */
export class DigestReference {
  readonly kind = 'digest';
  readonly name: undefined;
  readonly domain: undefined;
  readonly path: undefined;
  readonly tag: undefined;
  readonly digest: string;

  /** @internal A validated digest only: use parseAnyReference. */
  constructor(digest: string) {
    this.digest = digest;
  }

  toString(): string {
    return this.digest;
  }

  toJSON(): string {
    return this.digest;
  }
}

export type Reference = NamedReference | DigestReference;

/** A named reference assembled from parts already validated, as Go's builders do. */
export function assemble(domain: string, path: string, tag?: string, digest?: string): NamedReference {
  const name = domain === '' ? path : `${domain}/${path}`;
  let text = name;
  if (tag !== undefined) text += `:${tag}`;
  if (digest !== undefined) text += `@${digest}`;
  return new NamedReference(text, name, domain, path, tag, digest);
}

export interface ParseOptions {
  /** Digest algorithms accepted (go-digest's registered hashes); default sha256, sha384, sha512. */
  readonly algorithms?: readonly Algorithm[];
}

/** What the non-throwing forms return: the value, or the failure facts with a lazy `error`. */
export type ParseResult<T extends Reference> = { readonly ok: true; readonly value: T } | ReferenceFailure;
