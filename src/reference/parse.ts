/** Go's `reference.Parse` and `reference.WithName`: the grammar alone, no normalization. */
import { lowerForGrammar } from './case.ts';
import { checkDigest } from './digest.ts';
import { ReferenceFailure } from './errors.ts';
import { DEFAULT_DOMAIN, NamedReference, type ParseOptions, type ParseResult } from './reference.ts';
import { Scan, pathStartOf, scanReference, scanRemoteName } from './scanner.ts';

/** Longest repository path (not counting the domain) upstream accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

/** `parse` without the wrapping: the reference, or the failure record. */
export function parseOrFail(s: string, options?: ParseOptions): NamedReference | ReferenceFailure {
  if (s === '') return new ReferenceFailure('ErrNameEmpty', s);
  return parseScanned(s, scanReference(s), undefined, options);
}

/**
 * The reference `docker.io/` + `pathPrefix` + `s.slice(start)`, as normalization makes of Docker
 * Hub names: `s` is scanned from `start` with docker.io as its domain, which spares building the
 * full string before scanning it and leaves failure offsets pointing into `s`.
 */
export function parseHubOrFail(
  s: string,
  start: number,
  pathPrefix: string,
  options?: ParseOptions,
): NamedReference | ReferenceFailure {
  return parseScanned(s, scanReference(s, start), pathPrefix, options);
}

function parseScanned(
  s: string,
  scan: Scan,
  hubPathPrefix: string | undefined,
  options: ParseOptions | undefined,
): NamedReference | ReferenceFailure {
  const pathStart = scan.pathStart;
  if (!scan.ok) {
    // Upstream retries the whole string lowercased (tag and digest too), so `Uppercase:tag` is an
    // uppercase error and `lower:UPPER` is valid. We retry only when lowering changes something
    // that could then match, so hostile input is scanned at most twice.
    const lowered = lowerForGrammar(s);
    const retry =
      lowered === undefined ? undefined : scanReference(lowered, hubPathPrefix === undefined ? undefined : pathStart);
    if (retry?.ok) return new ReferenceFailure('ErrNameContainsUppercase', s, scan.offset, 'uppercase');
    return new ReferenceFailure('ErrReferenceInvalidFormat', s, scan.offset, scan.problem);
  }
  const prefixLength = hubPathPrefix?.length ?? 0;
  const pathLength = prefixLength + scan.nameEnd - pathStart;
  // Only the path counts (since v0.6.0); the check precedes digest validation, as upstream's does.
  if (pathLength > NAME_TOTAL_LENGTH_MAX) {
    const offset = pathStart + NAME_TOTAL_LENGTH_MAX - prefixLength;
    return new ReferenceFailure('ErrNameTooLong', s, offset, 'name-length', String(pathLength));
  }
  let digest: string | undefined;
  if (scan.digestStart >= 0) {
    const failure = checkDigest(s, scan.digestStart, options);
    if (failure !== undefined) return failure;
    digest = s.slice(scan.digestStart);
  }
  const tag =
    scan.tagStart < 0 ? undefined : s.slice(scan.tagStart, scan.digestStart < 0 ? s.length : scan.digestStart - 1);
  if (hubPathPrefix === undefined) {
    const path = s.slice(pathStart, scan.nameEnd);
    const name = pathStart === 0 ? path : s.slice(0, scan.nameEnd);
    return new NamedReference(s, name, pathStart === 0 ? '' : s.slice(0, pathStart - 1), path, tag, digest);
  }
  const path = hubPathPrefix + s.slice(pathStart, scan.nameEnd);
  const text = `${DEFAULT_DOMAIN}/${hubPathPrefix}${pathStart === 0 ? s : s.slice(pathStart)}`;
  return new NamedReference(text, `${DEFAULT_DOMAIN}/${path}`, DEFAULT_DOMAIN, path, tag, digest);
}

/**
 * Parses `name[:tag][@digest]` by the grammar alone, as Go's `reference.Parse`: no Docker Hub
 * defaults, and any domain-shaped first component followed by `/` is the domain (`foo/bar` has
 * domain `foo`). Throws InvalidReferenceError.
 */
export function parse(s: string, options?: ParseOptions): NamedReference {
  const result = parseOrFail(s, options);
  if (result instanceof ReferenceFailure) throw result.error;
  return result;
}

/** As parse, returning `{ ok: false, code, … }` instead of throwing. */
export function tryParse(s: string, options?: ParseOptions): ParseResult<NamedReference> {
  const result = parseOrFail(s, options);
  return result instanceof ReferenceFailure ? result : { ok: true, value: result };
}

/**
 * Splits a name (no tag, no digest) at its domain, as Go's `reference.WithName`. Throws
 * InvalidReferenceError: `ErrReferenceInvalidFormat` (also for ""), or `ErrNameTooLong`.
 */
export function withName(name: string): NamedReference {
  const scan = new Scan();
  const pathStart = pathStartOf(name);
  const end = scanRemoteName(scan, name, pathStart);
  if (end < 0) throw new ReferenceFailure('ErrReferenceInvalidFormat', name, scan.offset, scan.problem).error;
  if (end < name.length) throw new ReferenceFailure('ErrReferenceInvalidFormat', name, end, 'name-end').error;
  if (name.length - pathStart > NAME_TOTAL_LENGTH_MAX) {
    const length = String(name.length - pathStart);
    throw new ReferenceFailure('ErrNameTooLong', name, pathStart + NAME_TOTAL_LENGTH_MAX, 'name-length', length).error;
  }
  return new NamedReference(name, name, pathStart === 0 ? '' : name.slice(0, pathStart - 1), name.slice(pathStart));
}
