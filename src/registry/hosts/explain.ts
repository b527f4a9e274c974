/**
 * `--explain`: the hosts a pull would contact, in order, with what each may do and where its
 * settings and credentials come from. Never prints header values, credentials, or proxy
 * passwords.
 */
import { redactUrl } from './containerd.ts';
import { RegistryBlockedError } from './errors.ts';
import { resolveHosts, type HostsConfig } from './resolve.ts';
import type { Endpoint, PullKind, RepositoryName } from './types.ts';

export interface ExplainOptions {
  /**
   * Describes where credentials for a host would come from, e.g. `credHelpers → ecr-login` or
   * `anonymous`; omitted from the output when absent. Must not return secrets.
   */
  readonly credentialSource?: (host: string) => string | undefined;
}

/** Human-readable lines for a dry run; a blocked registry is reported, not thrown. */
export function explainHosts(
  repository: RepositoryName,
  pull: PullKind,
  config: HostsConfig = {},
  options: ExplainOptions = {},
): string[] {
  const name = `${repository.domain}/${repository.path}`;
  const kind = pull.byDigest ? 'pull by digest' : 'pull by tag';
  let endpoints: Endpoint[];
  try {
    endpoints = resolveHosts(repository, pull, config);
  } catch (err) {
    if (err instanceof RegistryBlockedError)
      return [`${name} (${kind}): blocked by [[registry]] prefix ${JSON.stringify(err.prefix)} in ${err.file}`];
    throw err;
  }

  const reference = pull.digest ?? pull.tag ?? (pull.byDigest ? '<digest>' : '<tag>');
  const lines = [`${name} (${kind}): ${endpoints.length} ${endpoints.length === 1 ? 'host' : 'hosts'} in order`];
  let finalAt: number | undefined;
  endpoints.forEach((e, i) => {
    const query = e.namespace !== undefined ? `?ns=${encodeURIComponent(e.namespace)}` : '';
    lines.push(`  ${i + 1}. ${e.baseUrl}/${e.repository}/manifests/${reference}${query}`);
    const role = e.mirror ? 'mirror' : 'registry';
    const uses = [...e.capabilities].join(', ');
    const notes: string[] = [];
    if (!pull.byDigest && !e.capabilities.includes('resolve') && e.capabilities.includes('pull')) {
      notes.push('not trusted to resolve the tag: used for content by digest only');
    }
    if (!e.capabilities.includes('pull')) notes.push('not used for pulling (no pull capability)');
    if (finalAt !== undefined) notes.push(`not tried: host ${finalAt + 1} has fallback = false`);
    lines.push(`     ${role}; capabilities: ${uses}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
    lines.push(`     transport: ${describeTransport(e)}`);
    if (Object.keys(e.headers).length > 0) lines.push(`     extra headers: ${Object.keys(e.headers).join(', ')}`);
    if (e.proxy !== undefined) lines.push(`     proxy: ${redactUrl(e.proxy)}`);
    if (e.dialTimeoutMs !== undefined) lines.push(`     dial timeout: ${e.dialTimeoutMs} ms`);
    const credentials = options.credentialSource?.(e.host);
    if (credentials !== undefined) lines.push(`     credentials for ${e.host}: ${credentials}`);
    if (!e.fallback && i < endpoints.length - 1) lines.push('     fallback = false: a failure here ends the pull');
    lines.push(`     from: ${e.source}`);
    if (!e.fallback && finalAt === undefined) finalAt = i;
  });
  if (!pull.byDigest && !endpoints.some((e) => e.capabilities.includes('resolve'))) {
    lines.push('  warning: no host may resolve tags, so a pull by tag will fail');
  }
  return lines;
}

function describeTransport(e: Endpoint): string {
  const parts: string[] = [];
  if (e.baseUrl.startsWith('http://')) parts.push('plain HTTP (configured insecure)');
  else if (e.httpFallback) parts.push('HTTPS, then plain HTTP if the server does not speak TLS');
  else parts.push('HTTPS');
  if (!e.baseUrl.startsWith('http://')) {
    parts.push(e.tls.skipVerify ? 'certificate NOT verified' : 'certificate verified');
    if (e.tls.caFiles.length > 0) parts.push(`extra CAs: ${e.tls.caFiles.join(', ')}`);
    if (e.tls.clientCerts.length > 0)
      parts.push(`client certificates: ${e.tls.clientCerts.map((c) => c.certFile).join(', ')}`);
  }
  return parts.join('; ');
}
