/**
 * Kubelet credential provider plugins (docs/semantics.md kubelet §9): a plugin runs when one of its
 * `matchImages` matches the image (keyring Match, no Docker Hub fallback); its response is cached
 * by `cacheKeyType` for `cacheDuration` (else `defaultCacheDuration`; 0 = not cached); identical
 * concurrent requests share one run. Any failure yields no credentials from that plugin and is
 * reported to `onError`, never thrown. The `auth` maps of all matching plugins feed one keyring.
 *
 * A plugin with `tokenAttributes` runs in service-account token mode (see service-account.ts):
 * for a pod with a service account it gets the account's token and selected annotations, its
 * answers are cached and single-flighted per account, and its credentials carry the account as
 * their source (KEP-2535 records it, so the next pod of that account does not pull again).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SingleFlight } from '../signals/index.ts';
import { CredentialProviderError, type CredentialProviderFailure } from './errors.ts';
import { InputProblem } from './go-json.ts';
import {
  Keyring,
  imageNameString,
  urlsMatch,
  type CredentialOrigin,
  type ImageName,
  type KeyringMatch,
} from './keyring.ts';
import type { KubeletDockerConfig } from './kubelet-config.ts';
import { ProviderCache, cacheKeyFor, type TimeSource } from './provider-cache.ts';
import type { CredentialProviderConfig, CredentialProviderSpec } from './provider-config.ts';
import { parseProviderResponse, providerRequest } from './provider-response.ts';
import { runProgram, type ProgramOutcome, type ProgramRunner } from './run-program.ts';
import {
  selectAnnotations,
  serviceAccountCacheKey,
  type PluginPodContext,
  type ServiceAccountAccess,
  type ServiceAccountScope,
} from './service-account.ts';

export const PROVIDER_TIMEOUT_MS = 60_000;

export interface CredentialProviderOptions {
  /** The kubelet's `--image-credential-provider-bin-dir`. */
  readonly binDir: string;
  readonly clock?: TimeSource;
  /** The environment plugins inherit (the spec's `env` is laid over it); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
  readonly runProgram?: ProgramRunner;
  /** Where failed runs are reported (the kubelet logs them and pulls on). */
  readonly onError?: (error: CredentialProviderError) => void;
  /** Service accounts and their tokens, for plugins with `tokenAttributes`; without it such
   * plugins are reported `unsupported` and not run. */
  readonly serviceAccounts?: ServiceAccountAccess;
}

/** One plugin's answer for an image: its `auth` map and where those credentials come from. */
export interface PluginAnswer {
  readonly auth: KubeletDockerConfig;
  readonly source: CredentialOrigin;
}

/** What a service-account-mode run sends besides the image. */
interface ServiceAccountRun {
  readonly scope: ServiceAccountScope;
  readonly token: string;
}

export class CredentialProviderPlugin {
  readonly spec: CredentialProviderSpec;
  readonly #options: CredentialProviderOptions;
  readonly #clock: TimeSource;
  readonly #cache: ProviderCache;
  readonly #runs = new SingleFlight<KubeletDockerConfig>();

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
  async provide(image: string, pod?: PluginPodContext): Promise<KubeletDockerConfig> {
    return (await this.answer(image, pod)).auth;
  }

  /** The `auth` map with its source: the service account it was issued for, or the plugin. */
  async answer(image: string, pod?: PluginPodContext): Promise<PluginAnswer> {
    const plain: PluginAnswer = { auth: [], source: { kind: 'plugin', provider: this.spec.name } };
    if (!this.matches(image)) return plain;
    let account: ServiceAccountRun | undefined;
    if (this.spec.tokenAttributes !== undefined) {
      const prepared = await this.#serviceAccountRun(image, pod);
      if (prepared === 'skip') return plain;
      account = prepared;
    }
    const scope = account === undefined ? '' : serviceAccountCacheKey(account.scope);
    const source: CredentialOrigin =
      account === undefined
        ? plain.source
        : {
            kind: 'serviceAccount',
            namespace: account.scope.namespace,
            name: account.scope.name,
            uid: account.scope.uid,
            provider: this.spec.name,
          };
    const cached = this.#cache.get(image, scope);
    if (cached !== undefined) return { auth: cached, source };
    // Upstream single-flights service-account runs by image, token hash and annotations.
    const flightKey =
      account === undefined
        ? image
        : JSON.stringify([image, createHash('sha256').update(account.token).digest('hex'), scope]);
    const { result } = this.#runs.run(flightKey, () => this.#runAndCache(image, account, scope));
    return { auth: await result, source };
  }

  /**
   * The kubelet's steps before a service-account-mode run (plugin.go `provide`): no service
   * account and `requireServiceAccount` → not run; no service account otherwise → run without a
   * token; else the account must exist with every required annotation, and a token is asked for.
   */
  async #serviceAccountRun(
    image: string,
    pod: PluginPodContext | undefined,
  ): Promise<ServiceAccountRun | 'skip' | undefined> {
    const attributes = this.spec.tokenAttributes;
    if (attributes === undefined) return undefined;
    const name = pod?.serviceAccountName ?? '';
    if (name === '') return attributes.requireServiceAccount === true ? 'skip' : undefined;
    const access = this.#options.serviceAccounts;
    if (access === undefined || pod === undefined) {
      this.#report(image, 'unsupported', 'service-account token mode: no service account token source is configured');
      return 'skip';
    }
    const where = `${pod.namespace}/${name}`;
    try {
      const account = await access.getServiceAccount(pod.namespace, name);
      if (account === undefined) {
        this.#report(image, 'unsupported', `service account ${where} not found`);
        return 'skip';
      }
      const annotations = selectAnnotations(
        account.annotations,
        attributes.requiredServiceAccountAnnotationKeys,
        attributes.optionalServiceAccountAnnotationKeys,
      );
      // A missing required annotation is how a workload opts out: quietly not run.
      if (annotations === undefined) return 'skip';
      const token = await access.getServiceAccountToken({
        namespace: pod.namespace,
        serviceAccountName: name,
        audience: attributes.serviceAccountTokenAudience,
        podName: pod.name ?? '',
        podUid: pod.uid ?? '',
      });
      return { scope: { namespace: pod.namespace, name, uid: account.uid, annotations }, token };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.#report(image, 'unsupported', `service account ${where}: ${why}`);
      return 'skip';
    }
  }

  async #runAndCache(
    image: string,
    account: ServiceAccountRun | undefined,
    scope: string,
  ): Promise<KubeletDockerConfig> {
    const run = this.#options.runProgram ?? runProgram;
    const env = { ...(this.#options.env ?? process.env) };
    for (const variable of this.spec.env) env[variable.name] = variable.value;
    const outcome = await run(join(this.#options.binDir, this.spec.name), this.spec.args, {
      input: providerRequest(
        this.spec.apiVersion,
        image,
        account === undefined ? undefined : { token: account.token, annotations: account.scope.annotations },
      ),
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
      this.#cache.set(cacheKeyFor(response.cacheKeyType, image), response.auth, this.#clock() + duration, scope);
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

  /** The keyring built from every matching plugin, in configuration order; `pod` is what
   * service-account-mode plugins run for. */
  async keyringFor(image: ImageName, pod?: PluginPodContext): Promise<Keyring> {
    const name = imageNameString(image);
    const answers = await Promise.all(this.plugins.map((plugin) => plugin.answer(name, pod)));
    const keyring = new Keyring();
    for (const answer of answers) keyring.add(answer.source, answer.auth);
    return keyring;
  }

  async lookup(image: ImageName, pod?: PluginPodContext): Promise<KeyringMatch[]> {
    return (await this.keyringFor(image, pod)).lookup(image);
  }
}
