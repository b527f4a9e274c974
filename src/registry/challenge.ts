/**
 * RFC 7235 `WWW-Authenticate` parsing and token-auth scopes. Pure: no I/O.
 *
 * A header carries a comma-separated list of challenges whose own parameters are also
 * comma-separated, so `Bearer realm="a", Basic realm="b"` is disambiguated by looking ahead: an
 * item `name=value` continues the current challenge, an item `name` followed by space or a
 * list separator starts a new one.
 */

/** Most bytes of `WWW-Authenticate` read across all of a response's headers. */
export const MAX_CHALLENGE_BYTES = 16 * 1024;

export interface Challenge {
  /** Lowercased: `bearer`, `basic`, … */
  readonly scheme: string;
  /** Parameter names lowercased; the first occurrence of a name wins. */
  readonly params: Readonly<Record<string, string>>;
  /** The token68 form (`Negotiate abc==`), when the challenge used it instead of parameters. */
  readonly token68?: string;
}

export class ChallengeTooLargeError extends Error {
  readonly size: number;
  constructor(size: number) {
    super(`WWW-Authenticate headers total ${size} bytes, more than the limit of ${MAX_CHALLENGE_BYTES}`);
    this.size = size;
  }
}

/**
 * Every well-formed challenge in the given header values, in order. A malformed challenge
 * ends the parse of its header value (the list cannot be resynchronised reliably); challenges
 * before it are kept. Throws ChallengeTooLargeError past the size cap.
 */
export function parseChallenges(
  headerValues: string | readonly string[] | undefined,
  maxBytes = MAX_CHALLENGE_BYTES,
): Challenge[] {
  if (headerValues === undefined) return [];
  const values = typeof headerValues === 'string' ? [headerValues] : headerValues;
  let total = 0;
  for (const value of values) total += Buffer.byteLength(value, 'utf8');
  if (total > maxBytes) throw new ChallengeTooLargeError(total);
  const out: Challenge[] = [];
  for (const value of values) out.push(...parseHeaderValue(value));
  return out;
}

/** The challenge to answer: Bearer preferred over Basic; other schemes are not supported. */
export function pickChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

// RFC 7230 tchar.
function isTchar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 ||
    c === 0x23 ||
    c === 0x24 ||
    c === 0x25 ||
    c === 0x26 ||
    c === 0x27 ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

// RFC 7235 token68 characters, without the trailing '='s.
function isToken68Char(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e ||
    c === 0x2b ||
    c === 0x2f
  );
}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): number {
    return this.s.charCodeAt(this.pos);
  }
  skipWhitespace(): void {
    while (!this.done && (this.peek() === 0x20 || this.peek() === 0x09)) this.pos++;
  }
  skipListSeparators(): void {
    while (!this.done && (this.peek() === 0x20 || this.peek() === 0x09 || this.peek() === 0x2c)) this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && isTchar(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** An unquoted parameter value. RFC 7235 allows only a token; servers also send bare URLs and
   * scopes (`:` and `/` are not tchars), so everything up to whitespace or a separator is taken. */
  bareValue(): string {
    const start = this.pos;
    while (!this.done) {
      const c = this.peek();
      if (c <= 0x20 || c === 0x2c || c === 0x22 || c === 0x7f) break;
      this.pos++;
    }
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string's unescaped content, or undefined when unterminated. */
  quoted(): string | undefined {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const c = this.peek();
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (c === 0x5c) {
        this.pos++;
        if (this.done) return undefined;
      }
      out += this.s[this.pos];
      this.pos++;
    }
    return undefined;
  }
}

/** Looks ahead from the scanner: does `token BWS "="` (not a token68's padding) start here? */
function startsParam(sc: Scanner): boolean {
  const save = sc.pos;
  const name = sc.token();
  sc.skipWhitespace();
  const result = name !== '' && !sc.done && sc.peek() === 0x3d && !isToken68Padding(sc);
  sc.pos = save;
  return result;
}

/** At an '=': is it the padding of a token68 (only '='s, then end or a list separator)? */
function isToken68Padding(sc: Scanner): boolean {
  let i = sc.pos;
  while (i < sc.s.length && sc.s.charCodeAt(i) === 0x3d) i++;
  while (i < sc.s.length && (sc.s.charCodeAt(i) === 0x20 || sc.s.charCodeAt(i) === 0x09)) i++;
  return i >= sc.s.length || sc.s.charCodeAt(i) === 0x2c;
}

function parseHeaderValue(value: string): Challenge[] {
  const sc = new Scanner(value);
  const out: Challenge[] = [];
  for (;;) {
    sc.skipListSeparators();
    if (sc.done) return out;
    const scheme = sc.token();
    if (scheme === '') return out;
    const params: Record<string, string> = {};
    let token68: string | undefined;
    // The scheme must be followed by whitespace, a list separator or the end.
    if (!sc.done && sc.peek() !== 0x20 && sc.peek() !== 0x09 && sc.peek() !== 0x2c) return out;
    sc.skipWhitespace();

    if (!sc.done && sc.peek() !== 0x2c && !startsParam(sc)) {
      const start = sc.pos;
      while (!sc.done && isToken68Char(sc.peek())) sc.pos++;
      if (sc.pos === start) return out;
      while (!sc.done && sc.peek() === 0x3d) sc.pos++;
      token68 = value.slice(start, sc.pos);
      sc.skipWhitespace();
      if (!sc.done && sc.peek() !== 0x2c) return out;
    } else {
      for (;;) {
        sc.skipWhitespace();
        if (sc.done || !startsParam(sc)) break;
        const name = sc.token().toLowerCase();
        sc.skipWhitespace();
        sc.pos++; // '='
        sc.skipWhitespace();
        let paramValue: string | undefined;
        if (!sc.done && sc.peek() === 0x22) paramValue = sc.quoted();
        else {
          paramValue = sc.bareValue();
          if (paramValue === '') paramValue = undefined;
        }
        if (paramValue === undefined) return out;
        if (!Object.hasOwn(params, name)) params[name] = paramValue;
        sc.skipWhitespace();
        if (sc.done) break;
        if (sc.peek() !== 0x2c) return out;
        // Past the separator(s): another parameter, or the next challenge's scheme.
        const save = sc.pos;
        sc.skipListSeparators();
        if (!startsParam(sc)) {
          sc.pos = save;
          break;
        }
      }
    }
    out.push(
      token68 === undefined
        ? { scheme: scheme.toLowerCase(), params }
        : { scheme: scheme.toLowerCase(), params, token68 },
    );
  }
}

/** One token-auth scope: `repository:library/nginx:pull,push`. */
export interface Scope {
  /** Resource type with its optional class: `repository`, `repository(plugin)`, `registry`. */
  readonly type: string;
  /** May itself contain `:` (`host:port/name`). */
  readonly name: string;
  /** Sorted, without duplicates. */
  readonly actions: readonly string[];
}

/**
 * Parses one scope. The type ends at the first `:` and the actions start after the last one,
 * because the resource name may contain `host:port`. Undefined when malformed.
 */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first || last === text.length - 1) return undefined;
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  if (name === '' || !/^[a-z0-9]+(\([a-z0-9]+\))?$/i.test(type)) return undefined;
  const actions = text.slice(last + 1).split(',');
  if (actions.some((a) => a === '' || /[\s"]/.test(a))) return undefined;
  if (/[\s"]/.test(name)) return undefined;
  return { type, name, actions: [...new Set(actions)].sort() };
}

/** Every well-formed scope of a space-separated list (as in a challenge's `scope` parameter). */
export function parseScopes(text: string | undefined): Scope[] {
  if (text === undefined) return [];
  const out: Scope[] = [];
  for (const part of text.split(/\s+/)) {
    if (part === '') continue;
    const scope = parseScope(part);
    if (scope !== undefined) out.push(scope);
  }
  return out;
}

/**
 * A token scope as the `scope` parameter spells it: `type:name:action[,action…]`.
 */
export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

/** Scopes for the same resource are merged by uniting their actions; the result is sorted. */
export function mergeScopes(...lists: ReadonlyArray<readonly Scope[]>): Scope[] {
  const byResource = new Map<string, { type: string; name: string; actions: Set<string> }>();
  for (const list of lists) {
    for (const scope of list) {
      const key = `${scope.type}\u0000${scope.name}`;
      const entry = byResource.get(key) ?? { type: scope.type, name: scope.name, actions: new Set<string>() };
      for (const action of scope.actions) entry.actions.add(action);
      byResource.set(key, entry);
    }
  }
  return [...byResource.values()]
    .map((e) => ({ type: e.type, name: e.name, actions: [...e.actions].sort() }))
    .sort((a, b) => (formatScope(a) < formatScope(b) ? -1 : formatScope(a) > formatScope(b) ? 1 : 0));
}

/** The pull scope for a repository path (`library/nginx`). */
export function pullScope(repository: string): Scope {
  return { type: 'repository', name: repository, actions: ['pull'] };
}
