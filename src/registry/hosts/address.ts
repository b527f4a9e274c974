/** Host names as registry configuration uses them: `host[:port]`, `[v6]:port`. */
import { isIPv4, isIPv6 } from 'node:net';

export const DOCKER_HUB_DOMAIN = 'docker.io';
/** Where Docker Hub's API lives; `docker.io` itself is the name used in references. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/** Splits `host[:port]`; `[::1]:5000` → `::1` + `5000`; a bare IPv6 literal has no port. */
export function splitHostPort(host: string): { hostname: string; port?: string } {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return { hostname: host };
    const hostname = host.slice(1, close);
    const rest = host.slice(close + 1);
    return rest.startsWith(':') && rest.length > 1 ? { hostname, port: rest.slice(1) } : { hostname };
  }
  const colon = host.lastIndexOf(':');
  if (colon === -1 || host.indexOf(':') !== colon) return { hostname: host };
  return { hostname: host.slice(0, colon), port: host.slice(colon + 1) };
}

/**
 * `localhost`, 127.0.0.0/8, `::1` (any spelling) and IPv4-mapped loopback. Like containerd, other
 * names that happen to resolve to loopback are not recognised: that would need DNS here.
 */
export function isLoopbackHost(host: string): boolean {
  const { hostname } = splitHostPort(host);
  if (hostname.toLowerCase() === 'localhost') return true;
  if (isIPv4(hostname)) return hostname.startsWith('127.');
  if (isIPv6(hostname)) {
    let canonical: string;
    try {
      canonical = new URL(`http://[${hostname}]/`).hostname; // e.g. [::1], [::ffff:7f00:1]
    } catch {
      return false; // zone ids (fe80::1%eth0) are link-local, never loopback
    }
    if (canonical === '[::1]') return true;
    const mapped = /^\[::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}\]$/.exec(canonical);
    return mapped !== null && Number.parseInt(mapped[1] ?? '', 16) >> 8 === 127;
  }
  return false;
}

/**
 * The directory names containerd looks for under a `config_path` root for a registry host, in
 * order (Unix): `host_port_` (for ports), `host:port`, then `_default`.
 */
export function containerdHostDirNames(host: string): string[] {
  const names: string[] = [];
  const colon = host.lastIndexOf(':');
  if (colon > 0) names.push(`${host.slice(0, colon)}_${host.slice(colon + 1)}_`);
  names.push(host, '_default');
  return names;
}

/** The host contacted for a registry domain by default: Docker Hub's API host for `docker.io`. */
export function defaultApiHost(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : domain;
}

/**
 * True when `host` is not the registry `domain` itself (containerd's `isProxy`): a mirror or
 * proxy, which gets its own credentials and, if marked, the `ns` query parameter.
 */
export function isOtherHost(host: string, domain: string): boolean {
  return host !== domain && !(domain === DOCKER_HUB_DOMAIN && host === DOCKER_HUB_API_HOST);
}

/**
 * Which registries with no configuration of their own may be reached without verified TLS.
 * The one rule kimg applies everywhere (pulls, `kimg resolve` and `pin`, the webhook, the
 * library): loopback registries, as containerd and `ctr` treat `localhost` and Docker treats
 * 127.0.0.0/8, unless `insecureLoopback` is false; and the hosts named in `insecureRegistries`
 * (Docker's `--insecure-registry`), which are treated exactly as loopback ones.
 */
export interface InsecureHostRule {
  /** Default {@link DEFAULT_INSECURE_LOOPBACK}. */
  readonly insecureLoopback?: boolean;
  /** `host[:port]` as in references (`registry.lan:5000`). */
  readonly insecureRegistries?: readonly string[];
}

/** Loopback registries may be plain HTTP or unverified TLS unless told otherwise (containerd). */
export const DEFAULT_INSECURE_LOOPBACK = true;

/** True when `host` (as contacted) or `domain` (as the reference names it) falls under the rule. */
export function isInsecureByRule(host: string, domain: string, rule: InsecureHostRule = {}): boolean {
  if ((rule.insecureLoopback ?? DEFAULT_INSECURE_LOOPBACK) && isLoopbackHost(host)) return true;
  const named = rule.insecureRegistries ?? [];
  return named.includes(host) || named.includes(domain);
}
