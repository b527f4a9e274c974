/**
 * Credentials for the registry client, chosen per host actually contacted (docs/semantics.md registry
 * §7, S13: a mirror never receives the upstream's credentials). Order: explicit credentials for
 * the host, then each credential file in turn (Docker config.json, then containers auth.json by
 * default), each file deciding by `credHelpers` > `credsStore` > `auths`. The first source with a
 * credential wins; none means anonymous.
 */
import type { Credential } from './credential.ts';
import {
  candidateKeys,
  normalizeAuthKey,
  resolveInDockerConfig,
  type DockerConfigFile,
  type RegistryTarget,
} from './docker-config.ts';
import {
  defaultCredentialFilePaths,
  loadCredentialFiles,
  type CredentialFileLocations,
} from './docker-config-files.ts';
import { getFromCredentialHelper } from './credential-helper.ts';
import { describeSource, type CredentialOrigin } from './keyring.ts';
import type { ProgramRunner } from './run-program.ts';

export interface HostCredential {
  readonly credential: Credential;
  readonly source: CredentialOrigin;
  /** For `explain` and logs: `docker config /home/u/.docker/config.json`, … */
  readonly sourceLabel: string;
  /** The config key that selected it, when one did. */
  readonly key: string | undefined;
}

export interface HostCredentialResolverOptions {
  /** Credentials given on the command line or API, by registry key (`host` or `host/namespace`). */
  readonly explicit?: Readonly<Record<string, Credential>>;
  /** Environment for credential helpers (PATH, HOME, …); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly helperTimeoutMs?: number;
  /** How long a helper's answer is kept (rotating tokens: ECR, GCR helpers); default for the
   * resolver's whole life. Concurrent requests share one run either way. */
  readonly helperCacheMs?: number;
  readonly now?: () => number;
  readonly runProgram?: ProgramRunner;
}

/**
 * Credentials for the registry client, chosen for the host actually contacted: explicit
 * credentials for that host, then each credential file in turn (Docker `config.json`, containers
 * `auth.json`), each deciding by `credHelpers` over `credsStore` over `auths`. Contract: a mirror
 * never receives the upstream registry's credentials; none found means anonymous; helper answers
 * are cached briefly and shared by concurrent requests.
 */
export class HostCredentialResolver {
  readonly #files: readonly DockerConfigFile[];
  readonly #options: HostCredentialResolverOptions;
  /** Helper answers (and runs in progress, shared by concurrent requests), with when they started. */
  readonly #helperResults = new Map<
    string,
    { readonly at: number; readonly pending: Promise<Credential | undefined> }
  >();

  constructor(files: readonly DockerConfigFile[], options: HostCredentialResolverOptions = {}) {
    this.#files = files;
    this.#options = options;
  }

  /** Reads the default files (`$DOCKER_CONFIG`/`~/.docker/config.json`, containers auth.json). */
  static async load(
    options: HostCredentialResolverOptions & CredentialFileLocations & { readonly paths?: readonly string[] } = {},
  ): Promise<HostCredentialResolver> {
    const locations = { env: options.env ?? process.env, home: options.home };
    const files = await loadCredentialFiles(options.paths ?? defaultCredentialFilePaths(locations));
    return new HostCredentialResolver(files, options);
  }

  get files(): readonly DockerConfigFile[] {
    return this.#files;
  }

  /** The credential for `target.host`, or undefined for anonymous access. */
  async resolve(target: RegistryTarget): Promise<HostCredential | undefined> {
    const explicit = this.#explicit(target);
    if (explicit !== undefined) return explicit;
    for (const file of this.#files) {
      const resolution = resolveInDockerConfig(file, target);
      if (resolution.kind === 'credential') {
        const source: CredentialOrigin = { kind: 'dockerConfig', path: file.path };
        return { credential: resolution.credential, source, sourceLabel: describeSource(source), key: resolution.key };
      }
      if (resolution.kind === 'helper') {
        const credential = await this.#runHelper(resolution.helper, resolution.serverURL);
        // "Not found" from this file's helper lets the next file answer, rather than going anonymous.
        if (credential === undefined) continue;
        const source: CredentialOrigin = { kind: 'dockerConfig', path: file.path, helper: resolution.helper };
        return { credential, source, sourceLabel: describeSource(source), key: resolution.key };
      }
    }
    return undefined;
  }

  #explicit(target: RegistryTarget): HostCredential | undefined {
    const explicit = this.#options.explicit;
    if (explicit === undefined) return undefined;
    const byKey = new Map(
      Object.entries(explicit).map(([key, credential]) => [normalizeAuthKey(key), { key, credential }]),
    );
    for (const candidate of candidateKeys(target)) {
      const found = byKey.get(candidate);
      if (found === undefined) continue;
      const source: CredentialOrigin = { kind: 'explicit' };
      return { credential: found.credential, source, sourceLabel: describeSource(source), key: found.key };
    }
    return undefined;
  }

  #runHelper(helper: string, serverURL: string): Promise<Credential | undefined> {
    const cacheKey = `${helper}\n${serverURL}`;
    const now = this.#options.now ?? Date.now;
    const maxAge = this.#options.helperCacheMs;
    const known = this.#helperResults.get(cacheKey);
    if (known !== undefined && (maxAge === undefined || now() - known.at < maxAge)) return known.pending;
    const entry = {
      at: now(),
      pending: getFromCredentialHelper(helper, serverURL, {
        env: this.#options.env ?? process.env,
        timeoutMs: this.#options.helperTimeoutMs,
        run: this.#options.runProgram,
      }),
    };
    // A failure is not remembered: the next pull may find the helper working again.
    entry.pending.catch(() => {
      if (this.#helperResults.get(cacheKey) === entry) this.#helperResults.delete(cacheKey);
    });
    this.#helperResults.set(cacheKey, entry);
    return entry.pending;
  }
}
