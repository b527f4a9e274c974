/**
 * Reading already-parsed JSON the way Go's `encoding/json` fills a struct: field names match
 * case-insensitively (last occurrence wins), unknown fields are ignored, `null` leaves a field
 * alone, and a value of the wrong type is an error. Problems are reported as text that names the
 * field and the type found, never the value.
 */
export type JsonObject = { readonly [key: string]: unknown };

/** A problem in an input document; callers wrap it into a typed error that names the input. */
export class InputProblem extends Error {}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How Go's decoder names the JSON type it found, for messages. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

/** Go's case folding for field names (`foldName`): ASCII and simple Unicode folds. */
export function foldFieldName(name: string): string {
  let out = '';
  for (const c of name) {
    const folded = c.toLowerCase().toUpperCase();
    // Go uses simple (one rune to one rune) case mappings only.
    out += Array.from(folded).length === 1 ? folded : c;
  }
  return out;
}

/**
 * The string fields of a struct-like object, matched case-insensitively (`caseSensitive` for
 * Kubernetes API types, which sigs.k8s.io/json decodes with exact names).
 */
export function readStringFields<Field extends string>(
  object: JsonObject,
  fields: readonly Field[],
  where: string,
  options: { caseSensitive?: boolean } = {},
): Partial<Record<Field, string>> {
  const result: Partial<Record<Field, string>> = {};
  for (const [key, value] of Object.entries(object)) {
    const field = findField(key, fields, options.caseSensitive ?? false);
    if (field === undefined || value === null) continue;
    if (typeof value !== 'string') {
      throw new InputProblem(`${where}${field}: expected a string, found ${jsonTypeName(value)}`);
    }
    result[field] = value;
  }
  return result;
}

/** The value of one field (any JSON type), with the same name matching rules. */
export function readField(object: JsonObject, field: string, options: { caseSensitive?: boolean } = {}): unknown {
  let found: unknown;
  for (const [key, value] of Object.entries(object)) {
    if (findField(key, [field], options.caseSensitive ?? false) !== undefined) found = value;
  }
  return found;
}

function findField<Field extends string>(
  key: string,
  fields: readonly Field[],
  caseSensitive: boolean,
): Field | undefined {
  const exact = fields.find((field) => field === key);
  if (exact !== undefined || caseSensitive) return exact;
  const folded = foldFieldName(key);
  return fields.find((field) => foldFieldName(field) === folded);
}

/** JSON.parse without echoing the input: Node's SyntaxError quotes the text, which may be secret. */
export function parseJsonQuietly(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InputProblem(`${what} is not valid JSON`);
  }
}

/**
 * JSON text exactly as Go's `json.Marshal` writes a string: `<`, `>`, `&`, U+2028 and U+2029
 * escaped, invalid UTF-16 replaced by U+FFFD.
 */
export function goJsonString(value: string): string {
  const wellFormed = value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  return JSON.stringify(wellFormed)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
