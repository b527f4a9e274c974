import type { Document, Node, Scalar } from 'yaml';
import { groupOf, podSpecPaths } from '../admission/index.ts';
import { mapGet, seqItems, stringAt, stringScalar, walkPath } from './ast.ts';
import type { ManifestSource } from './document.ts';
import { formatFieldPath, parseFieldPath, type ConcreteSegment, type PathSegment } from './paths.ts';

export type ScalarStyle = 'plain' | 'single' | 'double' | 'literal' | 'folded';

/** Where an image's text sits: the scalar's characters in the file, without its anchor, tag or
 * trailing comment. For an alias (`image: *app`) this is the anchored scalar. */
export interface ScalarLocation {
  readonly start: number;
  readonly end: number;
  readonly style: ScalarStyle;
}

/** The Kubernetes object an image belongs to. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string | undefined;
  readonly namespace: string | undefined;
  /** String annotations (KRM functions read `config.kubernetes.io/path` and friends here). */
  readonly annotations: Readonly<Record<string, string>>;
}

/** An image slot found in a manifest: a string at an image field of docs/semantics.md admission §4.1 or at an `--extra-path`. */
export interface ImageSlot {
  /** The file as given (`-` for standard input). */
  readonly file: string;
  /** 0-based document index in the file. */
  readonly doc: number;
  /** From the document root: `spec.template.spec.containers[0].image`, `items[2].spec.…`. */
  readonly path: string;
  /** From the object's root (differs from `path` inside a List). */
  readonly fieldPath: string;
  /** The image exactly as written (the scalar's value). */
  readonly image: string;
  /** The container's name, or the volume's for an image volume. */
  readonly container: string | undefined;
  readonly line: number;
  readonly column: number;
  /** The object holding the slot; undefined for an extra path outside any object. */
  readonly object: ObjectRef | undefined;
  readonly location: ScalarLocation;
}

export interface SlotOptions {
  /** Pod-spec paths of custom kinds, keyed `group/Kind` as the webhook's `extraPodSpecPaths`:
   * `{"argoproj.io/Rollout": ["spec.template.spec"]}`. */
  readonly extraPodSpecPaths?: Readonly<Record<string, readonly string[]>>;
  /** Dotted paths from each document's root opted in as image fields, in any document. */
  readonly extraPaths?: readonly string[];
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

const STYLES: Readonly<Record<string, ScalarStyle>> = {
  PLAIN: 'plain',
  QUOTE_SINGLE: 'single',
  QUOTE_DOUBLE: 'double',
  BLOCK_LITERAL: 'literal',
  BLOCK_FOLDED: 'folded',
};

/**
 * Every image slot of a manifest source, in document order; within an object in pod-spec order
 * (initContainers, containers, ephemeralContainers, volumes: the webhook's order), then extra paths. Only string
 * values are slots; a map (e.g. a Helm-style `{repository, tag}`) or a number never is.
 */
export function findImageSlots(source: ManifestSource, options: SlotOptions = {}): ImageSlot[] {
  const extraPodSpecPaths = options.extraPodSpecPaths ?? {};
  const extraPaths = (options.extraPaths ?? []).map((p) => parseFieldPath(p, 'extra path'));
  const slots: ImageSlot[] = [];
  source.documents.forEach((doc, index) => {
    const finder = new DocumentSlots(source, doc, index, extraPodSpecPaths, extraPaths);
    finder.object(doc.contents, []);
    finder.extraPaths(doc.contents, []);
    slots.push(...finder.slots);
  });
  return slots;
}

class DocumentSlots {
  readonly slots: ImageSlot[] = [];
  readonly #seen = new Set<string>();

  constructor(
    private readonly source: ManifestSource,
    private readonly doc: Document.Parsed,
    private readonly index: number,
    private readonly extraPodSpecPaths: Readonly<Record<string, readonly string[]>>,
    private readonly extra: readonly (readonly PathSegment[])[],
  ) {}

  /** A Kubernetes object (string apiVersion and kind) at `at`; Lists are walked through items. */
  object(node: unknown, at: readonly ConcreteSegment[]): void {
    const apiVersion = stringAt(node, 'apiVersion', this.doc);
    const kind = stringAt(node, 'kind', this.doc);
    if (apiVersion === undefined || kind === undefined) return;
    const ref = this.objectRef(node, apiVersion, kind);
    // The webhook's table of kinds (docs/semantics.md admission §4.1), so the CLI and the webhook pin the same fields.
    for (const location of podSpecPaths({ group: groupOf(apiVersion), kind }, this.extraPodSpecPaths)) {
      const specPath = location.segments.map((key) => ({ key }));
      for (const { node: spec, path } of walkPath(node, specPath, this.doc)) this.podSpec(spec, at, path, ref);
    }
    if (kind.endsWith('List')) {
      seqItems(mapGet(node, 'items', this.doc), this.doc)?.forEach((item, i) => {
        const itemAt = [...at, { key: 'items' }, { index: i }];
        this.object(item, itemAt);
        // A KRM function's input is one ResourceList: each item is what a document is elsewhere.
        if (kind === 'ResourceList') this.extraPaths(item, itemAt);
      });
    }
  }

  /** `--extra-path` fields below `root` holding a string. */
  extraPaths(root: unknown, at: readonly ConcreteSegment[]): void {
    for (const path of this.extra) {
      for (const found of walkPath(root, path, this.doc)) {
        const scalar = stringScalar(found.node, this.doc);
        if (scalar === undefined) continue;
        const object = this.objectRef(root, stringAt(root, 'apiVersion', this.doc), stringAt(root, 'kind', this.doc));
        this.add(scalar, at, found.path, undefined, object);
      }
    }
  }

  private podSpec(
    spec: Node,
    objectAt: readonly ConcreteSegment[],
    specAt: readonly ConcreteSegment[],
    ref: ObjectRef | undefined,
  ): void {
    for (const list of CONTAINER_LISTS) {
      seqItems(mapGet(spec, list, this.doc), this.doc)?.forEach((container, i) => {
        const scalar = stringScalar(mapGet(container, 'image', this.doc), this.doc);
        if (scalar === undefined) return;
        const field = [...specAt, { key: list }, { index: i }, { key: 'image' }];
        this.add(scalar, objectAt, field, stringAt(container, 'name', this.doc), ref);
      });
    }
    seqItems(mapGet(spec, 'volumes', this.doc), this.doc)?.forEach((volume, i) => {
      const scalar = stringScalar(mapGet(mapGet(volume, 'image', this.doc), 'reference', this.doc), this.doc);
      if (scalar === undefined) return;
      const field = [...specAt, { key: 'volumes' }, { index: i }, { key: 'image' }, { key: 'reference' }];
      this.add(scalar, objectAt, field, stringAt(volume, 'name', this.doc), ref);
    });
  }

  private add(
    scalar: Scalar<string>,
    objectAt: readonly ConcreteSegment[],
    field: readonly ConcreteSegment[],
    container: string | undefined,
    object: ObjectRef | undefined,
  ): void {
    const path = formatFieldPath([...objectAt, ...field]);
    if (this.#seen.has(path)) return;
    this.#seen.add(path);
    const [start, end] = scalar.range ?? [0, 0];
    const { line, column } = this.source.position(start);
    this.slots.push({
      file: this.source.file,
      doc: this.index,
      path,
      fieldPath: formatFieldPath(field),
      image: scalar.value,
      container,
      line,
      column,
      object,
      location: { start, end, style: STYLES[scalar.type ?? 'PLAIN'] ?? 'plain' },
    });
  }

  private objectRef(node: unknown, apiVersion: string | undefined, kind: string | undefined): ObjectRef | undefined {
    if (apiVersion === undefined || kind === undefined) return undefined;
    const metadata = mapGet(node, 'metadata', this.doc);
    const annotationsNode = mapGet(metadata, 'annotations', this.doc);
    const annotations: Record<string, string> = {};
    if (annotationsNode !== undefined) {
      // Only the annotations KRM tooling uses to place results; reading them all is not needed.
      for (const key of KRM_ANNOTATIONS) {
        const value = stringAt(annotationsNode, key, this.doc);
        if (value !== undefined) annotations[key] = value;
      }
    }
    return {
      apiVersion,
      kind,
      name: stringAt(metadata, 'name', this.doc),
      namespace: stringAt(metadata, 'namespace', this.doc),
      annotations,
    };
  }
}

/** Annotations kpt and kustomize set on ResourceList items to say where each came from. */
export const KRM_ANNOTATIONS = [
  'config.kubernetes.io/path',
  'config.kubernetes.io/index',
  'internal.config.kubernetes.io/path',
  'internal.config.kubernetes.io/index',
] as const;
