/** Assembling the webhook from a configuration (docs/semantics.md admission §3): resolver, Pinner, policy, credentials, metrics. */
import { readFile } from 'node:fs/promises';
import { KimgError } from '../errors/index.ts';
import { HostsConfigError, loadHostsConfig, type HostsConfig } from '../registry/hosts/index.ts';
import type { AdmissionConfig, ResolverConfig } from './config.ts';
import {
  dockerConfigCredentials,
  loadObjectFile,
  type ClusterObjectSource,
  type CredentialLookup,
} from './pod-credentials.ts';
import { AdmissionConfigError } from './errors.ts';
import { AdmissionHandler } from './handler.ts';
import { SecretInformer, type InformerOptions } from './informer.ts';
import { WebhookMetrics } from './metrics.ts';
import { Pinner } from './pinner.ts';
import { ImagePolicy } from './policy.ts';
import { RegistryResolver, type DigestResolver, type RegistryResolverOptions } from './resolver.ts';

function problemOf(err: unknown): string {
  if (err instanceof KimgError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined ? `cannot read it (${code})` : String(err);
}

/**
 * `hostsDir` and `registriesConf`, read as the pull engine reads them. Unlike containerd, which
 * skips a missing directory and fails only the registries of a broken hosts.toml at pull time,
 * the webhook refuses to start: a typo in a mount path would otherwise send every lookup past
 * its mirror, and a broken file would deny every admission for that registry.
 */
export async function loadResolverHosts(
  config: Pick<ResolverConfig, 'hostsDir' | 'registriesConf'>,
): Promise<HostsConfig | undefined> {
  if (config.hostsDir === undefined && config.registriesConf === undefined) return undefined;
  let fromDirs: HostsConfig = {};
  if (config.hostsDir !== undefined) {
    try {
      fromDirs = await loadHostsConfig({ hostsDir: config.hostsDir });
    } catch (err) {
      throw new AdmissionConfigError('resolver.hostsDir', problemOf(err));
    }
    const roots = fromDirs.containerd?.roots ?? [];
    if (roots.length === 0)
      throw new AdmissionConfigError('resolver.hostsDir', `${config.hostsDir}: no such directory`);
    for (const { dirs } of roots) {
      for (const dir of dirs.values())
        if (dir instanceof HostsConfigError) throw new AdmissionConfigError('resolver.hostsDir', dir.message);
    }
  }
  let fromConf: HostsConfig = {};
  if (config.registriesConf !== undefined) {
    try {
      fromConf = await loadHostsConfig({ registriesConf: config.registriesConf });
    } catch (err) {
      throw new AdmissionConfigError('resolver.registriesConf', problemOf(err));
    }
  }
  return { ...fromConf, ...fromDirs };
}

/** A RegistryResolver for the `resolver` section (reads `caFile`, `hostsDir`, `registriesConf`). */
export async function resolverFromConfig(
  config: ResolverConfig,
  extra: Omit<RegistryResolverOptions, 'registryHosts' | 'registryTimeoutMs' | 'hosts'> = {},
): Promise<RegistryResolver> {
  let caPems: string[] = [...(extra.caPems ?? [])];
  if (config.caFile !== undefined) {
    try {
      caPems = [...caPems, await readFile(config.caFile, 'utf8')];
    } catch (err) {
      throw new AdmissionConfigError(
        'resolver.caFile',
        `cannot read ${config.caFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  const hosts = await loadResolverHosts(config);
  return new RegistryResolver({
    ...extra,
    registryHosts: config.registryHosts,
    registryTimeoutMs: config.registryTimeoutMs,
    caPems,
    ...(hosts !== undefined && { hosts }),
  });
}

export interface AdmissionRuntime {
  readonly handler: AdmissionHandler;
  readonly pinner: Pinner;
  readonly resolver: DigestResolver;
  readonly objects: ClusterObjectSource | undefined;
  readonly metrics: WebhookMetrics;
  close(): Promise<void>;
}

export interface AdmissionRuntimeOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Instead of one built from `config.resolver`. */
  readonly resolver?: DigestResolver;
  /** Instead of one built from `config.resolver.secretSource`. */
  readonly objects?: ClusterObjectSource;
  readonly informer?: InformerOptions;
  readonly metrics?: WebhookMetrics;
}

/** Everything the webhook server needs, from a configuration. */
export async function createAdmissionRuntime(
  config: AdmissionConfig,
  options: AdmissionRuntimeOptions = {},
): Promise<AdmissionRuntime> {
  const env = options.env ?? process.env;
  const metrics = options.metrics ?? new WebhookMetrics();
  const resolver = options.resolver ?? (await resolverFromConfig(config.resolver));
  let objects = options.objects;
  if (objects === undefined) {
    const source = config.resolver.secretSource;
    if (source === 'informer') {
      try {
        objects = await SecretInformer.start({ env, ...options.informer });
      } catch (err) {
        throw new AdmissionConfigError(
          'resolver.secretSource',
          err instanceof Error ? err.message.replace(/^secretSource informer: /, 'informer: ') : String(err),
        );
      }
    } else if (source !== 'none') {
      try {
        objects = await loadObjectFile(source.file);
      } catch (err) {
        throw new AdmissionConfigError(
          'resolver.secretSource.file',
          err instanceof KimgError
            ? err.message
            : `cannot read ${source.file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        );
      }
    }
  }
  let dockerCredentials: CredentialLookup | undefined;
  try {
    // No request waits longer than maxBudgetMs for a credential helper: kill a hung one then.
    dockerCredentials = await dockerConfigCredentials(config.resolver.dockerConfig, env, {
      helperTimeoutMs: config.resolver.maxBudgetMs,
    });
  } catch (err) {
    throw new AdmissionConfigError('resolver.dockerConfig', err instanceof Error ? err.message : String(err));
  }
  const pinner = Pinner.fromConfig(config.mutate, config.resolver, resolver, {
    onLookup: (e) => metrics.lookup(e.ms, e.ok, e.reason),
    onStaleServe: (e) => metrics.staleServe(e.reason),
  });
  metrics.watchCache(
    () => pinner.stats,
    () => pinner.cacheSize,
  );
  const handler = new AdmissionHandler({
    mutate: config.mutate,
    policy: new ImagePolicy(config.validate),
    pinner,
    ...(objects !== undefined && { objects }),
    dockerCredentials,
    budgetFraction: config.resolver.budgetFraction,
    maxBudgetMs: config.resolver.maxBudgetMs,
  });
  return {
    handler,
    pinner,
    resolver,
    objects,
    metrics,
    async close() {
      await objects?.close?.();
      await resolver.close?.();
    },
  };
}
