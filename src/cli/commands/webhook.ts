import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseYamlValues } from '../../yaml/index.ts';
import {
  AdmissionConfigError,
  WebhookServer,
  createAdmissionRuntime,
  generateWebhookCertificates,
  parseAdmissionConfig,
  readConfigFile,
  renderWebhookManifests,
  type AdmissionConfig,
} from '../../admission/index.ts';
import { isKimgError } from '../../errors/index.ts';
import {
  writeRaw,
  printRecords,
  choiceFlag,
  UsageError,
  formatError,
  wholeNumberFlag,
  writeLine,
  type Io,
} from '../io.ts';
import { loggerFrom, type LogFlags } from '../log.ts';

interface ServeFlags {
  readonly config?: string;
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly clientCaFile?: string;
  readonly host: string;
  readonly port: string;
  readonly certReloadSeconds: string;
}

interface ManifestFlags {
  readonly image: string;
  readonly config?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly replicas: string;
  readonly timeoutSeconds: string;
  readonly failurePolicy: string;
  readonly certDir?: string;
  readonly matchConditions?: boolean;
  readonly mutating: boolean;
  readonly validating: boolean;
  readonly certManager?: boolean;
  readonly certManagerIssuer?: string;
  readonly clientCaFile?: string;
  readonly allowFrom?: string[];
  readonly networkPolicy: boolean;
  readonly output: string;
}

/** `Issuer/NAME` or `ClusterIssuer/NAME`. */
function issuerRef(value: string): { kind: 'Issuer' | 'ClusterIssuer'; name: string } {
  const match = /^(Issuer|ClusterIssuer)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(value);
  if (match === null)
    throw new UsageError(`--cert-manager-issuer must be Issuer/NAME or ClusterIssuer/NAME, got "${value}"`);
  return { kind: match[1] as 'Issuer' | 'ClusterIssuer', name: match[2] ?? '' };
}

async function readClientCa(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--client-ca-file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--client-ca-file ${file}: no PEM certificate in the file`);
  return text;
}

async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): Promise<AdmissionConfig> {
  return parseAdmissionConfig(file === undefined ? {} : await readConfigFile(file), { env });
}

/** Runs `body`, mapping configuration and usage problems to exit status 2. */
async function guarded(io: Io, setExit: (code: number) => void, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof AdmissionConfigError || err instanceof UsageError) {
      io.stderr.write(`${formatError(err)}\n`);
      setExit(2);
      return;
    }
    throw err;
  }
}

/** Resolves on SIGTERM or SIGINT (the kubelet stops pods with SIGTERM). */
function untilStopped(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(signal);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}

export function registerWebhook(program: Command, io: Io, setExit: (code: number) => void): void {
  const webhook = program.command('webhook').description('the digest-pinning and image-policy admission webhook');

  webhook
    .command('serve')
    .description(
      'serve AdmissionReview v1 over HTTPS: POST /mutate (pin images to digests), POST /validate (image policy), /healthz, /readyz, /metrics',
    )
    .option('--config <file>', 'admission configuration (YAML or JSON): mutate, validate and resolver sections')
    .option(
      '--tls-cert-file <file>',
      'serving certificate (PEM chain), reloaded when it changes',
      '/etc/kimg/tls/tls.crt',
    )
    .option('--tls-key-file <file>', 'serving key (PEM), reloaded when it changes', '/etc/kimg/tls/tls.key')
    .option(
      '--client-ca-file <file>',
      'answer /mutate and /validate only for callers with a TLS client certificate this CA (PEM) signed, e.g. the apiserver via its admission kubeconfig; reloaded with the certificate',
    )
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--port <n>', 'HTTPS port', '8443')
    .option('--cert-reload-seconds <n>', 'how often the certificate files are checked for changes', '10')
    .action(async (raw: ServeFlags, command: Command) => {
      const flags = { ...command.optsWithGlobals(), ...raw } as ServeFlags & LogFlags;
      await guarded(io, setExit, async () => {
        // A server logs each review by default (level info); --log-level warn keeps it quiet.
        const level = loggerFrom(
          { ...flags, logLevel: flags.logLevel ?? (flags.verbose ? 'debug' : 'info') },
          io,
        ).level;
        const port = wholeNumberFlag('--port', flags.port, 0, 65535);
        const reloadSeconds = wholeNumberFlag('--cert-reload-seconds', flags.certReloadSeconds, 1);
        const config = await loadConfig(flags.config, io.env);
        const log = (line: string) => writeLine(io.stderr, `kimg webhook: ${line}`);
        const runtime = await createAdmissionRuntime(config, { env: io.env, informer: { log } });
        let server: WebhookServer;
        try {
          server = await WebhookServer.start({
            handler: runtime.handler,
            metrics: runtime.metrics,
            certFile: flags.tlsCertFile,
            keyFile: flags.tlsKeyFile,
            ...(flags.clientCaFile !== undefined && { clientCaFile: flags.clientCaFile }),
            host: flags.host,
            port,
            reloadIntervalMs: reloadSeconds * 1000,
            notReady: () =>
              runtime.objects === undefined || runtime.objects.synced
                ? undefined
                : 'pull secrets and service accounts are not listed yet',
            log,
            logReviews: level === 'info' || level === 'debug',
          });
        } catch (err) {
          await runtime.close();
          throw new UsageError(err instanceof Error ? err.message : String(err));
        }
        log(
          `serving https://${flags.host}:${server.port} (/mutate, /validate, /healthz, /readyz, /metrics); own namespace ${config.mutate.ownNamespace}`,
        );
        const signal = await untilStopped();
        log(`${signal}: finishing requests in progress`);
        await server.close(5000);
        await runtime.close();
      });
    });

  webhook
    .command('manifests')
    .description(
      'print the Kubernetes manifests for the webhook (Namespace, RBAC, TLS Secret, Deployment, PodDisruptionBudget, Service, NetworkPolicy, webhook configurations with caBundle); certificates are made with openssl, or by cert-manager with --cert-manager',
    )
    .requiredOption('--image <image>', "the webhook's image (pin it by digest)")
    .option('--config <file>', 'admission configuration to mount (YAML or JSON)')
    .option('--namespace <ns>', "the webhook's namespace (default: the config's ownNamespace, else kimg-system)")
    .option('--name <name>', 'name of the Deployment, Service and webhook configurations', 'kimg-webhook')
    .option('--replicas <n>', 'webhook replicas', '2')
    .option('--timeout-seconds <n>', 'apiserver timeout per call, 1 to 30', '10')
    .option('--failure-policy <policy>', 'Fail (no unpinned image gets in while the webhook is down) or Ignore', 'Fail')
    .option(
      '--cert-dir <dir>',
      'keep the CA and serving certificate here and reuse them on the next run (default: fresh ones each run)',
    )
    .option(
      '--match-conditions',
      'skip calling the mutating webhook for objects whose images all carry a digest (Kubernetes ≥ 1.28)',
    )
    .option(
      '--cert-manager',
      'let cert-manager issue the serving certificate: a Certificate (and a self-signed Issuer) instead of a Secret with a private key, and cert-manager.io/inject-ca-from instead of a caBundle',
    )
    .option('--cert-manager-issuer <kind/name>', 'with --cert-manager: an existing Issuer/NAME or ClusterIssuer/NAME')
    .option(
      '--client-ca-file <file>',
      "mount this CA (PEM) and serve with --client-ca-file: only callers with a client certificate it signed (the apiserver's admission kubeconfig) get reviews",
    )
    .option(
      '--allow-from <cidr...>',
      "NetworkPolicy: accept connections only from these CIDRs (the apiserver's addresses); default any source, HTTPS port only",
    )
    .option('--no-network-policy', 'leave out the NetworkPolicy')
    .option('--no-mutating', 'leave out the MutatingWebhookConfiguration')
    .option('--no-validating', 'leave out the ValidatingWebhookConfiguration')
    .option(
      '-o, --output <format>',
      'yaml (a stream `kubectl apply -f -` reads) or json (one object per line, which it reads too)',
      'yaml',
    )
    .action(async (flags: ManifestFlags) => {
      await guarded(io, setExit, async () => {
        const format = choiceFlag('-o/--output', flags.output, ['yaml', 'json'] as const);
        const replicas = wholeNumberFlag('--replicas', flags.replicas, 1);
        const timeoutSeconds = wholeNumberFlag('--timeout-seconds', flags.timeoutSeconds, 1, 30);
        if (flags.failurePolicy !== 'Fail' && flags.failurePolicy !== 'Ignore')
          throw new UsageError(`--failure-policy must be Fail or Ignore, got "${flags.failurePolicy}"`);
        // The configuration as the pods will read it: in a cluster, in the webhook's namespace.
        const raw = flags.config === undefined ? {} : await readConfigFile(flags.config);
        const probe = parseAdmissionConfig(raw, { env: { KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc' } });
        const namespace = flags.namespace ?? probe.mutate.ownNamespace;
        const config = parseAdmissionConfig(raw, {
          env: { KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc', POD_NAMESPACE: namespace },
        });
        if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(flags.name))
          throw new UsageError(`--name must be a DNS label, got "${flags.name}"`);
        if (flags.certManagerIssuer !== undefined && flags.certManager !== true)
          throw new UsageError('--cert-manager-issuer needs --cert-manager');
        if (flags.certManager === true && flags.certDir !== undefined)
          throw new UsageError(
            '--cert-dir keeps openssl-made certificates; with --cert-manager cert-manager makes them',
          );
        const tls =
          flags.certManager === true
            ? {
                certManager:
                  flags.certManagerIssuer === undefined ? {} : { issuerRef: issuerRef(flags.certManagerIssuer) },
              }
            : {
                certificates: await generateWebhookCertificates({
                  service: flags.name,
                  namespace,
                  ...(flags.certDir !== undefined && { dir: flags.certDir }),
                }),
              };
        const clientCaPem = flags.clientCaFile === undefined ? undefined : await readClientCa(flags.clientCaFile);
        const render = (options: Parameters<typeof renderWebhookManifests>[0]): string => {
          try {
            return renderWebhookManifests(options);
          } catch (err) {
            if (isKimgError(err, 'ErrInvalidArgument')) throw new UsageError(err.message);
            throw err;
          }
        };
        const manifests = render({
          image: flags.image,
          namespace,
          name: flags.name,
          replicas,
          timeoutSeconds,
          failurePolicy: flags.failurePolicy,
          mutating: flags.mutating,
          validating: flags.validating,
          matchConditions: flags.matchConditions === true,
          config,
          ...tls,
          ...(clientCaPem !== undefined && { clientCaPem }),
          networkPolicy: flags.networkPolicy && { allowFrom: flags.allowFrom ?? [] },
        });
        if (format === 'yaml') writeRaw(io.stdout, manifests);
        else await printRecords(io, 'json', parseYamlValues(manifests, 'the manifests'));
      });
    });
}
