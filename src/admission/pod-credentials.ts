/**
 * Which credentials a lookup may use (docs/semantics.md admission §4.8): the pod's (or template's) `imagePullSecrets`,
 * then its ServiceAccount's pull secrets (`serviceAccountName`, default `default`), both in the
 * request's namespace, then a Docker config file. Pull secrets match on the image's logical
 * registry with the kubelet's keyring rules; Secrets and ServiceAccounts come from an in-memory
 * source (an informer cache or a file), never one API call per admission. A missing Secret is
 * skipped; a malformed one is skipped with a note.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYamlAll } from './yaml.ts';
import {
  HostCredentialResolver,
  keyringFromPullSecrets,
  type Keyring,
  type SecretObject,
} from '../credentials/index.ts';
import { toClientCredential } from '../pull/index.ts';
import type { RegistryCredential } from './resolver.ts';

/**
 * Candidate credentials for one image, best first. `registry` is the logical registry
 * (`docker.io`, `ghcr.io`), `repository` the normalized repository (`docker.io/library/nginx`).
 */
export type CredentialLookup = (
  registry: string,
  repository: string,
) => readonly RegistryCredential[] | Promise<readonly RegistryCredential[]>;

/** The part of a core/v1 ServiceAccount read here. */
export interface ServiceAccountObject {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly imagePullSecrets?: readonly { readonly name?: string }[];
}

/** Secrets and ServiceAccounts by namespace and name, held in memory. */
export interface ClusterObjectSource {
  getSecret(namespace: string, name: string): SecretObject | undefined;
  getServiceAccount(namespace: string, name: string): ServiceAccountObject | undefined;
  /** Keyring of one Secret (cached by the source while the Secret is unchanged); undefined when absent or unusable. */
  keyringOf?(namespace: string, name: string): Keyring | undefined;
  /** False until the first full listing is in (informer); readiness waits for it. */
  readonly synced: boolean;
  close?(): Promise<void>;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An in-memory source, filled from objects (`Secret`, `ServiceAccount`; others ignored). The
 * informer and `secretSource: {file}` both feed one.
 */
export class MemoryObjectSource implements ClusterObjectSource {
  private readonly secrets = new Map<string, SecretObject>();
  private readonly accounts = new Map<string, ServiceAccountObject>();
  private readonly keyrings = new Map<string, Keyring | null>();
  synced = true;

  constructor(
    objects: Iterable<unknown> = [],
    private readonly defaultNamespace = 'default',
  ) {
    for (const object of objects) this.upsert(object);
  }

  private static key(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  private identify(object: Readonly<Record<string, unknown>>): { namespace: string; name: string } | undefined {
    const metadata = object['metadata'];
    if (!isRecord(metadata) || typeof metadata['name'] !== 'string' || metadata['name'] === '') return undefined;
    const namespace =
      typeof metadata['namespace'] === 'string' && metadata['namespace'] !== ''
        ? metadata['namespace']
        : this.defaultNamespace;
    return { namespace, name: metadata['name'] };
  }

  /** Adds or replaces a Secret or ServiceAccount. */
  upsert(object: unknown): void {
    if (!isRecord(object)) return;
    const id = this.identify(object);
    if (id === undefined) return;
    const key = MemoryObjectSource.key(id.namespace, id.name);
    if (object['kind'] === 'Secret') {
      this.secrets.set(key, object as SecretObject);
      this.keyrings.delete(key);
    } else if (object['kind'] === 'ServiceAccount') {
      this.accounts.set(key, object as ServiceAccountObject);
    }
  }

  remove(kind: 'Secret' | 'ServiceAccount', namespace: string, name: string): void {
    const key = MemoryObjectSource.key(namespace, name);
    if (kind === 'Secret') {
      this.secrets.delete(key);
      this.keyrings.delete(key);
    } else {
      this.accounts.delete(key);
    }
  }

  /** Replaces everything of one kind (an informer's relist). */
  replaceAll(kind: 'Secret' | 'ServiceAccount', objects: Iterable<unknown>): void {
    if (kind === 'Secret') {
      this.secrets.clear();
      this.keyrings.clear();
    } else {
      this.accounts.clear();
    }
    for (const object of objects) if (isRecord(object)) this.upsert({ ...object, kind });
  }

  getSecret(namespace: string, name: string): SecretObject | undefined {
    return this.secrets.get(MemoryObjectSource.key(namespace, name));
  }

  getServiceAccount(namespace: string, name: string): ServiceAccountObject | undefined {
    return this.accounts.get(MemoryObjectSource.key(namespace, name));
  }

  keyringOf(namespace: string, name: string): Keyring | undefined {
    const key = MemoryObjectSource.key(namespace, name);
    const cached = this.keyrings.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const secret = this.secrets.get(key);
    if (secret === undefined) return undefined;
    let keyring: Keyring | null;
    try {
      const built = keyringFromPullSecrets([secret], { defaultNamespace: namespace });
      keyring = built.isEmpty ? null : built;
    } catch {
      // A malformed pull secret fails the kubelet's lookup; for pinning it just gives nothing.
      keyring = null;
    }
    this.keyrings.set(key, keyring);
    return keyring ?? undefined;
  }
}

/** `secretSource: {file}`: a YAML (or JSON) stream of Secret and ServiceAccount objects; `kind: List` items are read too. */
export async function loadObjectFile(path: string): Promise<MemoryObjectSource> {
  const text = await readFile(path, 'utf8');
  const objects: unknown[] = [];
  for (const document of parseYamlAll(text, path)) {
    if (isRecord(document) && Array.isArray(document['items'])) objects.push(...(document['items'] as unknown[]));
    else objects.push(document);
  }
  return new MemoryObjectSource(objects);
}

function secretNames(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list) {
    if (isRecord(item) && typeof item['name'] === 'string' && item['name'] !== '') out.push(item['name']);
  }
  return out;
}

export interface DockerConfigCredentialOptions {
  /** How long an answer (a credential helper's included) is kept per repository; default 60 s, as the registry client keeps credentials. */
  readonly cacheMs?: number;
  /**
   * A credential helper still running after this long is killed; default 30 s. The webhook sets
   * its longest request budget: no request waits longer (each stops waiting at its own budget),
   * so a hung helper must not outlive that.
   */
  readonly helperTimeoutMs?: number;
  readonly now?: () => number;
}

/**
 * Docker config credentials for the logical registry host: the file is read once; answers
 * (credential helpers included) are kept per repository for `cacheMs`. Concurrent lookups share
 * one run of a helper per server; after `cacheMs` helpers are asked again, so rotating tokens
 * (ECR, GCR helpers) are picked up by a long-running webhook.
 */
export async function dockerConfigCredentials(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
  options: DockerConfigCredentialOptions = {},
): Promise<CredentialLookup> {
  const file = path ?? join(env['DOCKER_CONFIG'] ?? join(env['HOME'] ?? homedir(), '.docker'), 'config.json');
  const cacheMs = options.cacheMs ?? 60_000;
  const now = options.now ?? Date.now;
  const resolver = await HostCredentialResolver.load({
    paths: [file],
    env,
    helperCacheMs: cacheMs,
    now,
    ...(options.helperTimeoutMs !== undefined && { helperTimeoutMs: options.helperTimeoutMs }),
  });
  if (resolver.files.length === 0) return () => [];
  const answers = new Map<string, { at: number; value: readonly RegistryCredential[] }>();
  return (registry, repository) => {
    const known = answers.get(repository);
    if (known !== undefined && now() - known.at < cacheMs) return known.value;
    return resolver.resolve({ host: registry, repository: repository.slice(registry.length + 1) }).then((found) => {
      const value = found === undefined ? [] : [toClientCredential(found.credential)];
      if (answers.size > 10_000) answers.clear();
      answers.set(repository, { at: now(), value });
      return value;
    });
  };
}

function keyringCandidates(
  source: ClusterObjectSource,
  namespace: string,
  names: readonly string[],
  repository: string,
): RegistryCredential[] {
  const out: RegistryCredential[] = [];
  for (const name of names) {
    let keyring = source.keyringOf?.(namespace, name);
    if (keyring === undefined && source.keyringOf === undefined) {
      const secret = source.getSecret(namespace, name);
      if (secret === undefined) continue;
      try {
        keyring = keyringFromPullSecrets([secret], { defaultNamespace: namespace });
      } catch {
        continue;
      }
    }
    if (keyring === undefined) continue;
    for (const match of keyring.lookup(repository)) out.push(toClientCredential(match.credential));
  }
  return out;
}

/**
 * The credential lookup for one pod spec in `namespace`: its pull secrets, then its service
 * account's, then `fallback` (the Docker config). Nothing is read until an image needs it.
 */
export function podCredentials(
  podSpec: unknown,
  namespace: string,
  source: ClusterObjectSource | undefined,
  fallback?: CredentialLookup,
): CredentialLookup | undefined {
  const spec = isRecord(podSpec) ? podSpec : {};
  const podSecrets = secretNames(spec['imagePullSecrets']);
  const accountName =
    typeof spec['serviceAccountName'] === 'string' && spec['serviceAccountName'] !== ''
      ? spec['serviceAccountName']
      : 'default';
  if (source === undefined && fallback === undefined) return undefined;
  return (registry, repository) => {
    const out: RegistryCredential[] = [];
    if (source !== undefined) {
      out.push(...keyringCandidates(source, namespace, podSecrets, repository));
      const account = source.getServiceAccount(namespace, accountName);
      if (account !== undefined)
        out.push(...keyringCandidates(source, namespace, secretNames(account.imagePullSecrets), repository));
    }
    if (fallback === undefined) return out;
    const last = fallback(registry, repository);
    if (Array.isArray(last)) return last.length === 0 ? out : [...out, ...(last as readonly RegistryCredential[])];
    return Promise.resolve(last).then((list) => [...out, ...list]);
  };
}
