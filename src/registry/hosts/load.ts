/** Reading registry configuration from disk into a HostsConfig (the I/O edge of this folder). */
import { defaultCertsDirRoots, loadCertsDirs } from './certs-dirs.ts';
import { loadContainerdHosts } from './containerd.ts';
import { defaultRegistriesConfPaths, loadRegistriesConf, type RegistriesConfPaths } from './registries-conf.ts';
import type { HostsConfig } from './resolve.ts';

export interface LoadHostsConfigOptions {
  /**
   * containerd `config_path`: a `:`-separated list (`/etc/containerd/certs.d:/etc/docker/certs.d`)
   * or the roots themselves.
   */
  readonly hostsDir?: string | readonly string[];
  /**
   * registries.conf: `'default'` for where containers/image looks (with drop-ins), a file path
   * (that file alone, which must exist), or explicit paths.
   */
  readonly registriesConf?: 'default' | string | RegistriesConfPaths;
  /**
   * Per-host certificate directories for registries.conf endpoints. Default: containers/image's
   * roots when `registriesConf` is given, none otherwise.
   */
  readonly certsDirs?: readonly string[];
  readonly insecureLoopback?: boolean;
  /** Hosts treated as loopback registries are (HTTPS without verification, or plain HTTP). */
  readonly insecureRegistries?: readonly string[];
}

/**
 * Where a node keeps its registry host directories: containerd's documented `config_path`
 * (`/etc/containerd/certs.d:/etc/docker/certs.d`), read as containerd reads them (hosts.toml, or
 * Docker's `*.crt`/`*.cert`/`*.key` per host). Absent directories are skipped.
 */
export const DEFAULT_HOSTS_DIRS: readonly string[] = ['/etc/containerd/certs.d', '/etc/docker/certs.d'];

export async function loadHostsConfig(options: LoadHostsConfigOptions): Promise<HostsConfig> {
  const config: { -readonly [K in keyof HostsConfig]: HostsConfig[K] } = {};
  if (options.hostsDir !== undefined) config.containerd = await loadContainerdHosts(options.hostsDir);
  if (options.registriesConf !== undefined) {
    const paths =
      options.registriesConf === 'default'
        ? await defaultRegistriesConfPaths()
        : typeof options.registriesConf === 'string'
          ? { file: options.registriesConf, optional: false, dropInDirs: [] }
          : options.registriesConf;
    config.registriesConf = await loadRegistriesConf(paths);
  }
  const certRoots = options.certsDirs ?? (options.registriesConf !== undefined ? defaultCertsDirRoots() : undefined);
  if (certRoots !== undefined) config.certsDirs = await loadCertsDirs(certRoots);
  if (options.insecureLoopback !== undefined) config.insecureLoopback = options.insecureLoopback;
  if (options.insecureRegistries !== undefined) config.insecureRegistries = options.insecureRegistries;
  return config;
}
