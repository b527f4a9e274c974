/**
 * The kubelet credential provider exec protocol (docs/semantics.md kubelet §9), pure: building the
 * `CredentialProviderRequest` and reading a `CredentialProviderResponse`. Problems name fields
 * and types, never values (the response carries passwords).
 */
import { parseGoDuration } from './go-duration.ts';
import { InputProblem, isJsonObject, jsonTypeName, parseJsonQuietly } from './go-json.ts';
import { BasicCredential } from './credential.ts';
import type { KubeletDockerConfig } from './kubelet-config.ts';

export type CacheKeyType = 'Image' | 'Registry' | 'Global';

export interface ProviderResponse {
  readonly cacheKeyType: CacheKeyType;
  /** Undefined when absent (the provider's default applies); 0 means "do not cache". */
  readonly cacheDurationMs: number | undefined;
  /** Match key → credential, in response order. */
  readonly auth: KubeletDockerConfig;
}

/** The request JSON sent on the plugin's stdin; service-account mode adds the token and the
 * selected annotations (both omitted when empty, as Go's `omitempty` does). */
export function providerRequest(
  apiVersion: string,
  image: string,
  serviceAccount:
    { readonly token: string; readonly annotations: Readonly<Record<string, string>> } | undefined = undefined,
): string {
  return JSON.stringify({
    apiVersion,
    kind: 'CredentialProviderRequest',
    image,
    ...(serviceAccount !== undefined && serviceAccount.token !== '' && { serviceAccountToken: serviceAccount.token }),
    ...(serviceAccount !== undefined &&
      Object.keys(serviceAccount.annotations).length > 0 && { serviceAccountAnnotations: serviceAccount.annotations }),
  });
}

/** Reads a plugin's stdout; throws InputProblem (safe to show) when the kubelet would drop it. */
export function parseProviderResponse(stdout: string, expectedApiVersion: string): ProviderResponse {
  const document = parseJsonQuietly(stdout, 'response');
  if (!isJsonObject(document))
    throw new InputProblem(`response is not a JSON object (found ${jsonTypeName(document)})`);
  const apiVersion = document['apiVersion'];
  if (apiVersion !== expectedApiVersion) {
    throw new InputProblem(
      `apiVersion from credential plugin response did not match expected apiVersion:${expectedApiVersion}, actual apiVersion:${showToken(apiVersion)}`,
    );
  }
  if (document['kind'] !== 'CredentialProviderResponse') {
    throw new InputProblem(
      `failed to decode CredentialProviderResponse, unexpected Kind: ${showToken(document['kind'])}`,
    );
  }

  let cacheDurationMs: number | undefined;
  const duration = document['cacheDuration'];
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'string')
      throw new InputProblem(`cacheDuration: expected a duration string, found ${jsonTypeName(duration)}`);
    const ns = parseGoDuration(duration);
    if (ns === undefined) throw new InputProblem('cacheDuration: not a valid duration');
    cacheDurationMs = Number(ns) / 1e6;
  }

  const auth: (readonly [string, BasicCredential])[] = [];
  const authValue = document['auth'];
  if (authValue !== undefined && authValue !== null) {
    if (!isJsonObject(authValue)) throw new InputProblem(`auth: expected an object, found ${jsonTypeName(authValue)}`);
    for (const [key, entry] of Object.entries(authValue)) auth.push([key, readAuthConfig(entry, key)]);
  }

  const cacheKeyType = document['cacheKeyType'];
  if (cacheKeyType !== 'Image' && cacheKeyType !== 'Registry' && cacheKeyType !== 'Global') {
    if (cacheKeyType !== undefined && cacheKeyType !== null && typeof cacheKeyType !== 'string') {
      throw new InputProblem(`cacheKeyType: expected a string, found ${jsonTypeName(cacheKeyType)}`);
    }
    throw new InputProblem(
      `credential provider plugin did not return a valid cacheKeyType: ${showToken(cacheKeyType ?? '')}`,
    );
  }
  return { cacheKeyType, cacheDurationMs, auth };
}

function readAuthConfig(value: unknown, key: string): BasicCredential {
  const where = `auth[${JSON.stringify(key)}]`;
  if (value === null) return new BasicCredential('', '');
  if (!isJsonObject(value)) throw new InputProblem(`${where}: expected an object, found ${jsonTypeName(value)}`);
  const field = (name: 'username' | 'password'): string => {
    const v = value[name];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw new InputProblem(`${where}.${name}: expected a string, found ${jsonTypeName(v)}`);
    return v;
  };
  return new BasicCredential(field('username'), field('password'));
}

/** A protocol token shown in a message only when it looks like one, so no secret slips through. */
function showToken(value: unknown): string {
  if (typeof value !== 'string') return jsonTypeName(value);
  return /^[A-Za-z0-9./_-]{0,64}$/.test(value) ? JSON.stringify(value) : '(a string, not shown)';
}
