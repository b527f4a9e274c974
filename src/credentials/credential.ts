/**
 * Registry credentials. Secrets live in private fields behind getters, so the value is there for
 * the code that sends it but not for anything that serialises or prints the object by accident:
 * `JSON.stringify`, `String()`, template literals, `util.inspect`/`console.log`, object spread and
 * `structuredClone` all show `<redacted>` or nothing.
 */
import { inspect, type InspectOptions } from 'node:util';
import { encodeBase64 } from './go-base64.ts';

export const REDACTED = '<redacted>';

/** Username and password (HTTP Basic, or the password grant of a token exchange). */
export class BasicCredential {
  readonly kind = 'basic' as const;
  readonly username: string;
  /** Kept because the kubelet keeps it (it is part of the credential hash); never sent. */
  readonly email: string;
  readonly #password: string;

  constructor(username: string, password: string, email = '') {
    this.username = username;
    this.email = email;
    this.#password = password;
    Object.freeze(this);
  }

  get password(): string {
    return this.#password;
  }

  toJSON(): { kind: 'basic'; username: string; password: string } {
    return { kind: this.kind, username: this.username, password: REDACTED };
  }

  toString(): string {
    return `BasicCredential(username=${JSON.stringify(this.username)}, password=${REDACTED})`;
  }

  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `BasicCredential { username: ${inspect(this.username, options)}, password: ${REDACTED} }`;
  }
}

/** An OAuth2 refresh token (Docker's `identitytoken`; a helper's `<token>` user). */
export class IdentityTokenCredential {
  readonly kind = 'identityToken' as const;
  /** The account name shown alongside, when the source gave one; not needed for the exchange. */
  readonly username: string;
  readonly #identityToken: string;

  constructor(identityToken: string, username = '') {
    this.username = username;
    this.#identityToken = identityToken;
    Object.freeze(this);
  }

  get identityToken(): string {
    return this.#identityToken;
  }

  toJSON(): { kind: 'identityToken'; username: string; identityToken: string } {
    return { kind: this.kind, username: this.username, identityToken: REDACTED };
  }

  toString(): string {
    return `IdentityTokenCredential(username=${JSON.stringify(this.username)}, identityToken=${REDACTED})`;
  }

  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `IdentityTokenCredential { username: ${inspect(this.username, options)}, identityToken: ${REDACTED} }`;
  }
}

/** A bearer token sent to the registry as is (Docker's `registrytoken`). */
export class RegistryTokenCredential {
  readonly kind = 'registryToken' as const;
  readonly #registryToken: string;

  constructor(registryToken: string) {
    this.#registryToken = registryToken;
    Object.freeze(this);
  }

  get registryToken(): string {
    return this.#registryToken;
  }

  toJSON(): { kind: 'registryToken'; registryToken: string } {
    return { kind: this.kind, registryToken: REDACTED };
  }

  toString(): string {
    return `RegistryTokenCredential(registryToken=${REDACTED})`;
  }

  [inspect.custom](): string {
    return `RegistryTokenCredential { registryToken: ${REDACTED} }`;
  }
}

export type Credential = BasicCredential | IdentityTokenCredential | RegistryTokenCredential;

export function isCredential(value: unknown): value is Credential {
  return (
    value instanceof BasicCredential ||
    value instanceof IdentityTokenCredential ||
    value instanceof RegistryTokenCredential
  );
}

/**
 * Every spelling of the credential's secrets that could reach a log: the raw value, the Basic
 * `Authorization` payload, and the percent- and form-encoded forms a token request body uses.
 */
export function secretSpellings(credential: Credential): string[] {
  const raw: string[] = [];
  switch (credential.kind) {
    case 'basic':
      raw.push(credential.password);
      if (credential.password !== '') raw.push(encodeBase64(`${credential.username}:${credential.password}`));
      break;
    case 'identityToken':
      raw.push(credential.identityToken);
      break;
    case 'registryToken':
      raw.push(credential.registryToken);
      break;
  }
  const spellings = new Set<string>();
  for (const secret of raw) {
    if (secret === '') continue;
    spellings.add(secret);
    spellings.add(encodeURIComponent(secret));
    spellings.add(new URLSearchParams({ s: secret }).toString().slice(2));
  }
  return [...spellings];
}

/**
 * `text` with every occurrence of every secret replaced by `<redacted>`. Secrets may be strings
 * or credentials (all their spellings are covered); longer secrets are replaced first so one
 * secret containing another is not left half visible.
 */
export function redact(text: string, secrets: Iterable<string | Credential>): string {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret === 'string') {
      if (secret !== '') all.add(secret);
    } else {
      for (const spelling of secretSpellings(secret)) all.add(spelling);
    }
  }
  let result = text;
  for (const secret of [...all].sort((a, b) => b.length - a.length)) {
    result = result.split(secret).join(REDACTED);
  }
  return result;
}
