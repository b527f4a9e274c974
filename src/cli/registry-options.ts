import { readFile, stat } from 'node:fs/promises';
import { delimiter } from 'node:path';
import type { Command } from 'commander';
import { BasicCredential } from '../credentials/index.ts';
import { Puller, loadCredentialSource, openRegistry } from '../pull/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import { DEFAULT_HOSTS_DIRS, loadHostsConfig, type HostsConfig } from '../registry/hosts/index.ts';
import type { CredentialSource, EventSink, RegistryClient, TransportOptions } from '../registry/index.ts';
import { isKimgError } from '../errors/index.ts';
import { defaultStorePath, openStore, type Store } from '../store/index.ts';
import { UsageError, wholeNumberFlag, writeLine, type Io } from './io.ts';
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

/** Where the store is, and whether the user named it (`--store`, `$KIMG_STORE`) or it is the default. */
export function storeLocation(flags: StoreFlags, io: Io): { path: string; named: boolean } {
  const named = flags.store !== undefined || (io.env.KIMG_STORE ?? '') !== '';
  return { path: flags.store ?? defaultStorePath(io.env), named };
}

/**
 * The store for a command. Commands that pull (`create`) make it when missing and say so when
 * the user named the path; the others never create one: a path the user named that holds no
 * store is a usage error (a typo must not read as "an empty store"), and a missing default store
 * is ErrStoreNotFound.
 */
export async function storeFrom(flags: StoreFlags, io: Io, options: { create?: boolean } = {}): Promise<Store> {
  const { path, named } = storeLocation(flags, io);
  if (options.create === true) {
    if (named && !(await exists(path))) writeLine(io.stderr, `kimg: creating a new image store at ${path}`);
    return openStore(path);
  }
  try {
    return await openStore(path, { create: false });
  } catch (err) {
    if (named && isKimgError(err, 'ErrStoreNotFound'))
      throw new UsageError(`${flags.store !== undefined ? '--store' : '$KIMG_STORE'}: ${err.message}`);
    throw err;
  }
}

/** The store when there is one; undefined when the default store was never created. */
export async function existingStoreFrom(flags: StoreFlags, io: Io): Promise<Store | undefined> {
  try {
    return await storeFrom(flags, io);
  } catch (err) {
    if (isKimgError(err, 'ErrStoreNotFound')) return undefined;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A path given on the command line must be there, of the right kind: a usage error otherwise. */
export async function requirePath(flag: string, path: string, kind: 'file' | 'directory'): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${flag} ${path}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err)}`,
    );
  }
  if (isDirectory !== (kind === 'directory'))
    throw new UsageError(`${flag} ${path}: ${isDirectory ? 'is a directory, not a file' : 'is not a directory'}`);
}

/** What the registry flags configure: host configuration, extra CAs, credentials. */
export interface RegistrySettings {
  readonly hosts: HostsConfig;
  readonly caPems: readonly string[];
  readonly credentials: CredentialSource;
}

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
  // Every path the user named must be there: a typo must not silently bypass a mirror.
  // `--hosts-dir` and `$KIMG_HOSTS_DIR` are `:`-separated lists, as containerd's config_path.
  const hostsDir = flags.hostsDir ?? (io.env.KIMG_HOSTS_DIR || undefined);
  const named = flags.hostsDir !== undefined ? '--hosts-dir' : '$KIMG_HOSTS_DIR';
  for (const dir of (hostsDir ?? '').split(delimiter).filter((d) => d !== ''))
    await requirePath(named, dir, 'directory');
  if (flags.registriesConf !== undefined) await requirePath('--registries-conf', flags.registriesConf, 'file');
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

/** Reads the files the registry flags name; `image` tells `--creds` which registry it is for.
 * Every file the user named must be there: a typo in `--authfile` must not turn into an
 * anonymous 401. */
export async function registrySettingsFrom(flags: RegistryFlags, io: Io, image?: string): Promise<RegistrySettings> {
  for (const file of flags.authfile ?? []) await requirePath('--authfile', file, 'file');
  for (const file of flags.caFile ?? []) await requirePath('--ca-file', file, 'file');
  const hosts = await hostsConfigFrom(flags, io);
  const caPems = await Promise.all((flags.caFile ?? []).map((f) => readFile(f, 'utf8')));
  const explicit: Record<string, BasicCredential> = {};
  if (flags.passwordStdin === true && (flags.creds === undefined || flags.creds.includes(':')))
    throw new UsageError('--password-stdin reads the password for --creds USER (a user name without ":PASSWORD")');
  if (flags.creds !== undefined) {
    const colon = flags.passwordStdin === true ? flags.creds.length : flags.creds.indexOf(':');
    if (colon <= 0) throw new UsageError('--creds must be USER:PASSWORD (or USER with --password-stdin)');
    if (image === undefined) throw new UsageError('--creds needs an image to know its registry');
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
    if (size > 64 * 1024) throw new UsageError('--password-stdin: more than 64 KiB on standard input');
    chunks.push(bytes);
  }
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin: standard input is empty');
  return password;
}

/** A registry client configured from the command line, for looking at `image`'s registry
 * without a store (nothing is created on disk). */
export async function registryFrom(
  flags: RegistryFlags,
  io: Io,
  image?: string,
  onEvent?: EventSink,
  transport: Pick<TransportOptions, 'blobThreads'> = {},
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
    client: { ...transport, ...(trace !== undefined && { traceRequests: true }) },
  });
}

/** A Puller configured from the command line, for pulling `image`. */
export async function pullerFrom(
  flags: RegistryFlags,
  io: Io,
  image?: string,
  options: { createStore?: boolean } = {},
): Promise<Puller> {
  const concurrency =
    flags.concurrency === undefined ? undefined : wholeNumberFlag('--concurrency', flags.concurrency, 1, 64);
  const { hosts, caPems, credentials } = await registrySettingsFrom(flags, io, image);
  const trace = loggerFrom(flags, io).registryEvents;
  const puller = new Puller({
    store: await storeFrom(flags, io, { create: options.createStore ?? true }),
    credentials,
    hosts,
    caPems,
    ...(concurrency !== undefined && { concurrency }),
    ...(trace !== undefined && { client: { traceRequests: true } }),
  });
  if (trace !== undefined) puller.client.listen(trace);
  return puller;
}
