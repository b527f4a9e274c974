import { DEFAULT_ALGORITHMS, ENCODED_LENGTH, isKnownAlgorithm, isValidDigest } from '../digest/index.ts';
import { ReferenceFailure } from './errors.ts';
import type { ParseOptions } from './reference.ts';

/**
 * go-digest's verdict (docs/semantics.md references §4) on the digest `s.slice(start)`, which already matched the
 * reference grammar: undefined when valid, else the failure with the offending offset.
 *
 * Acceptance is the digest module's; this only names the failure, because asking that module for
 * its error would construct a DigestError, and the failure path must stay cheap. The naming is
 * simple for grammar-valid input: the tests check it against the digest module's codes.
 */
export function checkDigest(s: string, start: number, options: ParseOptions | undefined): ReferenceFailure | undefined {
  if (isValidDigest(s.slice(start), options)) return undefined;
  const colon = s.indexOf(':', start);
  const algorithm = s.slice(start, colon);
  const enabled = isKnownAlgorithm(algorithm) && (options?.algorithms ?? DEFAULT_ALGORITHMS).includes(algorithm);
  if (!enabled) {
    // go-digest calls an unknown algorithm "unsupported" only when it is grammatical for the OCI
    // spec, which (given the reference grammar) means lowercase: `SHA256:…` is a format error.
    const lowercase = firstUppercase(s, start, colon) < 0;
    return new ReferenceFailure(
      lowercase ? 'digest.ErrDigestUnsupported' : 'digest.ErrDigestInvalidFormat',
      s,
      start,
      'digest-algorithm',
    );
  }
  if (s.length - colon - 1 !== ENCODED_LENGTH[algorithm]) {
    return new ReferenceFailure('digest.ErrDigestInvalidLength', s, start, 'digest-length');
  }
  // The reference grammar admits A-F; go-digest wants lowercase hex only.
  return new ReferenceFailure('digest.ErrDigestInvalidFormat', s, firstUppercase(s, colon + 1, s.length), 'digest-hex');
}

function firstUppercase(s: string, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return i;
  }
  return -1;
}
