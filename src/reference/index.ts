/**
 * Container image references with the semantics of Go's github.com/distribution/reference v0.6.0
 * (the parser of containerd, CRI-O, the kubelet and Docker), in linear time on any input.
 */
export { DEFAULT_TAG, domain, path, tagNameOnly, trimNamed, withDigest, withTag } from './builders.ts';
export { InvalidReferenceError, type ReferenceFailure, type ReferenceErrorCode } from './errors.ts';
export { isIdentifier, matchAnchoredName, matchDomain, matchReference } from './grammar.ts';
export { familiarMatch } from './match.ts';
export {
  familiarName,
  familiarString,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  tryParseAnyReference,
  tryParseDockerRef,
  tryParseNormalizedNamed,
} from './normalize.ts';
export { NAME_TOTAL_LENGTH_MAX, parse, tryParse, withName } from './parse.ts';
export { DEFAULT_DOMAIN } from './reference.ts';
export type {
  DigestReference,
  NamedKind,
  NamedReference,
  ParseOptions,
  ParseResult,
  Reference,
  ReferenceKind,
} from './reference.ts';
export { sort } from './sort.ts';
