/**
 * `kimg ensure -f pod.yaml [-f secrets.yaml …]`: acts as the kubelet would for every container
 * of each pod (init containers first) and prints the events and waiting states as
 * `kubectl describe pod` shows them; exit status 0 when every image is ready. `--watch` keeps
 * syncing under the back-off; `--dry-run` is the preflight (resolve only, no layers).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import { ImageManager, MetricsRegistry, preflightPod, systemClock, type KubeletEvent } from '../../kubelet/index.ts';
import { OUTPUT_OPTION, durationFlag, parseOutputFormat, printRecord, writeLine, type Io } from '../io.ts';
import { requirePath, storeFrom } from '../registry-options.ts';
import {
  clockTime,
  describePod,
  describePreflight,
  formatWait,
  watchEventLine,
  aggregateEvents,
} from './ensure-describe.ts';
import { markImagesUsed, openNode, type NodeFlags } from './ensure-node.ts';
import { runEnsure } from './ensure-run.ts';
import { parseServiceAccountTokenFlags, serviceAccountAccess } from './ensure-service-accounts.ts';
import { collectManifests, secretLookup } from './ensure-workloads.ts';

interface EnsureFlags extends NodeFlags {
  readonly store?: string;
  readonly filename: string[];
  readonly namespace?: string;
  readonly dryRun?: boolean;
  readonly watch?: boolean;
  readonly watchTimeout?: string;
  readonly output: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

async function readInputs(files: readonly string[], io: Io): Promise<{ file: string; text: string }[]> {
  const inputs: { file: string; text: string }[] = [];
  for (const file of files) {
    if (file === '-') {
      let text = '';
      for await (const chunk of io.stdin)
        text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      inputs.push({ file: '<stdin>', text });
    } else {
      await requirePath('-f', file, 'file');
      inputs.push({ file, text: await readFile(file, 'utf8') });
    }
  }
  return inputs;
}

export function registerEnsure(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('ensure')
    .description(
      'act as the kubelet for every container of the pods in the manifests: pull policies, credentials, back-off, events',
    )
    .requiredOption(
      '-f, --filename <file>',
      'Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet manifests, Secrets, a KubeletConfiguration; - for stdin (repeatable)',
      collect,
    )
    .option('-n, --namespace <ns>', 'namespace for objects that name none', 'default')
    .option(
      '--dry-run',
      'preflight: resolve every image with the credentials the kubelet would use, download no layers, report what would fail and the fix',
    )
    .option('--watch', 'keep syncing on the kubelet cadence under the back-off until every image is ready')
    .option('--watch-timeout <duration>', 'stop watching after this long (Go duration, e.g. 5m)')
    .option('--config <file>', 'KubeletConfiguration file (flags override it, as for the kubelet)')
    .option(
      '--root-dir <dir>',
      'kubelet root directory: node docker config, KEP-2535 pull records, image GC state (default $KIMG_KUBELET_ROOT_DIR, else $XDG_STATE_HOME/kimg/kubelet)',
    )
    .option('--serialize-image-pulls <bool>', 'pull one image at a time (kubelet default true)')
    .option('--max-parallel-image-pulls <n>', 'at most n pulls at once (needs --serialize-image-pulls=false)')
    .option('--registry-qps <qps>', 'registry pull QPS, 0 = unlimited (kubelet default 5)')
    .option('--registry-burst <n>', 'registry pull burst (kubelet default 10)')
    .option('--feature-gates <gates>', 'e.g. KubeletEnsureSecretPulledImages=false')
    .option('--image-credential-provider-config <file>', 'CredentialProviderConfig for credential provider plugins')
    .option('--image-credential-provider-bin-dir <dir>', 'where the credential provider plugins are')
    .option(
      '--service-account-token <namespace/name=file>',
      "for plugins in service-account token mode: the token of this service account, read from the file at each use (repeatable); the account's UID and annotations come from a ServiceAccount among the manifests",
      collect,
    )
    .option('--service-account-token-file <file>', 'the token for every other service account (e.g. a projected token)')
    .option(
      '--no-node-credentials',
      "ignore the node's docker config (config.json / .dockercfg in the root dir, working dir, $HOME)",
    )
    .option('--platform <os/arch[/variant]>', "the node's platform (default this machine's)")
    .option('--hosts-dir <dir>', 'containerd registry host directory (hosts.toml)')
    .option('--registries-conf <file>', 'containers-registries.conf(5) file')
    .option('--ca-file <file>', 'extra CA certificate (PEM) to trust (repeatable)', collect)
    .option('--tls-verify-loopback', 'verify TLS for registries on loopback too')
    .option(...OUTPUT_OPTION)
    .action(async (flags: EnsureFlags, command: Command) => {
      const all = { ...command.optsWithGlobals(), ...flags } as EnsureFlags;
      const format = parseOutputFormat(all.output);
      const watchTimeoutMs =
        all.watchTimeout === undefined
          ? undefined
          : durationFlag('--watch-timeout', all.watchTimeout, { allowZero: true });
      const manifests = collectManifests(await readInputs(all.filename, io), all.namespace ?? 'default');
      if (manifests.pods.length === 0) {
        throw new KimgError(
          'ErrInvalidManifest',
          `no Pod or workload in ${all.filename.join(', ')} (kinds read: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)`,
        );
      }
      const clock = systemClock;
      const store = await storeFrom(all, io, { create: true });
      const metrics = new MetricsRegistry();
      const serviceAccounts = serviceAccountAccess(
        manifests.serviceAccounts,
        parseServiceAccountTokenFlags(all.serviceAccountToken ?? [], all.serviceAccountTokenFile),
      );
      const node = await openNode(all, io, store, {
        clock,
        metrics,
        extraConfigs: manifests.kubeletConfigs,
        serviceAccounts,
      });
      try {
        for (const warning of node.warnings.splice(0)) writeLine(io.stderr, `kimg: warning: ${warning}`);

        if (all.dryRun === true) {
          const reports = [];
          for (const pod of manifests.pods) {
            const report = await preflightPod(pod, {
              imageService: node.service,
              credentials: node.credentials,
              ...(node.verifier !== undefined && { verifier: node.verifier }),
              ensureSecretPulledImages: node.config.ensureSecretPulledImages,
              platform: node.platform,
              getSecret: secretLookup(manifests.secrets, pod.namespace),
            });
            reports.push({ source: pod.source, report });
          }
          if (format !== 'text') {
            await printRecord(io, format, {
              ok: reports.every((r) => r.report.ok),
              platform: node.platform,
              pods: reports.map((r) => ({ source: r.source, ...r.report })),
            });
          } else {
            writeLine(io.stdout, reports.map((r) => describePreflight(r.report, r.source)).join('\n\n'));
          }
          for (const warning of node.warnings) writeLine(io.stderr, `kimg: warning: ${warning}`);
          if (!reports.every((r) => r.report.ok)) setExit(1);
          return;
        }

        const events: KubeletEvent[] = [];
        const watch = all.watch === true;
        const recorder = (event: KubeletEvent) => {
          events.push(event);
          if (watch && format === 'text') writeLine(io.stdout, watchEventLine(event));
        };
        const manager = new ImageManager({
          imageService: node.service,
          clock,
          recorder,
          config: node.config,
          credentials: node.credentials,
          metrics,
          ...(node.verifier !== undefined && { verifier: node.verifier }),
        });
        const controller = new AbortController();
        const onInterrupt = () => controller.abort(new Error('interrupted'));
        if (watch) process.once('SIGINT', onInterrupt);
        let result;
        try {
          result = await runEnsure({
            manager,
            pods: manifests.pods,
            secrets: manifests.secrets,
            recorder,
            clock,
            watch,
            ...(watchTimeoutMs !== undefined && { watchTimeoutMs }),
            signal: controller.signal,
            onSync: (report) => {
              if (!watch || format !== 'text') return;
              const waiting = report.result.containers.filter((c) => !c.ready);
              const summary =
                waiting.length === 0
                  ? 'every image is ready'
                  : waiting.map((c) => `${c.name}: ${c.waiting?.reason ?? 'waiting'}`).join(', ');
              writeLine(io.stdout, `--- ${clockTime(report.syncedAt)} ${report.pod.source}: ${summary}`);
              for (const b of report.backOff) {
                const left = b.retryAt - report.syncedAt;
                writeLine(
                  io.stdout,
                  `    ${b.container}: back-off ${formatWait(b.windowMs)}, next pull allowed ${left > 0 ? `at ${clockTime(b.retryAt)} (in ${formatWait(left)})` : 'now'}`,
                );
              }
              if (report.nextSyncAt !== undefined)
                writeLine(
                  io.stdout,
                  `    next sync at ${clockTime(report.nextSyncAt)} (in ${formatWait(report.nextSyncAt - report.syncedAt)})`,
                );
            },
          });
        } finally {
          process.removeListener('SIGINT', onInterrupt);
        }
        await markImagesUsed(
          node.rootDir,
          result.pods.flatMap((p) => p.result.containers.filter((c) => c.ready).map((c) => c.imageRef)),
          clock.now(),
        );
        for (const warning of node.warnings) writeLine(io.stderr, `kimg: warning: ${warning}`);
        const now = clock.now();
        const podEvents = (uid: string) => events.filter((e) => e.object?.uid === uid);
        if (format !== 'text') {
          await printRecord(io, format, {
            ready: result.ready,
            pods: result.pods.map(({ pod, result: r, syncs }) => ({
              source: pod.source,
              namespace: pod.namespace,
              name: pod.name,
              ready: r.ready,
              syncs,
              missingSecrets: r.missingSecrets,
              containers: r.containers.map((c) => ({
                name: c.name,
                init: c.init,
                image: c.image,
                pullPolicy: c.pullPolicy,
                ready: c.ready,
                imageRef: c.imageRef,
                ...(c.waiting !== undefined && { waiting: c.waiting }),
              })),
              events: aggregateEvents(podEvents(pod.uid)),
            })),
          });
        } else {
          if (watch) writeLine(io.stdout, result.stopped ? '--- stopped watching before every image was ready\n' : '');
          writeLine(
            io.stdout,
            result.pods
              .map(({ pod, result: r }) =>
                describePod({ ...pod, containers: r.containers, events: podEvents(pod.uid) }, now),
              )
              .join('\n\n'),
          );
        }
        if (!result.ready) setExit(1);
      } finally {
        // The node keeps one registry client for all its pulls: its connections end with the command.
        await node.service.close();
      }
    });
}
