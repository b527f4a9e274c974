// The one way kimg reads YAML (and JSON, which is YAML): manifests, pod files, Secrets, image
// locks, admission and kubelet configuration, credential provider configuration, KRM
// ResourceLists. Every text is hostile: its parse must cost about as much as its size, however
// its aliases and `<<` merge keys are arranged.
import {
  LineCounter,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseAllDocuments,
  type Alias,
  type Document,
  type Node,
  type YAMLError,
} from 'yaml';
import { YamlError, type YamlErrorCode } from './errors.ts';

/**
 * YAML 1.2 core with `<<` merge keys, which Kubernetes' reader (go-yaml) honours; duplicate keys
 * are errors, as `kubectl apply` makes them.
 */
const PARSE_OPTIONS = { merge: true, uniqueKeys: true, strict: true, prettyErrors: false } as const;

/** Below these counts go-yaml never refuses aliasing (sigs.k8s.io/yaml goyaml.v2 decode.go). */
const MIN_ALIAS_COUNT = 100;
const MIN_DECODE_COUNT = 1000;
const RATIO_RANGE_LOW = 400_000;
const RATIO_RANGE_HIGH = 4_000_000;

/**
 * The share of decoded nodes that may come from alias (and merge) expansion, as go-yaml allows
 * it (`allowedAliasRatio`, sigs.k8s.io/yaml goyaml.v2/decode.go): 99 % up to 400,000 decoded
 * nodes, falling to 10 % at 4,000,000. So expansion is at most ~100× a small text and ~0.1× a
 * huge one.
 */
function allowedAliasRatio(decodeCount: number): number {
  if (decodeCount <= RATIO_RANGE_LOW) return 0.99;
  if (decodeCount >= RATIO_RANGE_HIGH) return 0.1;
  return 0.99 - (0.89 * (decodeCount - RATIO_RANGE_LOW)) / (RATIO_RANGE_HIGH - RATIO_RANGE_LOW);
}

/** A 1-based line and column, counted in the whole file (UTF-16 code units). */
export interface YamlPosition {
  readonly line: number;
  readonly column: number;
}

/** A YAML stream as read: its exact text and its documents, each checked and bounded. */
export interface YamlStream {
  readonly file: string;
  readonly text: string;
  readonly documents: readonly Document.Parsed[];
  /** Line and column of a character offset into `text`. */
  position(offset: number): YamlPosition;
}

/** Each document's aliases and the node each names, found once in one pass (the yaml package's
 * `Alias.resolve` walks the whole document per alias, which is quadratic). */
const aliasTables = new WeakMap<Document, Map<Alias, Node | undefined>>();

/**
 * Parses a multi-document YAML stream. Refuses, with a YamlError naming the file, line and
 * column: a syntax error or duplicate key (`ErrInvalidYaml`); an alias to an anchor its document
 * lacks (`ErrInvalidYaml`, anchors hold within one document); aliasing or merging that would
 * expand beyond what go-yaml, Kubernetes' reader, accepts, or an alias inside the node it names
 * (`ErrYamlTooComplex`). The work is linear in the text.
 */
export function parseYaml(text: string, file: string): YamlStream {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { ...PARSE_OPTIONS, lineCounter }) as Document.Parsed[];
  const position = (offset: number): YamlPosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const fail = (code: YamlErrorCode, reason: string, doc: number, offset: number, cause?: unknown): never => {
    throw new YamlError(code, reason, { file, doc, ...position(offset), ...(cause !== undefined && { cause }) });
  };
  documents.forEach((document, index) => {
    const error: YAMLError | undefined = document.errors[0];
    if (error !== undefined) {
      const reason = error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
      fail('ErrInvalidYaml', reason, index, error.pos[0], error);
    }
    const table = aliasTable(document);
    for (const [alias, target] of table) {
      if (target === undefined)
        fail(
          'ErrInvalidYaml',
          `unknown anchor "${alias.source}" (an alias names an anchor earlier in the same document)`,
          index,
          alias.range?.[0] ?? 0,
        );
    }
    checkExpansion(document, table, (code, reason, node) => fail(code, reason, index, node.range?.[0] ?? 0));
  });
  return { file, text, documents, position };
}

/**
 * Every non-empty document of a stream as plain data (maps as objects, in key order, merge keys
 * applied; aliases share one value), after `parseYaml`'s checks. A map key that is a map or a
 * list is refused (`ErrInvalidYaml`), as Kubernetes' YAML-to-JSON conversion refuses it.
 */
export function parseYamlValues(text: string, file: string): unknown[] {
  const stream = parseYaml(text, file);
  const out: unknown[] = [];
  stream.documents.forEach((document, index) => {
    if (document.contents === null) return;
    const value = new Converter(stream, document, index).value(document.contents);
    if (value !== null && value !== undefined) out.push(value);
  });
  return out;
}

/** The one document of a text as plain data (`undefined` when it has none); a stream of several
 * documents is refused, as a configuration file holds one. */
export function parseYamlValue(text: string, file: string): unknown {
  const stream = parseYaml(text, file);
  const documents = stream.documents.filter((d) => d.contents !== null);
  const second = documents[1];
  if (second !== undefined) {
    const { line, column } = stream.position(second.contents?.range?.[0] ?? second.range[0]);
    throw new YamlError('ErrInvalidYaml', 'expected one YAML document, found several', {
      file,
      doc: stream.documents.indexOf(second),
      line,
      column,
    });
  }
  const only = documents[0];
  return only === undefined || only.contents === null
    ? undefined
    : new Converter(stream, only, stream.documents.indexOf(only)).value(only.contents);
}

/**
 * The node an alias names: the last node with its anchor before it in the same document, as
 * the yaml package and go-yaml resolve it, in constant time after the document's first call.
 */
export function aliasTarget(document: Document, alias: Alias): Node | undefined {
  return aliasTable(document).get(alias);
}

function aliasTable(document: Document): Map<Alias, Node | undefined> {
  let table = aliasTables.get(document);
  if (table !== undefined) return table;
  table = new Map();
  const anchors = new Map<string, Node>();
  // Document order, parents before children: an anchor on an ancestor is "before" an alias
  // inside it, which `checkExpansion` then refuses as a cycle.
  const walk = (node: unknown): void => {
    if (isAlias(node)) {
      table.set(node, anchors.get(node.source));
      return;
    }
    if (isScalar(node)) {
      if (node.anchor !== undefined) anchors.set(node.anchor, node);
    } else if (isMap(node) || isSeq(node)) {
      if (node.anchor !== undefined) anchors.set(node.anchor, node);
      for (const item of node.items) walk(item);
    } else if (isPair(node)) {
      walk(node.key);
      walk(node.value);
    }
  };
  walk(document.contents);
  aliasTables.set(document, table);
  return table;
}

/**
 * Counts the nodes a decoder would produce, expanding every alias and merge, in document order
 * and without expanding anything: each node's expanded size is kept, so an alias adds its
 * target's size in one step. Refuses as go-yaml does (`document contains excessive aliasing`)
 * once more than 100 aliased nodes and 1,000 decoded ones are seen and the aliased share passes
 * `allowedAliasRatio`; checked after each alias, where the share can only have grown.
 */
function checkExpansion(
  document: Document.Parsed,
  table: ReadonlyMap<Alias, Node | undefined>,
  fail: (code: YamlErrorCode, reason: string, at: Node) => never,
): void {
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  let decoded = 0;
  let aliased = 0;
  const walk = (node: unknown): number => {
    if (isAlias(node)) {
      const target = table.get(node);
      if (target === undefined) return 1;
      const size = sizes.get(target);
      if (size === undefined || open.has(target))
        return fail('ErrYamlTooComplex', `alias *${node.source} is inside the node it names`, node);
      decoded += 1 + size;
      aliased += size;
      if (
        !Number.isFinite(decoded) ||
        (aliased > MIN_ALIAS_COUNT && decoded > MIN_DECODE_COUNT && aliased / decoded > allowedAliasRatio(decoded))
      ) {
        return fail(
          'ErrYamlTooComplex',
          `excessive aliasing: alias *${node.source} brings the document to ${decoded} nodes, ${aliased} of them through aliases and merge keys`,
          node,
        );
      }
      return 1 + size;
    }
    if (isPair(node)) return walk(node.key) + walk(node.value);
    if (!isMap(node) && !isSeq(node)) {
      if (!isScalar(node)) return 0;
      decoded += 1;
      sizes.set(node, 1);
      return 1;
    }
    decoded += 1;
    open.add(node);
    let size = 1;
    for (const item of node.items) size += walk(item);
    open.delete(node);
    sizes.set(node, size);
    return size;
  };
  walk(document.contents);
}

/** Document → plain data, linear: anchored nodes are converted once and shared. */
class Converter {
  readonly #stream: YamlStream;
  readonly #document: Document.Parsed;
  readonly #index: number;
  readonly #anchored = new Map<Node, unknown>();

  constructor(stream: YamlStream, document: Document.Parsed, index: number) {
    this.#stream = stream;
    this.#document = document;
    this.#index = index;
  }

  value(node: unknown): unknown {
    if (isAlias(node)) {
      const target = aliasTarget(this.#document, node);
      return target === undefined ? null : this.value(target);
    }
    if (isScalar(node) || isMap(node) || isSeq(node)) {
      if (node.anchor !== undefined && this.#anchored.has(node)) return this.#anchored.get(node);
    }
    let value: unknown;
    if (isScalar(node)) {
      const v: unknown = node.value;
      value = typeof v === 'bigint' ? Number(v) : typeof v === 'symbol' ? (v.description ?? '') : v;
    } else if (isSeq(node)) {
      value = node.items.map((item) => (isPair(item) ? this.#map([item]) : this.value(item)));
    } else if (isMap(node)) {
      value = this.#map(node.items);
    } else {
      value = null;
    }
    if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor !== undefined) this.#anchored.set(node, value);
    return value;
  }

  /** A map's pairs: its own keys win over merged ones wherever `<<` stands; among merge
   * sources the first wins (https://yaml.org/type/merge.html). */
  #map(pairs: readonly unknown[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const pair of pairs) {
      if (!isPair(pair)) continue;
      const keyNode = isAlias(pair.key) ? aliasTarget(this.#document, pair.key) : pair.key;
      if (isScalar(keyNode) && typeof keyNode.value === 'symbol') {
        for (const source of this.#mergeSources(pair.value)) {
          for (const [key, value] of Object.entries(source)) if (!Object.hasOwn(out, key)) define(out, key, value);
        }
        continue;
      }
      if (keyNode !== null && keyNode !== undefined && !isScalar(keyNode)) {
        this.#fail('a map key must be a string or another scalar, not a map or a list', pair.key);
      }
      const key = keyNode === null || keyNode === undefined || keyNode.value === null ? '' : String(keyNode.value);
      define(out, key, this.value(pair.value));
    }
    return out;
  }

  #mergeSources(node: unknown): Record<string, unknown>[] {
    const resolved = isAlias(node) ? aliasTarget(this.#document, node) : node;
    const items = isSeq(resolved) ? resolved.items : [node];
    return items.map((item) => {
      const source = isAlias(item) ? aliasTarget(this.#document, item) : item;
      if (!isMap(source)) return this.#fail('a merge key (<<) takes a map or a list of maps', item);
      return this.value(source) as Record<string, unknown>;
    });
  }

  #fail(reason: string, at: unknown): never {
    const offset = isScalar(at) || isMap(at) || isSeq(at) || isAlias(at) ? (at.range?.[0] ?? 0) : 0;
    throw new YamlError('ErrInvalidYaml', reason, {
      file: this.#stream.file,
      doc: this.#index,
      ...this.#stream.position(offset),
    });
  }
}

/** Sets a key as data even when it is `__proto__`. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
