/**
 * The webhook under test against the real local registry: a Distribution registry (plain HTTP)
 * behind the fault-injecting proxy, which the webhook reaches through `registryHosts` for the
 * logical registries `docker.io`, `quay.io` and `registry.kimg.test`; test images built and
 * pushed with known digests; and `kimg webhook serve`'s server on a loopback port with a
 * serving certificate for `kimg-webhook.kimg-system.svc` signed by a test CA.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ResolveFailure,
  WebhookServer,
  createAdmissionRuntime,
  parseAdmissionConfig,
  resolverFromConfig,
  type AdmissionRuntime,
  type DigestResolver,
} from '../../src/admission/index.ts';
import {
  buildImage,
  createCertificateAuthority,
  issueCertificate,
  makeTempDir,
  pushImage,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type CertificateAuthority,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { SERVICE_NAME, admissionRequest, callWebhook, type CallResult, type RequestSpec } from './apiserver.ts';

/** Images pushed to the registry: repository:tag → what was built. */
export const IMAGES = {
  app: { repo: 'team/app:v1', spec: { layers: [2000], seed: 'adm-app' } },
  appV2: { repo: 'team/app:v2', spec: { layers: [2000], seed: 'adm-app-v2' } },
  multi: {
    repo: 'team/multi:v1',
    spec: { layers: [1500], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'adm-multi' },
  },
  migrate: { repo: 'team/migrate:latest', spec: { layers: [1000], seed: 'adm-migrate' } },
  redis: {
    repo: 'library/redis:7.2',
    spec: { layers: [1000], platforms: ['linux/amd64', 'linux/arm64'], seed: 'adm-redis' },
  },
  nginx: { repo: 'library/nginx:1.25', spec: { layers: [1000], seed: 'adm-nginx' } },
  dockerList: {
    repo: 'team/dlist:v1',
    spec: { layers: [800], platforms: ['linux/amd64', 'linux/arm/v7'], format: 'docker' as const, seed: 'adm-dlist' },
  },
} as const;

export type ImageName = keyof typeof IMAGES;

export interface RegistryFixture {
  readonly registry: RunningRegistry;
  readonly proxy: FaultProxy;
  readonly built: Record<ImageName, BuiltImage>;
  readonly temp: TempDir;
  readonly ca: CertificateAuthority;
  readonly certFile: string;
  readonly keyFile: string;
  /** `registryHosts` sending the logical registries to the proxy. */
  readonly registryHosts: Record<string, string>;
  digest(name: ImageName): string;
  /** The manifest digest of one platform of an index. */
  platformDigest(name: ImageName, platform: string): string;
  stop(): Promise<void>;
}

export async function startRegistryFixture(
  names: readonly ImageName[] = Object.keys(IMAGES) as ImageName[],
): Promise<RegistryFixture> {
  const temp = await makeTempDir('kimg-admission-');
  const registry = await startRegistry();
  const proxy = await startFaultProxy({ upstream: registry.url });
  const built = {} as Record<ImageName, BuiltImage>;
  await Promise.all(
    names.map(async (name) => {
      const { repo, spec } = IMAGES[name];
      built[name] = await buildImage(spec);
      await pushImage(built[name], registry, repo);
    }),
  );
  const certDir = join(temp.path, 'webhook-tls');
  await mkdir(certDir, { recursive: true });
  const ca = await createCertificateAuthority(certDir);
  const leaf = await issueCertificate(ca, { name: 'tls', sans: [SERVICE_NAME, '127.0.0.1'], dir: certDir });
  const registryHosts = { 'docker.io': proxy.url, 'quay.io': proxy.url, 'registry.kimg.test': proxy.url };
  return {
    registry,
    proxy,
    built,
    temp,
    ca,
    certFile: leaf.certFile,
    keyFile: leaf.keyFile,
    registryHosts,
    digest: (name) => built[name].digest,
    platformDigest(name, platform) {
      const found = built[name].images.find((i) => i.platformString === platform);
      if (found === undefined) throw new Error(`${name} has no ${platform}`);
      return found.manifest.digest;
    },
    async stop() {
      await proxy.stop();
      await registry.stop();
      await Promise.all(Object.values(built).map((b) => b.remove()));
      await temp.remove();
    },
  };
}

export interface RunningWebhook {
  readonly server: WebhookServer;
  readonly runtime: AdmissionRuntime;
  readonly port: number;
  readonly caPem: string;
  mutate(spec: RequestSpec, timeoutSeconds?: number): Promise<CallResult>;
  validate(spec: RequestSpec, timeoutSeconds?: number): Promise<CallResult>;
  stop(): Promise<void>;
}

function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      typeof b === 'object' &&
      b !== null &&
      !Array.isArray(b) &&
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/**
 * Starts the webhook server with a configuration (docs/semantics.md admission §3) (registryHosts and secretSource defaulted to
 * the fixture's). `registries`: logical registries besides the registryHosts ones that lookups
 * may go to (those a hostsDir or registriesConf sends to the local registry).
 */
export async function startWebhook(
  fixture: RegistryFixture,
  config: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
  registries: readonly string[] = [],
): Promise<RunningWebhook> {
  const dockerConfig = join(fixture.temp.path, 'no-docker-config.json');
  const parsed = parseAdmissionConfig(
    merge({ resolver: { registryHosts: fixture.registryHosts, secretSource: 'none', dockerConfig } }, config),
    { env },
  );
  const runtime = await createAdmissionRuntime(parsed, {
    env,
    resolver: offline(await resolverFromConfig(parsed.resolver), [
      ...Object.keys(parsed.resolver.registryHosts),
      ...registries,
    ]),
  });
  const server = await WebhookServer.start({
    handler: runtime.handler,
    metrics: runtime.metrics,
    certFile: fixture.certFile,
    keyFile: fixture.keyFile,
    host: '127.0.0.1',
    port: 0,
  });
  const client = { port: server.port, caPem: fixture.ca.certPem };
  return {
    server,
    runtime,
    port: server.port,
    caPem: fixture.ca.certPem,
    mutate: (spec, timeoutSeconds) => callWebhook(client, '/mutate', admissionRequest(spec), timeoutSeconds),
    validate: (spec, timeoutSeconds) => callWebhook(client, '/validate', admissionRequest(spec), timeoutSeconds),
    async stop() {
      await server.close();
      await runtime.close();
    },
  };
}

/**
 * Tests never reach past loopback: a reference to a registry without a `registryHosts` entry
 * (random images in property tests) fails as not found before any network access.
 */
export function offline(inner: DigestResolver, registries: readonly string[]): DigestResolver {
  const known = (reference: string) => registries.some((r) => reference.startsWith(`${r}/`));
  const refuse = (reference: string) =>
    Promise.reject(new ResolveFailure(reference, 'not found', 'not a test registry: not contacted'));
  return {
    resolve: (reference, context) => (known(reference) ? inner.resolve(reference, context) : refuse(reference)),
    indexManifests: (repository, index, context) =>
      known(repository) ? inner.indexManifests(repository, index, context) : refuse(repository),
    close: () => inner.close?.() ?? Promise.resolve(),
  };
}

export async function writeJson(path: string, value: unknown): Promise<string> {
  await writeFile(path, JSON.stringify(value));
  return path;
}

/** Kubernetes objects for tests, in the shape `kubectl create … --dry-run=client -o json` gives. */
export const objects = {
  pod(spec: Record<string, unknown>, name = 'web', extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'team', ...extra }, spec };
  },
  deployment(podSpec: Record<string, unknown>, name = 'api'): Record<string, unknown> {
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels: { app: name } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: podSpec },
      },
    };
  },
  workload(apiVersion: string, kind: string, podSpec: Record<string, unknown>, name = 'w'): Record<string, unknown> {
    if (kind === 'CronJob')
      return {
        apiVersion,
        kind,
        metadata: { name },
        spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: podSpec } } } },
      };
    if (kind === 'PodTemplate')
      return { apiVersion, kind, metadata: { name }, template: { metadata: {}, spec: podSpec } };
    if (kind === 'Pod') return { apiVersion, kind, metadata: { name }, spec: podSpec };
    return {
      apiVersion,
      kind,
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: podSpec },
      },
    };
  },
  containers(...images: string[]): Record<string, unknown>[] {
    return images.map((image, i) => ({ name: `c${i}`, image }));
  },
};
