/**
 * Kubelet credential provider plugins (kubelet.md §9): a plugin runs when one of its
 * `matchImages` matches the image (keyring Match, no Docker Hub fallback); its response is cached
 * by `cacheKeyType` for `cacheDuration` (else `defaultCacheDuration`; 0 = not cached); identical
 * concurrent requests share one run. Any failure yields no credentials from that plugin and is
 * reported to `onError`, never thrown. The `auth` maps of all matching plugins feed one keyring.
 */
import { join } from 'node:path';
import { CredentialProviderError, type CredentialProviderFailure } from './errors.ts';
import { InputProblem } from './go-json.ts';
import { Keyring, imageNameString, urlsMatch, type ImageName, type KeyringMatch } from './keyring.ts';
import type { KubeletDockerConfig } from './kubelet-config.ts';
import { ProviderCache, cacheKeyFor, type Clock } from './provider-cache.ts';
import type { CredentialProviderConfig, CredentialProviderSpec } from './provider-config.ts';
import { parseProviderResponse, providerRequest } from './provider-response.ts';
import { runProgram, type ProgramOutcome, type ProgramRunner } from './run-program.ts';

export const PROVIDER_TIMEOUT_MS = 60_000;

export interface CredentialProviderOptions {
  /** The kubelet's `--image-credential-provider-bin-dir`. */
  readonly binDir: string;
  readonly clock?: Clock;
  /** The environment plugins inherit (the spec's `env` is laid over it); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
  readonly runProgram?: ProgramRunner;
  /** Where failed runs are reported (the kubelet logs them and pulls on). */
  readonly onError?: (error: CredentialProviderError) => void;
}

export class CredentialProviderPlugin {
  readonly spec: CredentialProviderSpec;
  readonly #options: CredentialProviderOptions;
  readonly #clock: Clock;
  readonly #cache: ProviderCache;
  readonly #inFlight = new Map<string, Promise<KubeletDockerConfig>>();

  constructor(spec: CredentialProviderSpec, options: CredentialProviderOptions) {
    this.spec = spec;
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#cache = new ProviderCache(this.#clock);
  }

  /** True when one `matchImages` glob matches the lookup key (no Docker Hub fallback). */
  matches(image: string): boolean {
    return this.spec.matchImages.some((pattern) => urlsMatch(pattern, image));
  }

  /** The plugin's `auth` map for the image: from the cache, a shared run, or a new run. */
  async provide(image: string): Promise<KubeletDockerConfig> {
    if (!this.matches(image)) return [];
    if (this.spec.tokenAttributes !== undefined) {
      this.#report(
        image,
        'unsupported',
        'service-account token mode needs a pod-bound token, which kimg does not mint',
      );
      return [];
    }
    const cached = this.#cache.get(image);
    if (cached !== undefined) return cached;
    let pending = this.#inFlight.get(image);
    if (pending === undefined) {
      pending = this.#runAndCache(image).finally(() => this.#inFlight.delete(image));
      this.#inFlight.set(image, pending);
    }
    return pending;
  }

  async #runAndCache(image: string): Promise<KubeletDockerConfig> {
    const run = this.#options.runProgram ?? runProgram;
    const env = { ...(this.#options.env ?? process.env) };
    for (const variable of this.spec.env) env[variable.name] = variable.value;
    const outcome = await run(join(this.#options.binDir, this.spec.name), this.spec.args, {
      input: providerRequest(this.spec.apiVersion, image),
      env,
      timeoutMs: this.#options.timeoutMs ?? PROVIDER_TIMEOUT_MS,
    });
    const stdout = this.#stdoutOrReport(image, outcome);
    if (stdout === undefined) return [];

    let response;
    try {
      response = parseProviderResponse(stdout, this.spec.apiVersion);
    } catch (err) {
      if (!(err instanceof InputProblem)) throw err;
      this.#report(image, 'invalid-response', err.message);
      return [];
    }
    const duration = response.cacheDurationMs ?? this.spec.defaultCacheDurationMs;
    if (duration !== 0) {
      this.#cache.set(cacheKeyFor(response.cacheKeyType, image), response.auth, this.#clock() + duration);
    }
    return response.auth;
  }

  #stdoutOrReport(image: string, outcome: ProgramOutcome): string | undefined {
    switch (outcome.kind) {
      case 'exited':
        if (outcome.exitCode === 0) return outcome.stdout.toString('utf8');
        this.#report(image, 'failed', undefined, { exitCode: outcome.exitCode });
        return undefined;
      case 'signalled':
        this.#report(image, 'failed', undefined, { signal: outcome.signal });
        return undefined;
      case 'not-found':
        this.#report(image, 'not-installed', `no executable at ${join(this.#options.binDir, this.spec.name)}`);
        return undefined;
      case 'not-executable':
        this.#report(
          image,
          'not-installed',
          `cannot execute ${join(this.#options.binDir, this.spec.name)} (${outcome.code})`,
        );
        return undefined;
      case 'timeout':
        this.#report(image, 'timeout');
        return undefined;
      case 'output-too-large':
        this.#report(image, 'invalid-response', 'more than 1 MiB on stdout');
        return undefined;
    }
  }

  #report(
    image: string,
    reason: CredentialProviderFailure,
    problem?: string,
    detail: { exitCode?: number; signal?: string } = {},
  ): void {
    this.#options.onError?.(new CredentialProviderError(this.spec.name, image, reason, { ...detail, problem }));
  }
}

/** Every configured plugin; one keyring per lookup from all matching plugins' answers. */
export class CredentialProviders {
  readonly plugins: readonly CredentialProviderPlugin[];

  constructor(config: CredentialProviderConfig, options: CredentialProviderOptions) {
    this.plugins = config.providers.map((spec) => new CredentialProviderPlugin(spec, options));
  }

  /** The keyring built from every matching plugin, in configuration order. */
  async keyringFor(image: ImageName): Promise<Keyring> {
    const name = imageNameString(image);
    const answers = await Promise.all(this.plugins.map((plugin) => plugin.provide(name)));
    const keyring = new Keyring();
    answers.forEach((config, i) => {
      const plugin = this.plugins[i];
      if (plugin !== undefined) keyring.add({ kind: 'plugin', provider: plugin.spec.name }, config);
    });
    return keyring;
  }

  async lookup(image: ImageName): Promise<KeyringMatch[]> {
    return (await this.keyringFor(image)).lookup(image);
  }
}
