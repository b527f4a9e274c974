/**
 * The endpoints to pull a repository from, in order, from whichever registry configuration is
 * given (containerd hosts directories, registries.conf) or the defaults. Pure: the files are read
 * beforehand (load.ts), so resolving is cheap and repeatable.
 */
import type { CertsDirs } from './certs-dirs.ts';
import { certsFor } from './certs-dirs.ts';
import { defaultApiHost, type InsecureHostRule } from './address.ts';
import {
  buildRegistryHost,
  containerdRegistryHosts,
  findHostsDir,
  registryItself,
  type ContainerdHosts,
  type HostSpec,
} from './containerd.ts';
import { registriesConfSources, type PullSource, type RegistriesConf } from './registries-conf.ts';
import {
  ALL_CAPABILITIES,
  type Capability,
  type Endpoint,
  type PullKind,
  type RegistryHost,
  type RepositoryName,
} from './types.ts';

export interface HostsConfig extends InsecureHostRule {
  /** containerd `config_path` host directories (loadContainerdHosts). */
  readonly containerd?: ContainerdHosts;
  /** containers-registries.conf, merged with its drop-ins (loadRegistriesConf). */
  readonly registriesConf?: RegistriesConf;
  /** Docker-style per-host certificate directories, used for registries.conf endpoints. */
  readonly certsDirs?: CertsDirs;
  /**
   * (InsecureHostRule) Treat loopback registries (`localhost`, 127.0.0.0/8, `[::1]`) that no
   * configuration describes as insecure, as containerd and `ctr` do for localhost and Docker does
   * for 127.0.0.0/8: port 80 → plain HTTP; another explicit port → HTTPS without verification,
   * falling back to plain HTTP when the server does not speak TLS; no port or 443 → HTTPS without
   * verification. Only loopback is affected (nothing leaves the machine). Default true; set
   * false to verify TLS on loopback too. `insecureRegistries` names more hosts treated so.
   */
  readonly insecureLoopback?: boolean;
}

/**
 * Endpoints for pulling `repository`, best first. Precedence when several sources are given:
 * a containerd host directory for the registry (its own, else `_default`), else a matching
 * registries.conf `[[registry]]`, else the registry itself. `blocked` in registries.conf is
 * honoured whichever source supplies the hosts (RegistryBlockedError).
 *
 * For a tag pull, resolve the tag only on endpoints with the `resolve` capability, then fetch by
 * digest from those with `pull`; `fallback: false` on an endpoint ends the attempt there.
 */
export function resolveHosts(repository: RepositoryName, pull: PullKind, config: HostsConfig = {}): Endpoint[] {
  const rule: InsecureHostRule = {
    ...(config.insecureLoopback !== undefined && { insecureLoopback: config.insecureLoopback }),
    ...(config.insecureRegistries !== undefined && { insecureRegistries: config.insecureRegistries }),
  };
  const fromConf = config.registriesConf ? registriesConfSources(config.registriesConf, repository, pull) : undefined;
  if (config.containerd !== undefined) {
    const dir = findHostsDir(config.containerd, repository.domain);
    if (dir !== undefined || fromConf === undefined) {
      return containerdRegistryHosts(repository.domain, dir, rule).map((h) => hostEndpoint(h, repository));
    }
  }
  if (fromConf !== undefined) {
    return fromConf.sources.map((s) => sourceEndpoint(s, config.certsDirs, rule));
  }
  const host = containerdRegistryHosts(repository.domain, undefined, rule);
  return host.map((h) => hostEndpoint(withCerts(h, repository.domain, config.certsDirs), repository));
}

/** An endpoint for a host: the repository is unchanged; marked proxies get `ns`. */
export function hostEndpoint(host: RegistryHost, repository: RepositoryName): Endpoint {
  const { url, pathPrefix, isMirror, namespaceQuery, ...settings } = host;
  return {
    ...settings,
    baseUrl: url + pathPrefix,
    repository: repository.path,
    ...(namespaceQuery ? { namespace: repository.domain } : {}),
    mirror: isMirror,
  };
}

// registries.conf says nothing about schemes: https, or (insecure = true) https without
// verification and with a fallback to plain http, as containers/image does.
function sourceEndpoint(s: PullSource, certsDirs: CertsDirs | undefined, rule: InsecureHostRule): Endpoint {
  const capabilities: readonly Capability[] = !s.mirror
    ? ALL_CAPABILITIES
    : s.digestOnly
      ? ['pull']
      : ['pull', 'resolve'];
  const host = defaultApiHost(s.domain);
  const certs = certsDirs ? (certsFor(certsDirs, s.domain) ?? certsFor(certsDirs, host)) : undefined;
  const spec: HostSpec = {
    source: certs ? `${s.source}; certificates from ${certs.dir}` : s.source,
    headers: {},
    fallback: s.fallback,
    ...(certs && certs.caFiles.length > 0 ? { caFiles: certs.caFiles } : {}),
    ...(certs && certs.clientCerts.length > 0 ? { clientCerts: certs.clientCerts } : {}),
  };
  const built = s.insecure
    ? buildRegistryHost(s.domain, spec, 'http', host, '/v2', capabilities, true)
    : registryItself(s.domain, host, spec, capabilities, rule);
  // The registry's own location is never a "mirror", even when rewritten to another host.
  return { ...hostEndpoint({ ...built, isMirror: s.mirror, namespaceQuery: false }, s), repository: s.path };
}

function withCerts(host: RegistryHost, domain: string, certsDirs: CertsDirs | undefined): RegistryHost {
  if (certsDirs === undefined) return host;
  const certs = certsFor(certsDirs, domain) ?? certsFor(certsDirs, host.host);
  if (certs === undefined || (certs.caFiles.length === 0 && certs.clientCerts.length === 0)) return host;
  return {
    ...host,
    tls: {
      ...host.tls,
      caFiles: [...host.tls.caFiles, ...certs.caFiles],
      clientCerts: [...host.tls.clientCerts, ...certs.clientCerts],
    },
    source: `${host.source}; certificates from ${certs.dir}`,
  };
}
