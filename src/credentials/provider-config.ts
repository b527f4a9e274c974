/**
 * `CredentialProviderConfig` (docs/semantics.md kubelet §9): parsed from an already-decoded YAML/JSON object and
 * validated as the kubelet does, every problem reported at once. Kubernetes API types decode with
 * exact (case-sensitive) field names; unknown fields are ignored.
 */
import { ProviderConfigError } from './errors.ts';
import { parseGoDuration } from './go-duration.ts';
import { isJsonObject, jsonTypeName, type JsonObject } from './go-json.ts';
import { parseSchemelessUrl } from './go-url.ts';

export const CONFIG_API_VERSIONS: readonly string[] = [
  'kubelet.config.k8s.io/v1',
  'kubelet.config.k8s.io/v1beta1',
  'kubelet.config.k8s.io/v1alpha1',
];

export const PROVIDER_API_VERSIONS: readonly string[] = [
  'credentialprovider.kubelet.k8s.io/v1',
  'credentialprovider.kubelet.k8s.io/v1beta1',
  'credentialprovider.kubelet.k8s.io/v1alpha1',
];

export interface ProviderTokenAttributes {
  readonly serviceAccountTokenAudience: string;
  readonly requireServiceAccount: boolean | undefined;
  readonly requiredServiceAccountAnnotationKeys: readonly string[];
  readonly optionalServiceAccountAnnotationKeys: readonly string[];
}

export interface CredentialProviderSpec {
  /** Executable file name inside the plugin directory. */
  readonly name: string;
  readonly matchImages: readonly string[];
  /** `defaultCacheDuration` in milliseconds; 0 means responses without `cacheDuration` are not cached. */
  readonly defaultCacheDurationMs: number;
  /** Request/response apiVersion, e.g. `credentialprovider.kubelet.k8s.io/v1`. */
  readonly apiVersion: string;
  readonly args: readonly string[];
  /** Appended to the environment, overriding same-named variables. */
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  /** Service-account token mode (KEP-4412): the plugin gets the pod's service account token. */
  readonly tokenAttributes: ProviderTokenAttributes | undefined;
}

export interface CredentialProviderConfig {
  readonly providers: readonly CredentialProviderSpec[];
}

/** Validates and converts; throws a ProviderConfigError listing every problem. */
export function parseCredentialProviderConfig(document: unknown, path?: string): CredentialProviderConfig {
  const problems: string[] = [];
  if (!isJsonObject(document))
    throw new ProviderConfigError([`expected an object, found ${jsonTypeName(document)}`], path);
  if (document['kind'] !== 'CredentialProviderConfig') {
    problems.push(`kind: must be "CredentialProviderConfig", found ${describe(document['kind'])}`);
  }
  if (typeof document['apiVersion'] !== 'string' || !CONFIG_API_VERSIONS.includes(document['apiVersion'])) {
    problems.push(
      `apiVersion: must be one of ${CONFIG_API_VERSIONS.join(', ')}, found ${describe(document['apiVersion'])}`,
    );
  }
  const providersValue = document['providers'];
  const providers: CredentialProviderSpec[] = [];
  if (providersValue !== undefined && providersValue !== null && !Array.isArray(providersValue)) {
    problems.push(`providers: expected a list, found ${jsonTypeName(providersValue)}`);
  } else if (!Array.isArray(providersValue) || providersValue.length === 0) {
    problems.push('providers: Required value: at least 1 item in plugins is required');
  } else {
    const seen = new Set<string>();
    providersValue.forEach((value: unknown, i) => {
      const provider = parseProvider(value, `providers[${i}]`, problems);
      if (provider === undefined) return;
      if (seen.has(provider.name))
        problems.push(`providers[${i}].name: Duplicate value: ${JSON.stringify(provider.name)}`);
      seen.add(provider.name);
      providers.push(provider);
    });
  }
  if (problems.length > 0) throw new ProviderConfigError(problems, path);
  return { providers };
}

function parseProvider(value: unknown, at: string, problems: string[]): CredentialProviderSpec | undefined {
  if (!isJsonObject(value)) {
    problems.push(`${at}: expected an object, found ${jsonTypeName(value)}`);
    return undefined;
  }
  const before = problems.length;
  const name = stringField(value, 'name', at, problems) ?? '';
  if (name === '') problems.push(`${at}.name: Required value`);
  if (name.includes('/'))
    problems.push(`${at}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain '/'`);
  if (name.includes(' '))
    problems.push(`${at}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain spaces`);
  if (name === '.' || name === '..') {
    problems.push(`${at}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot be '${name}'`);
  }

  const apiVersion = stringField(value, 'apiVersion', at, problems) ?? '';
  if (apiVersion === '') problems.push(`${at}.apiVersion: Required value`);
  else if (!PROVIDER_API_VERSIONS.includes(apiVersion)) {
    problems.push(
      `${at}.apiVersion: Unsupported value: ${JSON.stringify(apiVersion)}: supported values: ${PROVIDER_API_VERSIONS.join(', ')}`,
    );
  }

  const matchImages = stringList(value, 'matchImages', at, problems);
  if (matchImages.length === 0)
    problems.push(`${at}.matchImages: Required value: at least 1 item in matchImages is required`);
  for (const matchImage of matchImages) {
    if (parseSchemelessUrl(matchImage) === undefined) {
      problems.push(`${at}.matchImages: Invalid value: ${JSON.stringify(matchImage)}: match image is invalid`);
    }
  }

  let defaultCacheDurationMs = 0;
  const duration = value['defaultCacheDuration'];
  if (duration === undefined || duration === null) {
    problems.push(`${at}.defaultCacheDuration: Required value`);
  } else if (typeof duration !== 'string') {
    problems.push(
      `${at}.defaultCacheDuration: expected a duration string such as "12h", found ${jsonTypeName(duration)}`,
    );
  } else {
    const ns = parseGoDuration(duration);
    if (ns === undefined) problems.push(`${at}.defaultCacheDuration: invalid duration ${JSON.stringify(duration)}`);
    else if (ns < 0n)
      problems.push(
        `${at}.defaultCacheDuration: Invalid value: ${JSON.stringify(duration)}: must be greater than or equal to 0`,
      );
    else defaultCacheDurationMs = Number(ns) / 1e6;
  }

  const args = stringList(value, 'args', at, problems);
  const env = envList(value, at, problems);
  const tokenAttributes = parseTokenAttributes(value['tokenAttributes'], `${at}.tokenAttributes`, problems);
  // kubernetes pkg/credentialprovider/plugin/config.go validateCredentialProviderConfig.
  if (tokenAttributes !== undefined && apiVersion !== 'credentialprovider.kubelet.k8s.io/v1')
    problems.push(
      `${at}.tokenAttributes: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version`,
    );
  if (problems.length > before) return undefined;
  return { name, matchImages, defaultCacheDurationMs, apiVersion, args, env, tokenAttributes };
}

function parseTokenAttributes(value: unknown, at: string, problems: string[]): ProviderTokenAttributes | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isJsonObject(value)) {
    problems.push(`${at}: expected an object, found ${jsonTypeName(value)}`);
    return undefined;
  }
  const audience = stringField(value, 'serviceAccountTokenAudience', at, problems) ?? '';
  if (audience === '') problems.push(`${at}.serviceAccountTokenAudience: Required value`);
  const require = value['requireServiceAccount'];
  if (require !== undefined && require !== null && typeof require !== 'boolean') {
    problems.push(`${at}.requireServiceAccount: expected a bool, found ${jsonTypeName(require)}`);
  } else if (require === undefined || require === null) {
    problems.push(`${at}.requireServiceAccount: Required value: requireServiceAccount is required`);
  }
  const required = stringList(value, 'requiredServiceAccountAnnotationKeys', at, problems);
  const optional = stringList(value, 'optionalServiceAccountAnnotationKeys', at, problems);
  if (require === false && required.length > 0)
    problems.push(
      `${at}.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set`,
    );
  for (const [field, keys] of [
    ['requiredServiceAccountAnnotationKeys', required],
    ['optionalServiceAccountAnnotationKeys', optional],
  ] as const) {
    const seen = new Set<string>();
    keys.forEach((key, i) => {
      if (seen.has(key)) problems.push(`${at}.${field}[${i}]: Duplicate value: ${JSON.stringify(key)}`);
      seen.add(key);
    });
  }
  const both = required.find((key) => optional.includes(key));
  if (both !== undefined)
    problems.push(
      `${at}: Invalid value: ${JSON.stringify(both)}: annotation key must not be both required and optional`,
    );
  return {
    serviceAccountTokenAudience: audience,
    requireServiceAccount: typeof require === 'boolean' ? require : undefined,
    requiredServiceAccountAnnotationKeys: required,
    optionalServiceAccountAnnotationKeys: optional,
  };
}

function stringField(object: JsonObject, field: string, at: string, problems: string[]): string | undefined {
  const value = object[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  problems.push(`${at}.${field}: expected a string, found ${jsonTypeName(value)}`);
  return undefined;
}

function stringList(object: JsonObject, field: string, at: string, problems: string[]): string[] {
  const value = object[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${at}.${field}: expected a list of strings, found ${jsonTypeName(value)}`);
    return [];
  }
  const strings: string[] = [];
  value.forEach((item: unknown, i) => {
    if (typeof item === 'string') strings.push(item);
    else problems.push(`${at}.${field}[${i}]: expected a string, found ${jsonTypeName(item)}`);
  });
  return strings;
}

function envList(object: JsonObject, at: string, problems: string[]): { name: string; value: string }[] {
  const value = object['env'];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${at}.env: expected a list, found ${jsonTypeName(value)}`);
    return [];
  }
  const env: { name: string; value: string }[] = [];
  value.forEach((item: unknown, i) => {
    // Values are never quoted in problems: plugin environments often carry secrets.
    if (!isJsonObject(item) || typeof item['name'] !== 'string' || typeof item['value'] !== 'string') {
      problems.push(`${at}.env[${i}]: expected {name, value} strings`);
      return;
    }
    env.push({ name: item['name'], value: item['value'] });
  });
  return env;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : jsonTypeName(value);
}
