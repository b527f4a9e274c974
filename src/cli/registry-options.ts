import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BasicCredential } from '../credentials/index.ts';
import { Puller, loadCredentialSource, openRegistry } from '../pull/index.ts';
import { parseDockerRef } from '../reference/index.ts';
import { loadHostsConfig, type HostsConfig } from '../registry/hosts/index.ts';
import type { CredentialSource, EventSink, RegistryClient } from '../registry/index.ts';
import { defaultStorePath, openStore, type Store } from '../store/index.ts';
import type { Io } from './io.ts';

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
  readonly concurrency?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Flags every command that talks to a registry takes. */
export function addRegistryFlags(command: Command): Command {
  return command
    .option(
      '--hosts-dir <dir>',
      'containerd registry host directory (config_path): <dir>/<host>/hosts.toml with mirrors, CAs, plain-http hosts',
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
export async function registrySettingsFrom(flags: RegistryFlags, io: Io, image?: string): Promise<RegistrySettings> {
  const hosts = await loadHostsConfig({
    ...(flags.hostsDir !== undefined && { hostsDir: flags.hostsDir }),
    ...(flags.registriesConf !== undefined && { registriesConf: flags.registriesConf }),
    ...(flags.tlsVerifyLoopback === true && { insecureLoopback: false }),
  });
  const caPems = await Promise.all((flags.caFile ?? []).map((f) => readFile(f, 'utf8')));
  const explicit: Record<string, BasicCredential> = {};
  if (flags.creds !== undefined) {
    const colon = flags.creds.indexOf(':');
    if (colon <= 0) throw new Error('--creds must be USER:PASSWORD');
    if (image === undefined) throw new Error('--creds needs an image to know its registry');
    explicit[parseDockerRef(image).domain] = new BasicCredential(
      flags.creds.slice(0, colon),
      flags.creds.slice(colon + 1),
    );
  }
  const credentials = await loadCredentialSource({
    explicit,
    env: io.env,
    ...(flags.authfile !== undefined && { authFiles: flags.authfile }),
  });
  return { hosts, caPems, credentials };
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
  return openRegistry({ ...settings, ...(onEvent !== undefined && { onEvent }) });
}

/** A Puller configured from the command line, for pulling `image`. */
export async function pullerFrom(flags: RegistryFlags, io: Io, image?: string): Promise<Puller> {
  const { hosts, caPems, credentials } = await registrySettingsFrom(flags, io, image);
  const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new Error(`--concurrency must be a whole number of at least 1, got "${flags.concurrency}"`);
  }
  return new Puller({
    store: await storeFrom(flags, io),
    credentials,
    hosts,
    caPems,
    ...(concurrency !== undefined && { concurrency }),
  });
}
