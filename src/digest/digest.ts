import { KimgError } from '../errors/index.ts';
import { DEFAULT_ALGORITHMS, ENCODED_LENGTH, isKnownAlgorithm, type Algorithm } from './algorithms.ts';

export type DigestErrorCode =
  'digest.ErrDigestInvalidFormat' | 'digest.ErrDigestInvalidLength' | 'digest.ErrDigestUnsupported';

const MESSAGES: Record<DigestErrorCode, string> = {
  'digest.ErrDigestInvalidFormat': 'invalid checksum digest format',
  'digest.ErrDigestInvalidLength': 'invalid checksum digest length',
  'digest.ErrDigestUnsupported': 'unsupported digest algorithm',
};

/** A digest string that failed go-digest validation; `input` is the string as given. */
export class DigestError extends KimgError<DigestErrorCode> {
  readonly input: string;
  /** The go-digest message alone, for callers that must reproduce upstream text exactly. */
  readonly reason: string;

  constructor(code: DigestErrorCode, input: string) {
    super(code, `${MESSAGES[code]}: ${JSON.stringify(truncate(input))}`);
    this.input = input;
    this.reason = MESSAGES[code];
  }
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}… (${s.length} characters)` : s;
}

/** A validated digest: `algorithm:encoded`, encoded being lowercase hex of the right length. */
export interface ParsedDigest {
  readonly algorithm: Algorithm;
  readonly encoded: string;
}

export interface DigestOptions {
  /** Algorithms accepted; default sha256, sha384, sha512. */
  readonly algorithms?: readonly Algorithm[];
}

export type DigestResult =
  { readonly ok: true; readonly value: ParsedDigest } | { readonly ok: false; readonly error: DigestError };

/**
 * Validates `algorithm:encoded` exactly as go-digest v1.0.0 does (OCI image spec rules): the
 * algorithm must be enabled, the encoding lowercase hex of the algorithm's length. Never throws.
 */
export function tryParseDigest(input: string, options?: DigestOptions): DigestResult {
  const code = validate(input, options?.algorithms ?? DEFAULT_ALGORITHMS);
  if (code !== undefined) return { ok: false, error: new DigestError(code, input) };
  const colon = input.indexOf(':');
  return {
    ok: true,
    value: { algorithm: input.slice(0, colon) as Algorithm, encoded: input.slice(colon + 1) },
  };
}

/** As tryParseDigest, throwing the DigestError. */
export function parseDigest(input: string, options?: DigestOptions): ParsedDigest {
  const result = tryParseDigest(input, options);
  if (!result.ok) throw result.error;
  return result.value;
}

/** The failing code, or undefined when `input` is a valid digest. Allocates nothing. */
export function validate(input: string, algorithms: readonly Algorithm[]): DigestErrorCode | undefined {
  const colon = input.indexOf(':');
  if (colon <= 0 || colon + 1 >= input.length) return 'digest.ErrDigestInvalidFormat';
  const algorithm = input.slice(0, colon);
  if (!isKnownAlgorithm(algorithm) || !algorithms.includes(algorithm)) {
    return isGrammaticalDigest(input) ? 'digest.ErrDigestUnsupported' : 'digest.ErrDigestInvalidFormat';
  }
  if (input.length - colon - 1 !== ENCODED_LENGTH[algorithm]) return 'digest.ErrDigestInvalidLength';
  for (let i = colon + 1; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return 'digest.ErrDigestInvalidFormat';
  }
  return undefined;
}

/** The OCI digest grammar `[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`, scanned in one pass. */
function isGrammaticalDigest(input: string): boolean {
  let i = 0;
  let componentLength = 0;
  for (; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) {
      componentLength++;
    } else if (c === 0x2e || c === 0x2b || c === 0x5f || c === 0x2d) {
      if (componentLength === 0) return false;
      componentLength = 0;
    } else if (c === 0x3a) {
      break;
    } else {
      return false;
    }
  }
  if (componentLength === 0 || i >= input.length - 1) return false;
  for (i++; i < input.length; i++) {
    const c = input.charCodeAt(i);
    const ok =
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x3d ||
      c === 0x5f ||
      c === 0x2d;
    if (!ok) return false;
  }
  return true;
}

/** True when `input` is a digest safe to put in a URL or a path (validated, enabled algorithm). */
export function isValidDigest(input: string, options?: DigestOptions): boolean {
  return validate(input, options?.algorithms ?? DEFAULT_ALGORITHMS) === undefined;
}
