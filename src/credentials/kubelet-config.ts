/**
 * The kubelet's reading of Docker credential documents (`pkg/credentialprovider/config.go`):
 * `.dockercfg` (a map of entries) and `.dockerconfigjson` / `config.json` (`{"auths": map}`).
 * Go JSON rules apply (see go-json.ts); any invalid entry fails the whole document.
 */
import { BasicCredential } from './credential.ts';
import { decodeGoBase64, encodeBase64 } from './go-base64.ts';
import {
  InputProblem,
  goJsonString,
  isJsonObject,
  jsonTypeName,
  readField,
  readStringFields,
  type JsonObject,
} from './go-json.ts';

/**
 * Registry key → credential (`{username, password, email}`, as the kubelet keeps it), in document
 * order. Credentials are BasicCredential objects so a logged config shows `<redacted>`.
 */
export type KubeletDockerConfig = ReadonlyArray<readonly [key: string, credential: BasicCredential]>;

export const AUTH_FORMAT_PROBLEM = 'unable to parse auth field, must be formatted as base64(username:password)';

/** A `.dockercfg` document: the registry map itself. Throws InputProblem. */
export function decodeDockercfg(document: unknown): KubeletDockerConfig {
  if (document === null) return [];
  if (!isJsonObject(document))
    throw new InputProblem(`expected an object of registry entries, found ${jsonTypeName(document)}`);
  return decodeEntries(document, '');
}

/** A `.dockerconfigjson` / `config.json` document: `{"auths": {...}}`. Throws InputProblem. */
export function decodeDockerConfigJson(document: unknown): KubeletDockerConfig {
  if (document === null) return [];
  if (!isJsonObject(document))
    throw new InputProblem(`expected an object with "auths", found ${jsonTypeName(document)}`);
  const headers = readField(document, 'HttpHeaders');
  if (headers !== undefined && headers !== null) {
    if (!isJsonObject(headers))
      throw new InputProblem(`HttpHeaders: expected an object, found ${jsonTypeName(headers)}`);
    for (const [name, value] of Object.entries(headers)) {
      if (value !== null && typeof value !== 'string') {
        throw new InputProblem(`HttpHeaders[${JSON.stringify(name)}]: expected a string, found ${jsonTypeName(value)}`);
      }
    }
  }
  const auths = readField(document, 'auths');
  if (auths === undefined || auths === null) return [];
  if (!isJsonObject(auths)) throw new InputProblem(`auths: expected an object, found ${jsonTypeName(auths)}`);
  return decodeEntries(auths, 'auths');
}

function decodeEntries(map: JsonObject, prefix: string): KubeletDockerConfig {
  return Object.entries(map).map(
    ([key, value]) => [key, decodeEntry(value, `${prefix}[${JSON.stringify(key)}]`)] as const,
  );
}

/** One entry; a non-empty `auth` replaces `username`/`password`. */
export function decodeEntry(value: unknown, where: string): BasicCredential {
  if (value === null) return new BasicCredential('', '');
  if (!isJsonObject(value)) throw new InputProblem(`${where}: expected an object, found ${jsonTypeName(value)}`);
  const fields = readStringFields(value, ['username', 'password', 'email', 'auth'], `${where}.`);
  const email = fields.email ?? '';
  if (fields.auth === undefined || fields.auth === '') {
    return new BasicCredential(fields.username ?? '', fields.password ?? '', email);
  }
  const decoded = decodeAuthField(fields.auth, `${where}.auth`);
  return new BasicCredential(decoded.username, decoded.password, email);
}

/**
 * The kubelet's `decodeDockerConfigFieldAuth`: padded decoding when the trimmed value ends in
 * `=`, unpadded otherwise; the decoded text is split at the first `:` and not trimmed.
 */
export function decodeAuthField(auth: string, where: string): { username: string; password: string } {
  const result = decodeGoBase64(auth, auth.trim().endsWith('='));
  if (!result.ok) throw new InputProblem(`${where}: illegal base64 data at input byte ${result.offset}`);
  const text = result.bytes.toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new InputProblem(`${where}: ${AUTH_FORMAT_PROBLEM}`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * The kubelet's JSON for one entry (`DockerConfigEntry.MarshalJSON`): `username`, `password`,
 * `email`, `auth` in that order, empty ones omitted; `auth` is the padded base64 of
 * `username:password`, so it is always present.
 */
export function encodeKubeletEntry(entry: {
  readonly username: string;
  readonly password: string;
  readonly email: string;
}): string {
  const fields: [string, string][] = [
    ['username', entry.username],
    ['password', entry.password],
    ['email', entry.email],
    ['auth', encodeBase64(`${entry.username}:${entry.password}`)],
  ];
  const body = fields.filter(([, value]) => value !== '').map(([name, value]) => `"${name}":${goJsonString(value)}`);
  return `{${body.join(',')}}`;
}
