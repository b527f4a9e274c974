/**
 * Pointing a node's runtime at the mirror: containerd's `certs.d/<host>/hosts.toml` (the
 * mirror first, the upstream as `server`, the fall-back; containerd docs/hosts.md) and CRI-O's
 * `registries.conf` (containers-registries.conf(5): a `[[registry.mirror]]` per upstream).
 * containerd names the upstream in `?ns=`; CRI-O does not, so its mirror location carries the
 * upstream host as the first path component, which the server takes as the registry.
 */
import { DEFAULT_DOMAIN, matchDomain } from '../reference/index.ts';
import { KimgError } from '../errors/index.ts';

export interface MirrorOptions {
  /** The mirror's base URL: `http://127.0.0.1:5000`, `https://node-mirror:5443`. */
  readonly mirror: string;
  /** Upstream registries to mirror: `docker.io`, `registry.k8s.io`, … */
  readonly registries: readonly string[];
  /** CA certificate file (on the node) that signs the mirror's certificate, for https. */
  readonly caFile?: string;
  /** Accept any certificate from the mirror (not recommended). */
  readonly skipVerify?: boolean;
}

/** Checks and normalizes the mirror URL (scheme, host, port; no path, query or credentials). */
export function checkMirrorUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KimgError(
      'ErrInvalidArgument',
      `--mirror ${JSON.stringify(text)} is not a URL (e.g. http://127.0.0.1:5000)`,
    );
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '')
    throw new KimgError('ErrInvalidArgument', `--mirror must be an http:// or https:// URL without credentials`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '')
    throw new KimgError('ErrInvalidArgument', `--mirror must not have a path or query: ${url.origin}`);
  return url;
}

function checkRegistry(host: string): string {
  if (!matchDomain(host) || host.length > 255)
    throw new KimgError('ErrInvalidArgument', `${JSON.stringify(host.slice(0, 100))} is not a registry host`);
  return host;
}

/** containerd's default endpoint for a registry (docker.io is served by registry-1.docker.io). */
function upstreamServer(host: string): string {
  return host === DEFAULT_DOMAIN ? 'https://registry-1.docker.io' : `https://${host}`;
}

const toml = (value: string): string => JSON.stringify(value);

/** One `hosts.toml` per registry, by registry host (the directory name under certs.d). */
export function renderHostsToml(options: MirrorOptions): Map<string, string> {
  const mirror = checkMirrorUrl(options.mirror);
  const files = new Map<string, string>();
  for (const registry of options.registries) {
    const host = checkRegistry(registry);
    const lines = [
      `# Written by kimg registry hosts-toml: pull through the node-local mirror, then ${host} itself.`,
      `server = ${toml(upstreamServer(host))}`,
      '',
      `[host.${toml(mirror.origin)}]`,
      '  capabilities = ["pull", "resolve"]',
    ];
    if (options.caFile !== undefined) lines.push(`  ca = ${toml(options.caFile)}`);
    if (options.skipVerify === true) lines.push('  skip_verify = true');
    files.set(host, `${lines.join('\n')}\n`);
  }
  return files;
}

/** CRI-O's `registries.conf` entries mirroring each registry through the mirror. */
export function renderRegistriesConf(options: MirrorOptions): string {
  const mirror = checkMirrorUrl(options.mirror);
  const lines = ['# Written by kimg registry hosts-toml --registries-conf: pull through the node-local mirror.'];
  for (const registry of options.registries) {
    const host = checkRegistry(registry);
    lines.push(
      '',
      '[[registry]]',
      `prefix = ${toml(host)}`,
      `location = ${toml(host)}`,
      '',
      '[[registry.mirror]]',
      `location = ${toml(`${mirror.host}/${host}`)}`,
    );
    if (mirror.protocol === 'http:') lines.push('insecure = true');
  }
  return `${lines.join('\n')}\n`;
}
