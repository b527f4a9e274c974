import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { stringifyAll } from '../../yaml/index.ts';
import {
  BasicAuthenticator,
  RegistryServer,
  allowPush,
  renderDaemonSet,
  renderHostsToml,
  renderRegistriesConf,
  type RegistryServerOptions,
} from '../../server/index.ts';
import { formatError, writeLine, type Io } from '../io.ts';
import { openRegistry } from '../../pull/index.ts';
import { addRegistryFlags, registrySettingsFrom, storeFrom, type RegistryFlags } from '../registry-options.ts';

interface ServeFlags extends RegistryFlags {
  readonly listen: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly insecureListen?: boolean;
  readonly defaultUpstream: string;
  readonly htpasswd?: string;
  readonly pullThrough?: boolean;
  readonly tagTtl: string;
  readonly allowPush?: boolean;
  readonly accessLog: boolean;
}

/** Upstream retries for pull-through: two attempts, short back-off (a client waits meanwhile). */
const PULL_THROUGH_RETRY = { maxAttempts: 2, baseDelayMs: 200, maxDelayMs: 1000, maxRetryAfterMs: 2000 };

/** A usage problem: `kimg: …`, exit status 2. */
class UsageProblem extends Error {}

/** `ADDR:PORT`, `[v6]:PORT` or a bare port (on 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (match === null || port > 65535)
    throw new UsageProblem(`--listen must be ADDR:PORT (e.g. 127.0.0.1:5000, [::1]:0), got "${value}"`);
  const host = match[1] ?? (match[2] === '' || match[2] === undefined ? '127.0.0.1' : match[2]);
  return { host, port };
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

export function registerRegistry(program: Command, io: Io, setExit: (code: number) => void): void {
  const registry = program
    .command('registry')
    .description('serve the store as an OCI registry on a node (a pull-through mirror for containerd and CRI-O)');

  registerHostsToml(registry, io, setExit);
  registerRegistryManifests(registry, io, setExit);
  addRegistryFlags(
    registry
      .command('serve')
      .description(
        'serve the store over the OCI distribution API; the first line printed is the URL served (--listen …:0 picks a free port)',
      )
      .option(
        '--listen <addr:port>',
        'address and port to listen on (loopback unless TLS or --insecure-listen)',
        '127.0.0.1:5000',
      )
      .option('--tls-cert <file>', 'serve HTTPS with this certificate chain (PEM)')
      .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
      .option('--insecure-listen', 'permit plain HTTP on an address other machines can reach')
      .option(
        '--default-upstream <host>',
        'registry of names sent without ?ns= and without a host of their own',
        'docker.io',
      )
      .option('--htpasswd <file>', 'require Basic authentication from this htpasswd file ({SHA}, apr1, bcrypt)')
      .option('--pull-through', 'fetch what the store lacks from upstream (with the registry flags below)')
      .option(
        '--tag-ttl <seconds>',
        'pull-through: how long a stored tag is served before asking upstream again',
        '86400',
      )
      .option('--allow-push', 'accept pushes (uploads, mounts, manifests) into the store')
      .option('--no-access-log', 'do not print a line per request on stderr'),
  ).action(async (flags: ServeFlags, command: Command) => {
    const all = { ...command.optsWithGlobals(), ...flags } as ServeFlags;
    let server: RegistryServer;
    let close = async (): Promise<void> => undefined;
    try {
      const { host, port } = parseListen(all.listen);
      if ((all.tlsCert === undefined) !== (all.tlsKey === undefined))
        throw new UsageProblem('--tls-cert and --tls-key go together');
      const tls =
        all.tlsCert !== undefined && all.tlsKey !== undefined
          ? { cert: await readFile(all.tlsCert), key: await readFile(all.tlsKey) }
          : undefined;
      const tagTtl = Number(all.tagTtl);
      if (!/^\d{1,9}$/.test(all.tagTtl)) throw new UsageProblem(`--tag-ttl must be whole seconds, got "${all.tagTtl}"`);
      // A registry serving pushes or a pull-through cache makes its store, as before.
      const store = await storeFrom(all, io, { create: true });
      // Marks this server's own upstream requests, should hosts.toml send them back to it.
      const loopToken = randomBytes(9).toString('base64url');
      // A mirror answers fast, even when upstream fails: containerd then tries its next host.
      const upstream =
        all.pullThrough === true
          ? openRegistry({
              ...(await registrySettingsFrom(all, io)),
              client: { retry: PULL_THROUGH_RETRY, userAgent: `kimg-registry-pull-through/${loopToken}` },
            })
          : undefined;
      if (upstream !== undefined) close = () => upstream.close();
      const log = (line: string) => writeLine(io.stderr, `kimg registry: ${line}`);
      const options: RegistryServerOptions = {
        store,
        host,
        port,
        ...(tls !== undefined && { tls }),
        ...(all.insecureListen === true && { insecureListen: true }),
        defaultUpstream: all.defaultUpstream,
        ...(all.htpasswd !== undefined && { auth: await BasicAuthenticator.load(all.htpasswd) }),
        ...(all.allowPush === true && { writes: allowPush() }),
        ...(upstream !== undefined && { pullThrough: { client: upstream, tagTtlMs: tagTtl * 1000, loopToken } }),
        log,
        ...(all.accessLog && { accessLog: (line: string) => writeLine(io.stderr, line) }),
      };
      server = await RegistryServer.start(options);
    } catch (err) {
      await close();
      io.stderr.write(`${formatError(err)}\n`);
      setExit(2);
      return;
    }
    writeLine(io.stdout, server.url);
    const signal = await untilStopped();
    writeLine(io.stderr, `kimg registry: ${signal}: finishing requests in progress`);
    await server.close(5000);
    await close();
  });
}

interface HostsTomlFlags {
  readonly mirror: string;
  readonly for: string;
  readonly dir?: string;
  readonly caFile?: string;
  readonly skipVerify?: boolean;
  readonly registriesConf?: boolean;
}

/** `kimg registry hosts-toml`: containerd's certs.d files (or CRI-O's registries.conf) for the mirror. */
export function registerHostsToml(registry: Command, io: Io, setExit: (code: number) => void): void {
  registry
    .command('hosts-toml')
    .description(
      "write containerd's <dir>/<host>/hosts.toml for each registry: the mirror first, the registry itself as fall-back (printed when no --dir)",
    )
    .requiredOption('--mirror <url>', 'the mirror, e.g. http://127.0.0.1:5000')
    .option('--for <hosts>', 'registries to mirror, comma-separated', 'docker.io')
    .option('--dir <dir>', "containerd's config_path (e.g. /etc/containerd/certs.d); default: print to stdout")
    .option('--ca-file <file>', "CA certificate (path on the node) that signs the mirror's certificate")
    .option('--skip-verify', "do not verify the mirror's certificate")
    .option('--registries-conf', "print CRI-O's registries.conf entries instead")
    .action(async (flags: HostsTomlFlags) => {
      try {
        const registries = flags.for
          .split(',')
          .map((h) => h.trim())
          .filter((h) => h !== '');
        const options = {
          mirror: flags.mirror,
          registries,
          ...(flags.caFile !== undefined && { caFile: flags.caFile }),
          ...(flags.skipVerify === true && { skipVerify: true }),
        };
        if (flags.registriesConf === true) {
          io.stdout.write(renderRegistriesConf(options));
          return;
        }
        const files = renderHostsToml(options);
        for (const [host, text] of files) {
          if (flags.dir === undefined) {
            io.stdout.write(`# ${host}/hosts.toml\n${text}`);
            continue;
          }
          await mkdir(join(flags.dir, host), { recursive: true });
          await writeFile(join(flags.dir, host, 'hosts.toml'), text);
          writeLine(io.stdout, join(flags.dir, host, 'hosts.toml'));
        }
      } catch (err) {
        io.stderr.write(`${formatError(err)}\n`);
        setExit(2);
      }
    });
}

interface ManifestFlags {
  readonly image: string;
  readonly namespace: string;
  readonly name: string;
  readonly port: string;
  readonly for: string;
  readonly storePath: string;
  readonly certsDir: string;
  readonly pullThrough: boolean;
  readonly memoryLimit: string;
}

/** `kimg registry manifests`: the DaemonSet that runs the mirror on every node. */
export function registerRegistryManifests(registry: Command, io: Io, setExit: (code: number) => void): void {
  registry
    .command('manifests')
    .description(
      "print a Namespace and a DaemonSet running the mirror on every node's loopback (hostNetwork, store on a hostPath, probes, limits), with an init container writing containerd's hosts.toml",
    )
    .requiredOption('--image <image>', "kimg's image (pin it by digest)")
    .option('--namespace <ns>', 'namespace', 'kimg-system')
    .option('--name <name>', 'name of the DaemonSet', 'kimg-registry')
    .option('--port <n>', 'loopback port on each node', '5000')
    .option('--for <hosts>', 'registries to mirror, comma-separated', 'docker.io,registry.k8s.io')
    .option('--store-path <dir>', 'the store on each node', '/var/lib/kimg/store')
    .option('--certs-dir <dir>', "containerd's config_path on the nodes", '/etc/containerd/certs.d')
    .option('--no-pull-through', 'serve only what the store holds (containerd falls back to upstream)')
    .option('--memory-limit <quantity>', "the server's memory limit", '256Mi')
    .action((flags: ManifestFlags) => {
      try {
        const documents = renderDaemonSet({
          image: flags.image,
          namespace: flags.namespace,
          name: flags.name,
          port: Number(flags.port),
          registries: flags.for
            .split(',')
            .map((h) => h.trim())
            .filter((h) => h !== ''),
          storePath: flags.storePath,
          certsDir: flags.certsDir,
          pullThrough: flags.pullThrough,
          memoryLimit: flags.memoryLimit,
        });
        io.stdout.write(stringifyAll(documents));
      } catch (err) {
        io.stderr.write(`${formatError(err)}\n`);
        setExit(2);
      }
    });
}
