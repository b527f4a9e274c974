/**
 * Endpoints and the names that go into URLs. Nothing from a caller or a registry becomes part
 * of a URL path before it is validated here (spec S8).
 */
import { isValidDigest } from '../digest/index.ts';
import { RegistryError } from './errors.ts';
import type { Capability, Endpoint, EndpointTls, RepositoryRef } from './types.ts';

/** An endpoint checked and parsed once. */
export interface PreparedEndpoint {
  readonly endpoint: Endpoint;
  /** The registry name it serves (`docker.io`). */
  readonly registry: string;
  /** Parsed baseUrl, without trailing slash. */
  readonly base: URL;
  /** `host:port` as contacted (the credential lookup key). */
  readonly host: string;
  /** Path of the API root, `/v2` or a prefix + `/v2`. */
  readonly apiRoot: string;
  readonly tls: EndpointTls | undefined;
  readonly capabilities: ReadonlySet<Capability>;
  readonly mirror: boolean;
  /** The baseUrl for messages. */
  readonly label: string;
}

export function prepareEndpoint(registry: string, endpoint: Endpoint): PreparedEndpoint {
  let base: URL;
  try {
    base = new URL(endpoint.baseUrl);
  } catch {
    throw new RegistryError(
      'ErrInvalidArgument',
      `endpoint for ${registry}: ${JSON.stringify(endpoint.baseUrl)} is not a URL`,
      { registry },
    );
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new RegistryError('ErrInvalidArgument', `endpoint for ${registry}: scheme ${base.protocol} is not http(s)`, {
      registry,
    });
  }
  if (base.username !== '' || base.password !== '' || base.search !== '' || base.hash !== '') {
    throw new RegistryError(
      'ErrInvalidArgument',
      `endpoint for ${registry}: the base URL must not carry user info, a query or a fragment`,
      { registry },
    );
  }
  if (base.protocol === 'http:' && endpoint.insecure !== true) {
    throw new RegistryError(
      'ErrInsecureEndpoint',
      `endpoint ${base.origin} for ${registry} is plain http but not marked insecure; kimg never uses http unless the endpoint is configured so`,
      { registry, host: base.host },
    );
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const apiRoot = endpoint.overridePath === true ? prefix : `${prefix}/v2`;
  return {
    endpoint,
    registry,
    base,
    host: spelledHost(endpoint.baseUrl, base),
    apiRoot,
    tls: endpoint.tls,
    capabilities: new Set(endpoint.capabilities ?? ['pull', 'resolve']),
    mirror: endpoint.mirror === true,
    label: `${base.origin}${prefix}`,
  };
}

/**
 * `host[:port]` as the base URL spells it. A WHATWG URL drops a default port (`:443` for https,
 * `:80` for http), but a reference may write it (`ghcr.io:443/org/app`) and the name then stays
 * verbatim, as containerd and the kubelet keep it: credentials saved for `ghcr.io:443` are the
 * ones that apply (the kubelet's keyring never removes a default port: kubernetes
 * pkg/credentialprovider/keyring.go parses keys with Go's net/url, which keeps it).
 */
function spelledHost(baseUrl: string, base: URL): string {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(baseUrl)?.[1]?.toLowerCase();
  const defaultPort = base.protocol === 'https:' ? '443' : '80';
  return base.port === '' && authority === `${base.host}:${defaultPort}` ? authority : base.host;
}

/** `https://registry-1.docker.io` for Docker Hub, else `https://<registry>`. */
export function defaultEndpoints(registry: string): Endpoint[] {
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') {
    return [{ baseUrl: 'https://registry-1.docker.io' }];
  }
  return [{ baseUrl: `https://${registry}` }];
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** Repository path as the distribution reference grammar allows it (lowercase components). */
export function isValidRepositoryPath(path: string): boolean {
  if (path.length === 0 || path.length > 255) return false;
  return path.split('/').every((c) => PATH_COMPONENT.test(c));
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** `host[:port]` or a DNS name, as the registry part of a reference. */
export function isValidRegistryName(name: string): boolean {
  if (name.length === 0 || name.length > 255 || /[/?#@\s\\]/.test(name)) return false;
  try {
    // A default port written out (`ghcr.io:443`, `[::1]:443`) is a valid name that URL parsing
    // drops: distribution/reference accepts it and the kubelet and containerd pull from it.
    const host = new URL(`https://${name}`).host;
    const lower = name.toLowerCase();
    return host === lower || `${host}:443` === lower;
  } catch {
    return false;
  }
}

export function normalizeRepository(repo: RepositoryRef | string): RepositoryRef {
  let ref: RepositoryRef;
  if (typeof repo === 'string') {
    const slash = repo.indexOf('/');
    if (slash <= 0) {
      throw new RegistryError(
        'ErrInvalidArgument',
        `repository ${JSON.stringify(repo)} must be "registry/path" (e.g. "docker.io/library/nginx")`,
      );
    }
    ref = { registry: repo.slice(0, slash), path: repo.slice(slash + 1) };
  } else {
    ref = repo;
  }
  if (!isValidRegistryName(ref.registry)) {
    throw new RegistryError(
      'ErrInvalidArgument',
      `registry name ${JSON.stringify(ref.registry.slice(0, 100))} is not a valid host[:port]`,
    );
  }
  if (!isValidRepositoryPath(ref.path)) {
    throw new RegistryError(
      'ErrInvalidArgument',
      `repository path ${JSON.stringify(ref.path.slice(0, 300))} is not valid (lowercase components separated by "/")`,
      {
        registry: ref.registry,
      },
    );
  }
  return ref;
}

/** Tag or digest for a manifest URL; throws for anything else. */
export function checkReference(repo: RepositoryRef, reference: string): { kind: 'tag' | 'digest'; value: string } {
  if (reference.includes(':')) {
    if (!isValidDigest(reference)) {
      throw new RegistryError(
        'ErrInvalidArgument',
        `${repo.registry}/${repo.path}: ${JSON.stringify(reference.slice(0, 200))} is not a valid digest`,
        {
          registry: repo.registry,
          repository: repo.path,
        },
      );
    }
    return { kind: 'digest', value: reference };
  }
  if (!isValidTag(reference)) {
    throw new RegistryError(
      'ErrInvalidArgument',
      `${repo.registry}/${repo.path}: ${JSON.stringify(reference.slice(0, 200))} is not a valid tag`,
      {
        registry: repo.registry,
        repository: repo.path,
      },
    );
  }
  return { kind: 'tag', value: reference };
}

/** The URL of `/v2/<name>/<kind>/<reference>` on an endpoint; parts must be validated already. */
export function apiUrl(ep: PreparedEndpoint, suffix: string): URL {
  const url = new URL(ep.base.origin);
  url.pathname = `${ep.apiRoot}/${suffix}`;
  for (const [key, value] of Object.entries(ep.endpoint.query ?? {})) url.searchParams.append(key, value);
  return url;
}
