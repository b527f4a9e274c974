import { ENCODED_LENGTH, isKnownAlgorithm } from '../digest/index.ts';
import { KimgError } from '../errors/index.ts';
import { firstChangedByLower } from './case.ts';
import type { Problem } from './scanner.ts';

/** The error kinds of distribution/reference (docs/semantics.md references §5), spelled as upstream names them. */
export type ReferenceErrorCode =
  | 'ErrReferenceInvalidFormat'
  | 'ErrTagInvalidFormat'
  | 'ErrDigestInvalidFormat'
  | 'ErrNameContainsUppercase'
  | 'ErrNameEmpty'
  | 'ErrNameTooLong'
  | 'ErrNameNotCanonical'
  | 'digest.ErrDigestInvalidFormat'
  | 'digest.ErrDigestInvalidLength'
  | 'digest.ErrDigestUnsupported'
  | 'errNameIsIdentifier'
  | 'errNameNotLowercase'
  | 'path.ErrBadPattern';

const REASONS: Record<Exclude<ReferenceErrorCode, 'errNameIsIdentifier' | 'errNameNotLowercase'>, string> = {
  ErrReferenceInvalidFormat: 'invalid reference format',
  ErrTagInvalidFormat: 'invalid tag format',
  ErrDigestInvalidFormat: 'invalid digest format',
  ErrNameContainsUppercase: 'repository name must be lowercase',
  ErrNameEmpty: 'repository name must have at least one component',
  ErrNameTooLong: 'repository name must not be more than 255 characters',
  ErrNameNotCanonical: 'repository name must be canonical',
  'digest.ErrDigestInvalidFormat': 'invalid checksum digest format',
  'digest.ErrDigestInvalidLength': 'invalid checksum digest length',
  'digest.ErrDigestUnsupported': 'unsupported digest algorithm',
  'path.ErrBadPattern': 'syntax error in pattern',
};

/** Scanner problems plus the ones found after a successful scan; each gets its own words. */
export type Detail =
  | Problem
  | 'name-length'
  | 'uppercase'
  | 'identifier'
  | 'digest-algorithm'
  | 'digest-length'
  | 'digest-hex'
  | 'not-canonical'
  | 'pattern';

export interface FailureFacts {
  /** The index in `input` of the first offending character, when one can be named. */
  readonly offset?: number | undefined;
  readonly detail?: Detail | undefined;
  /** What the detail needs beyond the input: the remote name, the canonical form, a length. */
  readonly context?: string | undefined;
}

/**
 * A reference, tag, digest or pattern that distribution/reference would reject. `code` is the
 * upstream error; `reason` its exact upstream message (what kubelet texts embed); `message` adds
 * the input and, where known, what is wrong at which `offset`.
 */
export class InvalidReferenceError extends KimgError<ReferenceErrorCode> {
  readonly input: string;
  readonly reason: string;
  readonly offset: number | undefined;

  constructor(code: ReferenceErrorCode, input: string, facts: FailureFacts = {}) {
    super(code, formatMessage(code, input, facts));
    this.input = input;
    this.reason = reasonFor(code, input, facts.context);
    this.offset = facts.offset;
  }
}

/**
 * What the non-throwing forms return on failure: the facts, with the Error built only when
 * `error` is first read. Constructing an Error (it captures a stack) costs several times a whole
 * parse, and validation-heavy callers mostly branch on `code` alone.
 */
export class ReferenceFailure implements FailureFacts {
  readonly ok = false;
  readonly code: ReferenceErrorCode;
  readonly input: string;
  readonly offset: number | undefined;
  readonly detail: Detail | undefined;
  readonly context: string | undefined;
  #error: InvalidReferenceError | undefined;

  constructor(code: ReferenceErrorCode, input: string, offset?: number, detail?: Detail, context?: string) {
    this.code = code;
    this.input = input;
    this.offset = offset;
    this.detail = detail;
    this.context = context;
  }

  /** The typed error, built on first access and then kept. */
  get error(): InvalidReferenceError {
    return (this.#error ??= new InvalidReferenceError(this.code, this.input, this));
  }
}

function reasonFor(code: ReferenceErrorCode, input: string, context: string | undefined): string {
  if (code === 'errNameIsIdentifier') {
    return `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`;
  }
  if (code === 'errNameNotLowercase') {
    return `invalid reference format: repository name (${context ?? input}) must be lowercase`;
  }
  return REASONS[code];
}

const SHOWN_LENGTH = 200;

function truncate(s: string): string {
  return s.length > SHOWN_LENGTH ? `${s.slice(0, SHOWN_LENGTH)}… (${s.length} characters)` : s;
}

function formatMessage(code: ReferenceErrorCode, input: string, facts: FailureFacts): string {
  // Two upstream messages embed the text themselves; repeating it would only add noise.
  const embedsInput = code === 'errNameIsIdentifier' || code === 'errNameNotLowercase';
  let message = embedsInput
    ? reasonFor(code, truncate(input), facts.context === undefined ? undefined : truncate(facts.context))
    : `${REASONS[code as keyof typeof REASONS]}: ${JSON.stringify(truncate(input))}`;
  const detail = facts.detail === undefined ? undefined : describe(code, input, facts);
  if (detail !== undefined) message += embedsInput ? `: ${detail}` : ` ${detail}`;
  if (facts.offset !== undefined) message += ` (offset ${facts.offset})`;
  return message;
}

/** One character (a whole code point) of `s` at `i`, JSON-quoted, or undefined past the end. */
function charAt(s: string, i: number | undefined): string | undefined {
  if (i === undefined || i < 0 || i >= s.length) return undefined;
  return JSON.stringify(String.fromCodePoint(s.codePointAt(i) ?? 0));
}

const TAG_START = 'a tag starts with a letter, a digit or "_"';

/** Words for what is wrong at `facts.offset`, phrased to follow the quoted input. */
function describe(code: ReferenceErrorCode, input: string, facts: FailureFacts): string | undefined {
  const offset = facts.offset ?? -1;
  const at = charAt(input, offset);
  const before = charAt(input, offset - 1);
  const inName =
    facts.detail === 'component' ||
    facts.detail === 'separator' ||
    facts.detail === 'name-end' ||
    facts.detail === 'uppercase';
  // Uppercase is the likeliest typo in a name; say so rather than "not allowed".
  if (inName && at !== undefined && firstChangedByLower(input, offset, offset + 1) === offset) {
    return code === 'errNameNotLowercase' ? `${at} is uppercase` : `has uppercase ${at} in the repository name`;
  }
  switch (facts.detail) {
    case 'component':
      if (at === undefined)
        return before === undefined
          ? input === ''
            ? 'is empty'
            : undefined
          : `ends with ${before} but no path component follows`;
      if (at === '"/"') return before === '"/"' ? 'has an empty path component ("//")' : 'starts with "/"';
      return `has ${at} where a path component must start (a lowercase letter or digit)`;
    case 'separator':
      return at === undefined
        ? `ends with the separator ${before}`
        : `has ${at} after the separator ${before}, where a lowercase letter or digit must follow`;
    case 'name-end':
      return `has ${at}, which a repository name cannot contain`;
    case 'tag':
      if (code === 'ErrTagInvalidFormat') return at === undefined ? 'is empty' : `starts with ${at}; ${TAG_START}`;
      if (at === undefined) return 'ends with ":" but no tag follows';
      if (at === '"@"') return 'has ":" but no tag follows';
      return `has a tag starting with ${at}; ${TAG_START}`;
    case 'tag-char':
      return `has ${at}, which a tag cannot contain`;
    case 'tag-length':
      return code === 'ErrTagInvalidFormat' ? 'is longer than 128 characters' : 'has a tag longer than 128 characters';
    case 'digest':
      return at === undefined
        ? 'ends before its digest is complete'
        : `has ${at}, which the digest grammar does not allow there`;
    case 'digest-short':
      return 'has a digest with fewer than 32 hex digits';
    case 'name-length':
      return `has a repository path of ${facts.context} characters`;
    case 'digest-algorithm': {
      const algorithm = JSON.stringify(input.slice(offset, input.indexOf(':', offset)));
      return code === 'digest.ErrDigestUnsupported'
        ? `uses the digest algorithm ${algorithm}, which is not enabled`
        : `uses the digest algorithm ${algorithm}, which is not a lowercase algorithm name`;
    }
    case 'digest-length': {
      const colon = input.indexOf(':', offset);
      const algorithm = input.slice(offset, colon);
      const want = isKnownAlgorithm(algorithm) ? ENCODED_LENGTH[algorithm] : '?';
      return `has a ${algorithm} digest of ${input.length - colon - 1} hex digits; ${algorithm} has ${want}`;
    }
    case 'digest-hex':
      return `has the uppercase hex digit ${at} in its digest; digests are lowercase hex`;
    case 'not-canonical':
      return `is not canonical; its canonical form is ${JSON.stringify(facts.context)}`;
    case 'pattern':
      return at === undefined ? 'ends inside a character class or after "\\"' : `is malformed at ${at}`;
    default:
      return undefined;
  }
}
