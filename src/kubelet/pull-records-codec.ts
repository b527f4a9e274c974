/**
 * The on-disk form of KEP-2535 records (docs/semantics.md kubelet §10): JSON `kubelet.config.k8s.io/v1beta1`
 * (`v1alpha1` is read too), decoded strictly (unknown fields rejected), written with Go's field
 * order and escaping; files named `sha256-<hex sha256 of the key>`.
 */
import { createHash } from 'node:crypto';
import type {
  ImagePullCredentials,
  ImagePullIntent,
  ImagePulledRecord,
  ImagePullSecretRef,
  ImagePullServiceAccountRef,
} from './pull-records.ts';

export const RECORDS_API_VERSION = 'kubelet.config.k8s.io/v1beta1';
export const RECORDS_READ_VERSIONS: readonly string[] = [RECORDS_API_VERSION, 'kubelet.config.k8s.io/v1alpha1'];

export class RecordDecodeError extends Error {}

/** The file name of a record or intent: `sha256-<hex>` of its key (imageRef or image). */
export function recordFileName(key: string): string {
  return `sha256-${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** A JSON string as Go's encoding/json writes it (`<`, `>`, `&`, U+2028, U+2029 escaped). */
export function goJsonString(value: string): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function encodeObject(fields: [string, string | undefined][]): string {
  return `{${fields
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([k, v]) => `${goJsonString(k)}:${v}`)
    .join(',')}}`;
}

function encodeCredentials(c: ImagePullCredentials): string {
  const list = <T>(items: readonly T[] | undefined, encode: (item: T) => string) =>
    items === undefined || items.length === 0 ? undefined : `[${items.map(encode).join(',')}]`;
  return encodeObject([
    [
      'kubernetesSecrets',
      list(c.kubernetesSecrets, (s) =>
        encodeObject([
          ['uid', goJsonString(s.uid)],
          ['namespace', goJsonString(s.namespace)],
          ['name', goJsonString(s.name)],
          ['credentialHash', goJsonString(s.credentialHash)],
        ]),
      ),
    ],
    [
      'kubernetesServiceAccounts',
      list(c.kubernetesServiceAccounts, (s) =>
        encodeObject([
          ['uid', goJsonString(s.uid)],
          ['namespace', goJsonString(s.namespace)],
          ['name', goJsonString(s.name)],
        ]),
      ),
    ],
    ['nodePodsAccessible', c.nodePodsAccessible === true ? 'true' : undefined],
  ]);
}

export function encodePulledRecord(record: ImagePulledRecord): string {
  const repositories = Object.keys(record.credentialMapping).sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  const mapping =
    repositories.length === 0
      ? undefined
      : `{${repositories.map((repo) => `${goJsonString(repo)}:${encodeCredentials(record.credentialMapping[repo] ?? {})}`).join(',')}}`;
  return `${encodeObject([
    ['kind', goJsonString('ImagePulledRecord')],
    ['apiVersion', goJsonString(RECORDS_API_VERSION)],
    ['lastUpdatedTime', goJsonString(record.lastUpdatedTime)],
    ['imageRef', goJsonString(record.imageRef)],
    ['credentialMapping', mapping],
  ])}\n`;
}

export function encodePullIntent(intent: ImagePullIntent): string {
  return `${encodeObject([
    ['kind', goJsonString('ImagePullIntent')],
    ['apiVersion', goJsonString(RECORDS_API_VERSION)],
    ['image', goJsonString(intent.image)],
  ])}\n`;
}

type Json = Record<string, unknown>;

function strictObject(value: unknown, where: string, allowed: readonly string[]): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RecordDecodeError(`${where}: expected an object`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new RecordDecodeError(`${where}: unknown field ${JSON.stringify(key)}`);
  }
  return value as Json;
}

function stringField(object: Json, field: string, where: string, required = true): string {
  const value = object[field];
  if (value === undefined || value === null) {
    if (required) throw new RecordDecodeError(`${where}: missing ${field}`);
    return '';
  }
  if (typeof value !== 'string') throw new RecordDecodeError(`${where}.${field}: expected a string`);
  return value;
}

function parseDocument(text: string, kind: string, where: string, fields: readonly string[]): Json {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new RecordDecodeError(`${where}: not valid JSON`);
  }
  const object = strictObject(document, where, ['kind', 'apiVersion', ...fields]);
  if (object['kind'] !== kind) throw new RecordDecodeError(`${where}: kind must be ${kind}`);
  if (typeof object['apiVersion'] !== 'string' || !RECORDS_READ_VERSIONS.includes(object['apiVersion'])) {
    throw new RecordDecodeError(`${where}: unsupported apiVersion ${JSON.stringify(object['apiVersion'])}`);
  }
  return object;
}

function decodeList<T>(value: unknown, where: string, decode: (item: unknown, where: string) => T): T[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new RecordDecodeError(`${where}: expected a list`);
  return value.map((item, i) => decode(item, `${where}[${i}]`));
}

function decodeSecret(value: unknown, where: string): ImagePullSecretRef {
  const o = strictObject(value, where, ['uid', 'namespace', 'name', 'credentialHash']);
  return {
    uid: stringField(o, 'uid', where, false),
    namespace: stringField(o, 'namespace', where, false),
    name: stringField(o, 'name', where, false),
    credentialHash: stringField(o, 'credentialHash', where, false),
  };
}

function decodeAccount(value: unknown, where: string): ImagePullServiceAccountRef {
  const o = strictObject(value, where, ['uid', 'namespace', 'name']);
  return {
    uid: stringField(o, 'uid', where, false),
    namespace: stringField(o, 'namespace', where, false),
    name: stringField(o, 'name', where, false),
  };
}

function decodeCredentials(value: unknown, where: string): ImagePullCredentials {
  const o = strictObject(value, where, ['kubernetesSecrets', 'kubernetesServiceAccounts', 'nodePodsAccessible']);
  const secrets = decodeList(o['kubernetesSecrets'], `${where}.kubernetesSecrets`, decodeSecret);
  const accounts = decodeList(o['kubernetesServiceAccounts'], `${where}.kubernetesServiceAccounts`, decodeAccount);
  const node = o['nodePodsAccessible'];
  if (node !== undefined && node !== null && typeof node !== 'boolean')
    throw new RecordDecodeError(`${where}.nodePodsAccessible: expected true or false`);
  return {
    ...(secrets !== undefined && secrets.length > 0 && { kubernetesSecrets: secrets }),
    ...(accounts !== undefined && accounts.length > 0 && { kubernetesServiceAccounts: accounts }),
    ...(node === true && { nodePodsAccessible: true }),
  };
}

export function decodePulledRecord(text: string, where = 'ImagePulledRecord'): ImagePulledRecord {
  const o = parseDocument(text, 'ImagePulledRecord', where, ['lastUpdatedTime', 'imageRef', 'credentialMapping']);
  const lastUpdatedTime = stringField(o, 'lastUpdatedTime', where);
  if (Number.isNaN(Date.parse(lastUpdatedTime)))
    throw new RecordDecodeError(`${where}.lastUpdatedTime: not an RFC 3339 time`);
  const imageRef = stringField(o, 'imageRef', where);
  const mappingValue = o['credentialMapping'];
  const credentialMapping: Record<string, ImagePullCredentials> = {};
  if (mappingValue !== undefined && mappingValue !== null) {
    if (typeof mappingValue !== 'object' || Array.isArray(mappingValue))
      throw new RecordDecodeError(`${where}.credentialMapping: expected an object`);
    for (const [repo, creds] of Object.entries(mappingValue as Json))
      credentialMapping[repo] = decodeCredentials(creds, `${where}.credentialMapping[${JSON.stringify(repo)}]`);
  }
  return { lastUpdatedTime, imageRef, credentialMapping };
}

export function decodePullIntent(text: string, where = 'ImagePullIntent'): ImagePullIntent {
  const o = parseDocument(text, 'ImagePullIntent', where, ['image']);
  return { image: stringField(o, 'image', where) };
}
