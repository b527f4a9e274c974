/**
 * Docker's familiar names (Go's normalize.go): `ubuntu` means `docker.io/library/ubuntu`, and the
 * familiar form shortens a normalized name back for display.
 */
import { isValidDigest } from '../digest/index.ts';
import { tagNameOnly } from './builders.ts';
import { firstChangedByLower } from './case.ts';
import { ReferenceFailure } from './errors.ts';
import { parseHubOrFail, parseOrFail } from './parse.ts';
import {
  DEFAULT_DOMAIN,
  DigestReference,
  assemble,
  type NamedReference,
  type ParseOptions,
  type ParseResult,
  type Reference,
} from './reference.ts';
import { isIdentifier } from './scanner.ts';

const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const LOCALHOST = 'localhost';
const OFFICIAL_REPO_PREFIX = 'library/';

/**
 * parseNormalizedNamed without the wrapping. Go's splitDockerDomain (docs/semantics.md references §3) decides the
 * domain; names on Docker Hub are then parsed in place (parseHubOrFail) rather than by building
 * `docker.io/library/…` and scanning it again, so every failure offset points into `s`.
 */
export function parseNormalizedOrFail(s: string, options?: ParseOptions): NamedReference | ReferenceFailure {
  if (isIdentifier(s)) return new ReferenceFailure('errNameIsIdentifier', s, undefined, 'identifier');
  const slash = s.indexOf('/');
  let result: NamedReference | ReferenceFailure;
  let remoteStart: number; // where the remote name (after the domain) starts in `s`
  let hubPrefix = ''; // text normalization puts before s.slice(remoteStart) in the path
  if (slash < 0) {
    // A single component is always a Docker Hub official image, even `localhost` or
    // `example.com:5000` (upstream FIXME, kept).
    remoteStart = 0;
    hubPrefix = OFFICIAL_REPO_PREFIX;
    result = parseHubOrFail(s, 0, hubPrefix, options);
  } else if (isFirstComponent(s, slash, LEGACY_DEFAULT_DOMAIN) || isFirstComponent(s, slash, DEFAULT_DOMAIN)) {
    remoteStart = slash + 1;
    hubPrefix = s.includes('/', remoteStart) ? '' : OFFICIAL_REPO_PREFIX;
    result = parseHubOrFail(s, remoteStart, hubPrefix, options);
  } else if (
    isFirstComponent(s, slash, LOCALHOST) ||
    hasDotOrColon(s, slash) ||
    firstChangedByLower(s, 0, slash) >= 0
  ) {
    // localhost, hostnames, IPs, host:port and [v6]:port; an uppercase first component cannot be
    // a Docker Hub namespace, so it is taken as a host too (`LOCALDOMAIN/x`). The grammar then
    // has the last word: `a.b_c/x` has no domain at all.
    remoteStart = slash + 1;
    result = parseOrFail(s, options);
  } else {
    // A Docker Hub namespace (`library/ubuntu`, `user/app`), or junk that parse will reject.
    remoteStart = 0;
    result = parseHubOrFail(s, 0, '', options);
  }
  // Upstream first rejects a remote name (up to the first ":") that Go's ToLower would change.
  // When the parse succeeds that text is a lowercase path, perhaps with "@" and an enabled
  // (lowercase) algorithm, so the check can only fire on failure: doing it there keeps the
  // common path to one scan and still gives upstream's error.
  if (!(result instanceof ReferenceFailure)) return result;
  const colon = s.indexOf(':', remoteStart);
  const remoteEnd = colon < 0 ? s.length : colon;
  const changed = firstChangedByLower(s, remoteStart, remoteEnd);
  if (changed < 0) return result;
  // The tag is not cut off at "@", so `foo@SHA256:…` fails here.
  const remote = hubPrefix + s.slice(remoteStart, remoteEnd);
  return new ReferenceFailure('errNameNotLowercase', s, changed, 'uppercase', remote);
}

/** Whether the text before the first `/` (at `slash`) is exactly `name`. */
function isFirstComponent(s: string, slash: number, name: string): boolean {
  return slash === name.length && s.startsWith(name);
}

function hasDotOrColon(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e || c === 0x3a) return true;
  }
  return false;
}

/**
 * Parses a reference as Docker and the kubelet do (Go's `ParseNormalizedNamed`): `ubuntu` is
 * `docker.io/library/ubuntu`, `user/app` is `docker.io/user/app`, `index.docker.io` is
 * `docker.io`. Throws InvalidReferenceError.
 */
export function parseNormalizedNamed(s: string, options?: ParseOptions): NamedReference {
  const result = parseNormalizedOrFail(s, options);
  if (result instanceof ReferenceFailure) throw result.error;
  return result;
}

/** As parseNormalizedNamed, returning `{ ok: false, code, … }` instead of throwing. */
export function tryParseNormalizedNamed(s: string, options?: ParseOptions): ParseResult<NamedReference> {
  const result = parseNormalizedOrFail(s, options);
  return result instanceof ReferenceFailure ? result : { ok: true, value: result };
}

/**
 * parseNormalizedNamed that accepts only input already in normalized form
 * (`docker.io/library/foo:tag`); otherwise `ErrNameNotCanonical`.
 */
export function parseNamed(s: string, options?: ParseOptions): NamedReference {
  const result = parseNormalizedOrFail(s, options);
  if (result instanceof ReferenceFailure) throw result.error;
  const canonical = result.toString();
  if (canonical !== s)
    throw new ReferenceFailure('ErrNameNotCanonical', s, undefined, 'not-canonical', canonical).error;
  return result;
}

function dockerRefOrFail(s: string, options?: ParseOptions): NamedReference | ReferenceFailure {
  const named = parseNormalizedOrFail(s, options);
  if (named instanceof ReferenceFailure) return named;
  // With both, the digest decides what is pulled; the tag would only mislead.
  if (named.digest !== undefined)
    return named.tag === undefined ? named : assemble(named.domain, named.path, undefined, named.digest);
  return tagNameOnly(named);
}

/**
 * What to pull (Go's `ParseDockerRef`): normalized, `latest` when neither tag nor digest is
 * given, and the tag dropped when a digest is given. Throws InvalidReferenceError.
 */
export function parseDockerRef(s: string, options?: ParseOptions): NamedReference {
  const result = dockerRefOrFail(s, options);
  if (result instanceof ReferenceFailure) throw result.error;
  return result;
}

/** As parseDockerRef, returning `{ ok: false, code, … }` instead of throwing. */
export function tryParseDockerRef(s: string, options?: ParseOptions): ParseResult<NamedReference> {
  const result = dockerRefOrFail(s, options);
  return result instanceof ReferenceFailure ? result : { ok: true, value: result };
}

function anyReferenceOrFail(s: string, options?: ParseOptions): Reference | ReferenceFailure {
  // A bare image ID is a sha256 digest whatever algorithms are enabled, as upstream has it.
  if (isIdentifier(s)) return new DigestReference(`sha256:${s}`);
  if (isValidDigest(s, options)) return new DigestReference(s);
  return parseNormalizedOrFail(s, options);
}

/**
 * A digest (`sha256:…`, or a 64-hex image ID) or else a normalized named reference (Go's
 * `ParseAnyReference`). `sha512:…` is a digest only when sha512 is enabled. Throws
 * InvalidReferenceError.
 */
export function parseAnyReference(s: string, options?: ParseOptions): Reference {
  const result = anyReferenceOrFail(s, options);
  if (result instanceof ReferenceFailure) throw result.error;
  return result;
}

/** As parseAnyReference, returning `{ ok: false, code, … }` instead of throwing. */
export function tryParseAnyReference(s: string, options?: ParseOptions): ParseResult<Reference> {
  const result = anyReferenceOrFail(s, options);
  return result instanceof ReferenceFailure ? result : { ok: true, value: result };
}

/**
 * The name as Docker shows it: `docker.io/` dropped, then `library/` dropped when nothing nested
 * follows (`docker.io/library/foo/bar` → `library/foo/bar`). Other registries are unchanged.
 */
export function familiarName(ref: NamedReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return ref.name;
  const path = ref.path;
  return path.startsWith(OFFICIAL_REPO_PREFIX) && !path.includes('/', OFFICIAL_REPO_PREFIX.length)
    ? path.slice(OFFICIAL_REPO_PREFIX.length)
    : path;
}

/** familiarName with the tag and digest; a digest reference is its digest. */
export function familiarString(ref: Reference): string {
  if (ref.kind === 'digest') return ref.digest;
  let text = familiarName(ref);
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest}`;
  return text;
}
