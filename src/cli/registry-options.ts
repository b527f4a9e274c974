import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BasicCredential } from '../credentials/index.ts';
import { Puller, loadCredentialSource, openRegistry } from '../pull/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import { DEFAULT_HOSTS_DIRS, loadHostsConfig, type HostsConfig } from '../registry/hosts/index.ts';
import type { CredentialSource, EventSink, RegistryClient } from '../registry/index.ts';
import { defaultStorePath, openStore, type Store } from '../store/index.ts';
import type { Io } from './io.ts';
import { loggerFrom } from './log.ts';

export interface StoreFlags {
  readonly store?: string;
}

export interface RegistryFlags extends StoreFlags {
  readonly hostsDir?: string;
  readonly registriesConf?: string;
  readonly caFile?: string[];
  readonly creds?: string;
  readonly authfile?: string[];
  readonly tlsVerifyLoopback?: boolean;
  readonly insecureRegistry?: string[];
  readonly passwordStdin?: boolean;
  readonly concurrency?: string;
  /** Global `-v` / `--log-level` (see log.ts). */
  readonly verbose?: boolean;
  readonly logLevel?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Flags every command that talks to a registry takes. */
export function addRegistryFlags(command: Command): Command {
  return command
    .option(
      '--hosts-dir <dir>',
      'containerd registry host directories (config_path, ":"-separated): <dir>/<host>/hosts.toml with mirrors, CAs, plain-http hosts; default $KIMG_HOSTS_DIR, else /etc/containerd/certs.d and /etc/docker/certs.d when present',
    )
    .option('--registries-conf <file>', 'containers-registries.conf(5) file: mirrors, insecure and blocked registries')
    .option('--ca-file <file>', 'extra CA certificate (PEM) to trust for every registry (repeatable)', collect)
    .option(
      '--creds <user:password>',
      "credentials for the image's registry (prefer a credential file: flags show in `ps`)",
    )
    .option(
      '--authfile <file>',
      'Docker config.json or containers auth.json to read instead of the defaults (repeatable)',
      collect,
    )
    .option(
      '--insecure-registry <host[:port]>',
      "treat this registry as loopback ones are: HTTPS without verification, or plain HTTP when it speaks no TLS (repeatable; Docker's --insecure-registry)",
      collect,
    )
    .option('--password-stdin', 'read the password for --creds USER from standard input (keeps it out of `ps`)')
    .option(
      '--tls-verify-loopback',
      'verify TLS for registries on localhost/127.0.0.0/8 too (default: like containerd, loopback may be plain HTTP or unverified)',
    );
}

export async function storeFrom(flags: StoreFlags, io: Io): Promise<Store> {
  return openStore(flags.store ?? defaultStorePath(io.env));
}

/** What the registry flags configure: host configuration, extra CAs, credentials. */
export interface RegistrySettings {
  readonly hosts: HostsConfig;
  readonly caPems: readonly string[];
  readonly credentials: CredentialSource;
}

/** Reads the files the registry flags name; `image` tells `--creds` which registry it is for. */
/** The flags that say where registries are and how to reach them. */
export type HostsFlags = Pick<
  RegistryFlags,
  'hostsDir' | 'registriesConf' | 'tlsVerifyLoopback' | 'insecureRegistry' | 'verbose' | 'logLevel'
>;

/**
 * The registry host configuration, as a node has it by default: `--hosts-dir`, else
 * `$KIMG_HOSTS_DIR`, else containerd's documented `/etc/containerd/certs.d:/etc/docker/certs.d`
 * (those present); `--registries-conf`; the insecure-host rule. `--log-level info` says what
 * was read.
 */
export async function hostsConfigFrom(flags: HostsFlags, io: Io): Promise<HostsConfig> {
  const hostsDir = flags.hostsDir ?? (io.env.KIMG_HOSTS_DIR || undefined);
  const hosts = await loadHostsConfig({
    hostsDir: hostsDir ?? DEFAULT_HOSTS_DIRS,
    ...(flags.registriesConf !== undefined && { registriesConf: flags.registriesConf }),
    ...(flags.tlsVerifyLoopback === true && { insecureLoopback: false }),
    ...(flags.insecureRegistry !== undefined && { insecureRegistries: flags.insecureRegistry }),
  });
  const roots = hosts.containerd?.roots.map((r) => r.root) ?? [];
  const log = loggerFrom(flags, io);
  log.info(
    roots.length > 0
      ? `registry host directories: ${roots.join(', ')}`
      : `registry host directories: none (${hostsDir ?? DEFAULT_HOSTS_DIRS.join(', ')} not present)`,
  );
  if (flags.registriesConf !== undefined) log.info(`registries.conf: ${flags.registriesConf}`);
  return hosts;
}

export async function registrySettingsFrom(flags: RegistryFlags, io: Io, image?: string): Promise<RegistrySettings> {
  const hosts = await hostsConfigFrom(flags, io);
  const caPems = await Promise.all((flags.caFile ?? []).map((f) => readFile(f, 'utf8')));
  const explicit: Record<string, BasicCredential> = {};
  if (flags.passwordStdin === true && (flags.creds === undefined || flags.creds.includes(':')))
    throw new Error('--password-stdin reads the password for --creds USER (a user name without ":PASSWORD")');
  if (flags.creds !== undefined) {
    const colon = flags.passwordStdin === true ? flags.creds.length : flags.creds.indexOf(':');
    if (colon <= 0) throw new Error('--creds must be USER:PASSWORD (or USER with --password-stdin)');
    if (image === undefined) throw new Error('--creds needs an image to know its registry');
    const password = flags.passwordStdin === true ? await readPassword(io.stdin) : flags.creds.slice(colon + 1);
    explicit[parseDockerRef(image).domain] = new BasicCredential(flags.creds.slice(0, colon), password);
  }
  const credentials = await loadCredentialSource({
    explicit,
    env: io.env,
    ...(flags.authfile !== undefined && { authFiles: flags.authfile }),
  });
  return { hosts, caPems, credentials };
}

/** The password on standard input, as `docker login --password-stdin` reads it: all of it (at most
 * 64 KiB), without the final line break. */
async function readPassword(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.byteLength;
    if (size > 64 * 1024) throw new Error('--password-stdin: more than 64 KiB on standard input');
    chunks.push(bytes);
  }
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new Error('--password-stdin: standard input is empty');
  return password;
}

/** A registry client configured from the command line, for looking at `image`'s registry
 * without a store (nothing is created on disk). */
export async function registryFrom(
  flags: RegistryFlags,
  io: Io,
  image?: string,
  onEvent?: EventSink,
): Promise<RegistryClient> {
  const settings = await registrySettingsFrom(flags, io, image);
  const trace = loggerFrom(flags, io).registryEvents;
  const sink: EventSink | undefined =
    onEvent === undefined
      ? trace
      : trace === undefined
        ? onEvent
        : (event) => {
            trace(event);
            onEvent(event);
          };
  return openRegistry({
    ...settings,
    ...(sink !== undefined && { onEvent: sink }),
    ...(trace !== undefined && { client: { traceRequests: true } }),
  });
}

/** A Puller configured from the command line, for pulling `image`. */
export async function pullerFrom(flags: RegistryFlags, io: Io, image?: string): Promise<Puller> {
  const { hosts, caPems, credentials } = await registrySettingsFrom(flags, io, image);
  const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new Error(`--concurrency must be a whole number of at least 1, got "${flags.concurrency}"`);
  }
  const trace = loggerFrom(flags, io).registryEvents;
  const puller = new Puller({
    store: await storeFrom(flags, io),
    credentials,
    hosts,
    caPems,
    ...(concurrency !== undefined && { concurrency }),
    ...(trace !== undefined && { client: { traceRequests: true } }),
  });
  if (trace !== undefined) puller.client.listen(trace);
  return puller;
}
