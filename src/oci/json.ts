import { KimgError } from '../errors/index.ts';

/** The deepest JSON nesting accepted in registry documents; real manifests nest 4 levels. */
export const MAX_JSON_DEPTH = 64;

/**
 * A registry document that is not acceptable JSON (syntax, duplicate keys, nesting deeper
 * than `MAX_JSON_DEPTH`): `ErrInvalidJson`.
 */
export class JsonError extends KimgError<'ErrInvalidJson'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ErrInvalidJson', message, options);
  }
}

/**
 * Parses JSON text, rejecting what a lenient decoder would let through and a second decoder
 * might read differently: duplicate keys at any level, and nesting deeper than MAX_JSON_DEPTH.
 * Two clients that read one manifest two ways is the root of CVE-2021-41190.
 */
export function parseStrictJson(text: string): unknown {
  checkStructure(text);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new JsonError(`not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** One pass over the text: tracks each open object's keys and the nesting depth. The text is
 * assumed to be JSON-ish; JSON.parse judges the syntax afterwards. */
function checkStructure(text: string): void {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) throw new JsonError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
      stack.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    } else if (c === 0x22 /* " */) {
      const end = endOfString(text, i);
      if (expectKey) {
        const keys = stack[stack.length - 1];
        const raw = text.slice(i, end + 1);
        const key = raw.includes('\\') ? decodeKey(raw) : raw.slice(1, -1);
        if (keys?.has(key)) throw new JsonError(`duplicate key ${JSON.stringify(key)} in JSON object`);
        keys?.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
}

function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  throw new JsonError('unterminated string in JSON');
}

function decodeKey(raw: string): string {
  try {
    return JSON.parse(raw) as string;
  } catch (err) {
    throw new JsonError(`invalid string ${raw.slice(0, 40)} in JSON`, { cause: err });
  }
}
