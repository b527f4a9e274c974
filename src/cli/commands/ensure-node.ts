/**
 * The node `kimg ensure` acts as: the kubelet configuration (file, then flags), the kubelet root
 * directory (node docker config, KEP-2535 records, image GC state), node credentials and
 * credential provider plugins, and the image service over the store.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CredentialProviders,
  NodeKeyring,
  parseCredentialProviderConfig,
  type ServiceAccountAccess,
} from '../../credentials/index.ts';
import { KimgError } from '../../errors/index.ts';
import {
  CachedPullRecords,
  FsPullRecords,
  ImagePullManager,
  StoreImageService,
  parseFeatureGates,
  readKubeletConfigDocument,
  resolveKubeletImageConfig,
  type Clock,
  type ImageGcState,
  type KubeletImageConfig,
  type KubeletImageConfigInput,
  type MetricsSink,
  type NodeCredentialSources,
} from '../../kubelet/index.ts';
import { formatPlatform, hostPlatform, parsePlatform } from '../../oci/index.ts';
import type { Store } from '../../store/index.ts';
import { parseYamlValue, YamlError } from '../../yaml/index.ts';
import type { Io } from '../io.ts';
import { loggerFrom } from '../log.ts';
import { hostsConfigFrom, requirePath, type HostsFlags } from '../registry-options.ts';

/** Flags shared by `kimg ensure` and `kimg gc --thresholds`: the kubelet's own names. */
export interface KubeletFlags {
  readonly config?: string;
  readonly rootDir?: string;
  readonly serializeImagePulls?: string;
  readonly maxParallelImagePulls?: string;
  readonly registryQps?: string;
  readonly registryBurst?: string;
  readonly featureGates?: string;
  readonly imageGcHighThreshold?: string;
  readonly imageGcLowThreshold?: string;
  readonly minimumImageGcAge?: string;
  readonly maximumImageGcAge?: string;
}

/** `--root-dir` default: `$KIMG_KUBELET_ROOT_DIR`, else `$XDG_STATE_HOME/kimg/kubelet`, else `~/.local/state/kimg/kubelet`. */
export function defaultKubeletRootDir(env: NodeJS.ProcessEnv): string {
  if (env.KIMG_KUBELET_ROOT_DIR) return env.KIMG_KUBELET_ROOT_DIR;
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(state, 'kimg', 'kubelet');
}

function number(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new KimgError('ErrInvalidFlag', `--${flag}: ${JSON.stringify(value)} is not a number`);
  return n;
}

function bool(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new KimgError('ErrInvalidFlag', `--${flag}: expected true or false, got ${JSON.stringify(value)}`);
}

/** The configuration from `--config` (and any KubeletConfiguration among the manifests), then flags. */
export async function kubeletConfigFrom(
  flags: KubeletFlags,
  extraDocuments: readonly { file: string; document: unknown }[] = [],
): Promise<KubeletImageConfig> {
  const inputs: KubeletImageConfigInput[] = [];
  if (flags.config !== undefined) {
    await requirePath('--config', flags.config, 'file');
    const text = await readFile(flags.config, 'utf8');
    let document: unknown;
    try {
      document = parseYamlValue(text, flags.config);
    } catch (err) {
      if (!(err instanceof YamlError)) throw err;
      throw new KimgError('kubelet.ErrInvalidConfiguration', err.message, { cause: err });
    }
    inputs.push(readKubeletConfigDocument(document, flags.config));
  }
  for (const { file, document } of extraDocuments) inputs.push(readKubeletConfigDocument(document, file));
  const fromFlags: Record<string, unknown> = {
    serializeImagePulls: bool('serialize-image-pulls', flags.serializeImagePulls),
    maxParallelImagePulls: number('max-parallel-image-pulls', flags.maxParallelImagePulls),
    registryPullQPS: number('registry-qps', flags.registryQps),
    registryBurst: number('registry-burst', flags.registryBurst),
    imageGCHighThresholdPercent: number('image-gc-high-threshold', flags.imageGcHighThreshold),
    imageGCLowThresholdPercent: number('image-gc-low-threshold', flags.imageGcLowThreshold),
    imageMinimumGCAge: flags.minimumImageGcAge,
    imageMaximumGCAge: flags.maximumImageGcAge,
    featureGates: flags.featureGates === undefined ? undefined : parseFeatureGates(flags.featureGates),
  };
  inputs.push(
    Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined)) as KubeletImageConfigInput,
  );
  return resolveKubeletImageConfig(...inputs);
}

export interface NodeFlags extends KubeletFlags, HostsFlags {
  readonly platform?: string;
  readonly caFile?: string[];
  readonly nodeCredentials?: boolean;
  readonly imageCredentialProviderConfig?: string;
  readonly imageCredentialProviderBinDir?: string;
  readonly pinnedImage?: string[];
  readonly serviceAccountToken?: string[];
  readonly serviceAccountTokenFile?: string;
}

export interface Node {
  readonly config: KubeletImageConfig;
  readonly rootDir: string;
  readonly platform: string;
  readonly service: StoreImageService;
  readonly credentials: NodeCredentialSources;
  readonly verifier: ImagePullManager | undefined;
  readonly warnings: string[];
}

export async function openNode(
  flags: NodeFlags,
  io: Io,
  store: Store,
  options: {
    clock: Clock;
    metrics?: MetricsSink;
    extraConfigs?: readonly { file: string; document: unknown }[];
    /** For plugins in service-account token mode. */
    serviceAccounts?: ServiceAccountAccess;
  },
): Promise<Node> {
  const config = await kubeletConfigFrom(flags, options.extraConfigs);
  const rootDir = flags.rootDir ?? defaultKubeletRootDir(io.env);
  const platform = formatPlatform(flags.platform === undefined ? hostPlatform() : parsePlatform(flags.platform));
  const warnings: string[] = [];
  const hosts = await hostsConfigFrom(flags, io);
  for (const file of flags.caFile ?? []) await requirePath('--ca-file', file, 'file');
  const caPems = await Promise.all((flags.caFile ?? []).map((f) => readFile(f, 'utf8')));
  const trace = loggerFrom(flags, io).registryEvents;
  const service = new StoreImageService({
    store,
    platform,
    puller: { hosts, caPems, ...(trace !== undefined && { client: { traceRequests: true } }) },
    ...(trace !== undefined && { onRegistryEvent: trace }),
    ...(flags.pinnedImage !== undefined && { pinned: flags.pinnedImage }),
  });

  const clock = () => options.clock.now();
  const credentials: { node?: NodeKeyring; plugins?: CredentialProviders } = {};
  if (flags.nodeCredentials !== false) {
    credentials.node = new NodeKeyring({
      rootDir,
      ...(io.env.HOME !== undefined && { home: io.env.HOME }),
      clock,
      onSkip: (error) => warnings.push(error.message),
    });
  }
  if (flags.imageCredentialProviderConfig !== undefined) {
    if (flags.imageCredentialProviderBinDir === undefined) {
      throw new KimgError(
        'ErrInvalidFlag',
        '--image-credential-provider-config needs --image-credential-provider-bin-dir',
      );
    }
    await requirePath('--image-credential-provider-config', flags.imageCredentialProviderConfig, 'file');
    const text = await readFile(flags.imageCredentialProviderConfig, 'utf8');
    const providerConfig = parseCredentialProviderConfig(
      parseYamlValue(text, flags.imageCredentialProviderConfig),
      flags.imageCredentialProviderConfig,
    );
    credentials.plugins = new CredentialProviders(providerConfig, {
      binDir: flags.imageCredentialProviderBinDir,
      clock,
      env: io.env,
      onError: (error) => warnings.push(error.message),
      ...(options.serviceAccounts !== undefined && { serviceAccounts: options.serviceAccounts }),
    });
  }

  let verifier: ImagePullManager | undefined;
  if (config.ensureSecretPulledImages) {
    const records = await CachedPullRecords.open(
      new FsPullRecords(rootDir, { onSkip: (path, problem) => warnings.push(`skipped ${path}: ${problem}`) }),
    );
    verifier = new ImagePullManager({
      records,
      policy: config.imagePullCredentialsVerificationPolicy,
      allowlist: config.preloadedImagesVerificationAllowlist,
      clock: options.clock,
      onError: (error, context) => warnings.push(`${context}: ${(error as Error).message}`),
      ...(options.metrics !== undefined && {
        onMustPullCheck: (result: string) =>
          options.metrics?.inc('kubelet_imagemanager_image_mustpull_checks_total', { result }),
      }),
    });
    await verifier.initialize(await service.listImages());
  }
  return { config, rootDir, platform, service, credentials, verifier, warnings };
}

export const GC_STATE_FILE = 'kimg-image-gc.json';

/** The image GC memory (first detected, last used) kept between runs under the root dir. */
export async function readGcState(rootDir: string): Promise<ImageGcState | undefined> {
  let text: string;
  try {
    text = await readFile(join(rootDir, GC_STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as ImageGcState;
    if (typeof parsed.startedAt !== 'number' || typeof parsed.images !== 'object' || parsed.images === null)
      return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

export async function writeGcState(rootDir: string, state: ImageGcState): Promise<void> {
  const path = join(rootDir, GC_STATE_FILE);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** Records that containers now use these images (the GC's least-recently-used order). */
export async function markImagesUsed(rootDir: string, imageRefs: readonly string[], now: number): Promise<void> {
  if (imageRefs.length === 0) return;
  const state = (await readGcState(rootDir)) ?? { startedAt: now, images: {} };
  const images = { ...state.images };
  for (const id of imageRefs) images[id] = { firstDetected: images[id]?.firstDetected ?? now, lastUsed: now };
  await writeGcState(rootDir, { ...state, images });
}
