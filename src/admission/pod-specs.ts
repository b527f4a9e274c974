/**
 * Where images live (docs/semantics.md admission §4.1): the pod specs of each covered kind, and in each pod spec the
 * image slots `containers[i].image`, `initContainers[i].image`, `ephemeralContainers[i].image`
 * and `volumes[i].image.reference`. Pure.
 */

/** A kind as the API names it: group (`""` for core, `apps`, `argoproj.io`) and Kind. */
export interface GroupKind {
  readonly group: string;
  readonly kind: string;
}

/** Where one pod spec sits in an object. */
export interface PodSpecLocation {
  /** Keys from the object root: `['spec', 'template', 'spec']`. */
  readonly segments: readonly string[];
  /** JSON Pointer: `/spec/template/spec`. */
  readonly pointer: string;
  /** Field path prefix: `spec.template.spec`. */
  readonly path: string;
}

export type SlotList = 'containers' | 'initContainers' | 'ephemeralContainers' | 'volumes';

/** One image slot holding a string. */
export interface ImageSlot {
  /** The image as written (may be empty or whitespace: callers decide what that means). */
  readonly image: string;
  /** JSON Pointer to the string: `/spec/template/spec/initContainers/1/image`. */
  readonly pointer: string;
  /** Keys and indexes from the object root: `['spec', 'template', 'spec', 'initContainers', 1, 'image']`. */
  readonly segments: readonly (string | number)[];
  /** Field path: `spec.template.spec.initContainers[1].image`. */
  readonly path: string;
  readonly list: SlotList;
  readonly index: number;
  /** Container name (volume name for an image volume), when it is a string. */
  readonly name?: string;
  /** The pod spec holding the slot. */
  readonly podSpec: PodSpecLocation;
}

const BUILT_IN: ReadonlyMap<string, readonly string[]> = new Map([
  ['/Pod', ['spec']],
  ['/PodTemplate', ['template.spec']],
  ['/ReplicationController', ['spec.template.spec']],
  ['apps/ReplicaSet', ['spec.template.spec']],
  ['apps/Deployment', ['spec.template.spec']],
  ['apps/StatefulSet', ['spec.template.spec']],
  ['apps/DaemonSet', ['spec.template.spec']],
  ['batch/Job', ['spec.template.spec']],
  ['batch/CronJob', ['spec.jobTemplate.spec.template.spec']],
]);

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapePointerSegment(segment: string | number): string {
  if (typeof segment === 'number') return String(segment);
  return segment.includes('~') || segment.includes('/') ? segment.replace(/~/g, '~0').replace(/\//g, '~1') : segment;
}

export function toPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${escapePointerSegment(s)}`).join('');
}

/** `apps/v1` → `apps`; `v1` → `""`. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** `"<group>/<Kind>"`, the key of `extraPodSpecPaths` (`/Pod` for the core group). */
export function groupKindKey(kind: GroupKind): string {
  return `${kind.group}/${kind.kind}`;
}

function toGroupKind(kind: GroupKind | string): GroupKind {
  if (typeof kind !== 'string') return kind;
  const slash = kind.lastIndexOf('/');
  return slash < 0 ? { group: '', kind } : { group: kind.slice(0, slash), kind: kind.slice(slash + 1) };
}

function location(dotted: string): PodSpecLocation {
  const segments = dotted.split('.');
  return { segments, pointer: toPointer(segments), path: dotted };
}

const locationCache = new Map<string, PodSpecLocation>();
const NO_CUSTOM_PATHS: Readonly<Record<string, readonly string[]>> = {};
/** Answers per custom-path table (by identity) and kind: admission asks the same question per request. */
const answers = new WeakMap<object, Map<string, readonly PodSpecLocation[]>>();

/**
 * The pod specs of a kind (any version): built-in kinds per docs/semantics.md admission §4.1, plus `customPaths`
 * (`{"argoproj.io/Rollout": ["spec.template.spec"]}`). `kind` is a GroupKind or
 * `"<group>/<Kind>"` (`"Pod"` alone means the core group). Empty for kinds not covered.
 */
export function podSpecPaths(
  kind: GroupKind | string,
  customPaths: Readonly<Record<string, readonly string[]>> = NO_CUSTOM_PATHS,
): PodSpecLocation[] {
  const key = groupKindKey(toGroupKind(kind));
  let known = answers.get(customPaths);
  const answered = known?.get(key);
  if (answered !== undefined) return [...answered];
  const found = computePodSpecPaths(key, customPaths);
  if (known === undefined) {
    known = new Map();
    answers.set(customPaths, known);
  }
  if (known.size < 1000) known.set(key, found);
  return [...found];
}

function computePodSpecPaths(key: string, customPaths: Readonly<Record<string, readonly string[]>>): PodSpecLocation[] {
  const dotted = [...(BUILT_IN.get(key) ?? []), ...(customPaths[key] ?? [])];
  const seen = new Set<string>();
  const out: PodSpecLocation[] = [];
  for (const d of dotted) {
    if (seen.has(d)) continue;
    seen.add(d);
    let loc = locationCache.get(d);
    if (loc === undefined) {
      loc = location(d);
      if (locationCache.size < 1000) locationCache.set(d, loc);
    }
    out.push(loc);
  }
  return out;
}

/** True when the kind has a pod spec (built in or custom). */
export function isCoveredKind(
  kind: GroupKind | string,
  customPaths: Readonly<Record<string, readonly string[]>> = {},
): boolean {
  return podSpecPaths(kind, customPaths).length > 0;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `segments` below `root`, or undefined when any step is missing or not a map. */
export function valueAt(root: unknown, segments: readonly string[]): unknown {
  let at: unknown = root;
  for (const segment of segments) {
    if (!isRecord(at) || !Object.hasOwn(at, segment)) return undefined;
    at = at[segment];
  }
  return at;
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

/** A slot found in an object; `segments` is built only when asked (the webhook needs the pointer). */
class FoundSlot implements ImageSlot {
  readonly image: string;
  readonly pointer: string;
  readonly path: string;
  readonly list: SlotList;
  readonly index: number;
  readonly name: string | undefined;
  readonly podSpec: PodSpecLocation;

  constructor(where: PodSpecLocation, list: SlotList, index: number, name: unknown, image: string) {
    const volume = list === 'volumes';
    this.image = image;
    // The list names and tails need no RFC 6901 escaping: only the pod spec's own pointer might.
    this.pointer = `${where.pointer}/${list}/${index}/${volume ? 'image/reference' : 'image'}`;
    this.path = `${where.path}.${list}[${index}].${volume ? 'image.reference' : 'image'}`;
    this.list = list;
    this.index = index;
    this.name = typeof name === 'string' ? name : undefined;
    this.podSpec = where;
  }

  get segments(): readonly (string | number)[] {
    const tail = this.list === 'volumes' ? ['image', 'reference'] : ['image'];
    return [...this.podSpec.segments, this.list, this.index, ...tail];
  }
}

/** The image slots of one pod spec object, in the order init containers, containers, ephemeral containers, volumes. */
export function imagesInPodSpec(podSpec: unknown, where: PodSpecLocation): ImageSlot[] {
  const out: ImageSlot[] = [];
  if (!isRecord(podSpec)) return out;
  for (const list of CONTAINER_LISTS) {
    const items = podSpec[list];
    if (!Array.isArray(items)) continue;
    for (let i = 0; i < items.length; i++) {
      const item: unknown = items[i];
      if (isRecord(item) && typeof item['image'] === 'string')
        out.push(new FoundSlot(where, list, i, item['name'], item['image']));
    }
  }
  const volumes = podSpec['volumes'];
  if (Array.isArray(volumes)) {
    for (let i = 0; i < volumes.length; i++) {
      const volume: unknown = volumes[i];
      if (!isRecord(volume)) continue;
      const source = volume['image'];
      if (isRecord(source) && typeof source['reference'] === 'string')
        out.push(new FoundSlot(where, 'volumes', i, volume['name'], source['reference']));
    }
  }
  return out;
}

export interface FindImagesOptions {
  /** The object's kind; default from its `apiVersion` and `kind`. */
  readonly kind?: GroupKind | string;
  readonly extraPodSpecPaths?: Readonly<Record<string, readonly string[]>>;
}

/** The kind an object says it is (`apiVersion` + `kind`), when both are strings. */
export function kindOf(object: unknown): GroupKind | undefined {
  if (!isRecord(object)) return undefined;
  const apiVersion = object['apiVersion'];
  const kind = object['kind'];
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  return { group: groupOf(apiVersion), kind };
}

/**
 * Every image slot of an object of a covered kind, each with its JSON Pointer and field path,
 * in pod-spec order then slot order. Slots whose value is not a string are left out (the API
 * server's schema rejects them before any validating webhook sees them). Nothing for other kinds.
 */
export function findImages(object: unknown, options: FindImagesOptions = {}): ImageSlot[] {
  const kind = options.kind ?? kindOf(object);
  if (kind === undefined) return [];
  const out: ImageSlot[] = [];
  for (const where of podSpecPaths(kind, options.extraPodSpecPaths)) {
    out.push(...imagesInPodSpec(valueAt(object, where.segments), where));
  }
  return out;
}

/** The pod spec objects of an object (for pull secrets and the service account). */
export function podSpecsOf(
  object: unknown,
  kind: GroupKind | string,
  extraPodSpecPaths?: Readonly<Record<string, readonly string[]>>,
): { readonly location: PodSpecLocation; readonly spec: Readonly<Record<string, unknown>> }[] {
  const out: { location: PodSpecLocation; spec: Readonly<Record<string, unknown>> }[] = [];
  for (const location of podSpecPaths(kind, extraPodSpecPaths)) {
    const spec = valueAt(object, location.segments);
    if (isRecord(spec)) out.push({ location, spec });
  }
  return out;
}
