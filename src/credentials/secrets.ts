/**
 * Kubernetes pull Secrets (docs/semantics.md kubelet §8.1) as keyring input. A Secret is usable when its type is
 * `kubernetes.io/dockerconfigjson` with a non-empty `.dockerconfigjson`, or
 * `kubernetes.io/dockercfg` with a non-empty `.dockercfg`; other Secrets are ignored. A usable
 * Secret with malformed content fails with a PullSecretError naming it (namespace/name) and the
 * problem, never its content.
 */
import { PullSecretError } from './errors.ts';
import { decodeGoBase64 } from './go-base64.ts';
import { InputProblem, isJsonObject, jsonTypeName, parseJsonQuietly, type JsonObject } from './go-json.ts';
import { Keyring, type CredentialOrigin } from './keyring.ts';
import { decodeDockercfg, decodeDockerConfigJson, type KubeletDockerConfig } from './kubelet-config.ts';

export const SECRET_TYPE_DOCKER_CONFIG_JSON = 'kubernetes.io/dockerconfigjson';
export const SECRET_TYPE_DOCKERCFG = 'kubernetes.io/dockercfg';

/** The part of a core/v1 Secret read here (as parsed from YAML or JSON). */
export interface SecretObject {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
  readonly type?: string;
  /** Base64 values, as the API serves them. */
  readonly data?: Readonly<Record<string, string>>;
  /** Plain values, as written in manifests; the API server merges these over `data`. */
  readonly stringData?: Readonly<Record<string, string>>;
}

export type SecretCredentialOrigin = Extract<CredentialOrigin, { kind: 'secret' }>;

export interface PullSecretConfig {
  readonly source: SecretCredentialOrigin;
  readonly config: KubeletDockerConfig;
}

export interface PullSecretOptions {
  /** Namespace assumed when the Secret's metadata has none; default `default`. */
  readonly defaultNamespace?: string;
}

/** The Secret's registry entries; undefined when the kubelet would ignore it. Throws PullSecretError. */
export function parsePullSecret(secret: unknown, options: PullSecretOptions = {}): PullSecretConfig | undefined {
  const source = secretSource(secret, options.defaultNamespace ?? 'default');
  if (!isJsonObject(secret))
    throw new PullSecretError(source.namespace, source.name, `expected a Secret object, found ${jsonTypeName(secret)}`);
  const type = secret['type'];
  const dataKey =
    type === SECRET_TYPE_DOCKER_CONFIG_JSON
      ? '.dockerconfigjson'
      : type === SECRET_TYPE_DOCKERCFG
        ? '.dockercfg'
        : undefined;
  if (dataKey === undefined) return undefined;
  const fail = (problem: string): never => {
    throw new PullSecretError(source.namespace, source.name, problem);
  };
  let text: string | undefined;
  try {
    text = secretValue(secret, dataKey);
  } catch (err) {
    if (err instanceof InputProblem) fail(err.message);
    throw err;
  }
  if (text === undefined || text === '') return undefined;
  try {
    const document = parseJsonQuietly(text, dataKey);
    const config = dataKey === '.dockercfg' ? decodeDockercfg(document) : decodeDockerConfigJson(document);
    return { source, config };
  } catch (err) {
    if (err instanceof InputProblem) fail(err.message.startsWith(dataKey) ? err.message : `${dataKey}: ${err.message}`);
    throw err;
  }
}

/**
 * One keyring for all of a pod's pull secrets, in order (docs/semantics.md kubelet §8.1). Ignored Secrets add
 * nothing; the first malformed usable Secret fails the whole lookup, as in the kubelet.
 */
export function keyringFromPullSecrets(secrets: Iterable<unknown>, options: PullSecretOptions = {}): Keyring {
  const keyring = new Keyring();
  for (const secret of secrets) {
    const parsed = parsePullSecret(secret, options);
    if (parsed !== undefined) keyring.add(parsed.source, parsed.config);
  }
  return keyring;
}

function secretSource(secret: unknown, defaultNamespace: string): SecretCredentialOrigin {
  const metadata = isJsonObject(secret) && isJsonObject(secret['metadata']) ? secret['metadata'] : {};
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  return {
    kind: 'secret',
    namespace: text(metadata['namespace']) ?? defaultNamespace,
    name: text(metadata['name']) ?? '<unnamed>',
    uid: text(metadata['uid']) ?? '',
  };
}

/** `stringData[key]` if set (it wins on the API server), else base64-decoded `data[key]`. */
function secretValue(secret: JsonObject, key: string): string | undefined {
  const stringData = mapField(secret, 'stringData');
  const plain = stringData?.[key];
  if (plain !== undefined && plain !== null) {
    if (typeof plain !== 'string')
      throw new InputProblem(`stringData[${JSON.stringify(key)}]: expected a string, found ${jsonTypeName(plain)}`);
    return plain;
  }
  const data = mapField(secret, 'data');
  const encoded = data?.[key];
  if (encoded === undefined || encoded === null) return undefined;
  if (typeof encoded !== 'string')
    throw new InputProblem(`data[${JSON.stringify(key)}]: expected a base64 string, found ${jsonTypeName(encoded)}`);
  const decoded = decodeGoBase64(encoded, true);
  if (!decoded.ok)
    throw new InputProblem(`data[${JSON.stringify(key)}]: illegal base64 data at input byte ${decoded.offset}`);
  return decoded.bytes.toString('utf8');
}

function mapField(secret: JsonObject, field: string): JsonObject | undefined {
  const value = secret[field];
  if (value === undefined || value === null) return undefined;
  if (!isJsonObject(value)) throw new InputProblem(`${field}: expected an object, found ${jsonTypeName(value)}`);
  return value;
}
