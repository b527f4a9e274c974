/**
 * Reading what `kimg ensure` acts on from YAML or JSON manifests: Pods and the pod templates of
 * Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (also inside a `List`),
 * pull Secrets, and a KubeletConfiguration.
 */
import { createHash } from 'node:crypto';
import { KimgError } from '../../errors/index.ts';
import type { ContainerImageSpec, PodImageSpec } from '../../kubelet/index.ts';
import { parseYamlValues, YamlError } from '../../yaml/index.ts';
import { syntheticUid, type ServiceAccountEntry } from './ensure-service-accounts.ts';

export interface WorkloadPod extends PodImageSpec {
  /** Where the pod spec came from: `Pod default/web`, `Deployment prod/api`, … */
  readonly source: string;
  readonly file: string;
}

export interface SecretEntry {
  readonly namespace: string;
  readonly name: string;
  readonly object: unknown;
}

export interface Manifests {
  readonly pods: WorkloadPod[];
  readonly secrets: SecretEntry[];
  readonly kubeletConfigs: { readonly file: string; readonly document: unknown }[];
  /** ServiceAccount objects: credential provider plugins in service-account token mode read them. */
  readonly serviceAccounts: ServiceAccountEntry[];
  /** Objects of kinds `ensure` does not act on (Services, ConfigMaps, …), by `Kind namespace/name`. */
  readonly ignored: string[];
}

export class ManifestError extends KimgError<'ErrInvalidManifest'> {
  readonly file: string;
  constructor(file: string, message: string) {
    super('ErrInvalidManifest', `${file}: ${message}`);
    this.file = file;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Pod template paths per workload kind. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  PodTemplate: ['template', 'spec'],
};

export const WORKLOAD_KINDS = Object.keys(TEMPLATE_PATHS);

function dig(object: Obj, path: readonly string[]): unknown {
  let value: unknown = object;
  for (const key of path) value = isObj(value) ? value[key] : undefined;
  return value;
}

function containersOf(
  spec: Obj,
  field: 'containers' | 'initContainers',
  where: string,
  file: string,
): ContainerImageSpec[] {
  const list = spec[field];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ManifestError(file, `${where}.${field}: expected a list`);
  return list.map((c: unknown, i) => {
    if (!isObj(c)) throw new ManifestError(file, `${where}.${field}[${i}]: expected an object`);
    const name = str(c['name']);
    if (name === undefined || name === '')
      throw new ManifestError(file, `${where}.${field}[${i}]: a container needs a name`);
    const image = c['image'];
    if (image !== undefined && typeof image !== 'string')
      throw new ManifestError(file, `${where}.${field}[${i}] (${name}): image must be a string`);
    const policy = c['imagePullPolicy'];
    if (policy !== undefined && typeof policy !== 'string')
      throw new ManifestError(file, `${where}.${field}[${i}] (${name}): imagePullPolicy must be a string`);
    return { name, image: image ?? '', ...(policy !== undefined && { imagePullPolicy: policy }) };
  });
}

function podFrom(object: Obj, kind: string, file: string, defaultNamespace: string): WorkloadPod {
  const metadata = isObj(object['metadata']) ? object['metadata'] : {};
  const name = str(metadata['name']) ?? '';
  const namespace = str(metadata['namespace']) || defaultNamespace;
  const where = `${kind} ${namespace}/${name || '<unnamed>'}`;
  const spec = dig(object, TEMPLATE_PATHS[kind] ?? []);
  if (!isObj(spec)) throw new ManifestError(file, `${where}: no pod spec at ${(TEMPLATE_PATHS[kind] ?? []).join('.')}`);
  const secrets = spec['imagePullSecrets'];
  if (secrets !== undefined && secrets !== null && !Array.isArray(secrets))
    throw new ManifestError(file, `${where}: imagePullSecrets must be a list`);
  const imagePullSecrets = (Array.isArray(secrets) ? secrets : []).map((s: unknown) =>
    isObj(s) ? (str(s['name']) ?? '') : '',
  );
  const uid =
    str(metadata['uid']) ??
    `kimg-${createHash('sha256').update(`${kind}/${namespace}/${name}`).digest('hex').slice(0, 32)}`;
  const containers = containersOf(spec, 'containers', where, file);
  if (containers.length === 0) throw new ManifestError(file, `${where}: the pod spec has no containers`);
  const serviceAccountName = str(spec['serviceAccountName']);
  return {
    uid,
    namespace,
    name: kind === 'Pod' ? name : `${kind.toLowerCase()}/${name}`,
    ...(serviceAccountName !== undefined && { serviceAccountName }),
    imagePullSecrets,
    initContainers: containersOf(spec, 'initContainers', where, file),
    containers,
    source: where,
    file,
  };
}

/** Every object of the text, `List` items flattened. */
export function parseManifestText(text: string, file: string): Obj[] {
  const objects: Obj[] = [];
  let values: unknown[];
  try {
    values = parseYamlValues(text, file);
  } catch (err) {
    if (!(err instanceof YamlError)) throw err;
    // file:LINE:COLUMN: (1-based, in the file), as compilers print it.
    throw new ManifestError(`${file}:${err.line}:${err.column}`, err.reason);
  }
  for (const value of values) {
    if (!isObj(value))
      throw new ManifestError(file, 'expected Kubernetes objects (a mapping with kind), found a list or scalar');
    if (str(value['kind'])?.endsWith('List') && Array.isArray(value['items'])) {
      for (const item of value['items'] as unknown[]) if (isObj(item)) objects.push(item);
    } else {
      objects.push(value);
    }
  }
  return objects;
}

/** Sorts the objects of several files into pods, secrets and kubelet configurations. */
export function collectManifests(
  files: readonly { file: string; text: string }[],
  defaultNamespace: string,
): Manifests {
  const manifests: Manifests = { pods: [], secrets: [], kubeletConfigs: [], serviceAccounts: [], ignored: [] };
  for (const { file, text } of files) {
    for (const object of parseManifestText(text, file)) {
      const kind = str(object['kind']);
      const metadata = isObj(object['metadata']) ? object['metadata'] : {};
      if (kind === undefined) throw new ManifestError(file, 'an object without kind');
      if (kind === 'Secret') {
        manifests.secrets.push({
          namespace: str(metadata['namespace']) || defaultNamespace,
          name: str(metadata['name']) ?? '',
          object,
        });
      } else if (kind === 'ServiceAccount') {
        const namespace = str(metadata['namespace']) || defaultNamespace;
        const name = str(metadata['name']) ?? '';
        const annotations = isObj(metadata['annotations']) ? metadata['annotations'] : {};
        manifests.serviceAccounts.push({
          namespace,
          name,
          uid: str(metadata['uid']) ?? syntheticUid(namespace, name),
          annotations: Object.fromEntries(
            Object.entries(annotations).filter((e): e is [string, string] => typeof e[1] === 'string'),
          ),
        });
      } else if (kind === 'KubeletConfiguration') {
        manifests.kubeletConfigs.push({ file, document: object });
      } else if (kind in TEMPLATE_PATHS) {
        manifests.pods.push(podFrom(object, kind, file, defaultNamespace));
      } else {
        manifests.ignored.push(
          `${kind} ${str(metadata['namespace']) || defaultNamespace}/${str(metadata['name']) ?? ''}`,
        );
      }
    }
  }
  return manifests;
}

/** The pod's secret lookup: by name in the pod's namespace. */
export function secretLookup(secrets: readonly SecretEntry[], namespace: string): (name: string) => unknown {
  return (name) => secrets.find((s) => s.namespace === namespace && s.name === name)?.object;
}
