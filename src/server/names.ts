/**
 * Which stored repository a request names. containerd sends every request to a mirror with
 * `?ns=<upstream host>` and the repository relative to that host
 * (containerd remotes/docker/resolver.go, `ns` query); without `ns` the name is normalized as
 * containerd and Docker treat a name typed by hand: a first component that looks like a host
 * (a `.` or `:`, or `localhost`) is the registry, otherwise the default upstream is.
 * Every name is checked by kimg's reference parser, so nothing but a valid repository reaches
 * the store.
 */
import { matchDomain, tryParseNormalizedNamed } from '../reference/index.ts';
import { DistributionError } from './errors.ts';

/** A repository as the store names it (`docker.io/library/nginx`), and as the client wrote it. */
export interface RepositoryName {
  /** The full normalized repository: `docker.io/library/nginx`. */
  readonly full: string;
  /** Registry host of the full name: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string;
  /** Path under the registry: `library/nginx`. */
  readonly path: string;
  /** The name in the request path, as sent. */
  readonly requested: string;
  /** The `ns` query parameter, when given. */
  readonly ns: string | undefined;
}

const TAG = /^[\w][\w.-]{0,127}$/;

/** True for a tag as the distribution spec allows it (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** True when the first path component names a registry host, as reference normalization decides. */
function hasHost(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first === 'localhost' || first.includes('.') || first.includes(':');
}

/** Checks a registry host as given to `--default-upstream` or in `ns`. */
export function checkHost(host: string, what: string): string {
  if (host.length === 0 || host.length > 255 || !matchDomain(host))
    throw new DistributionError('NAME_INVALID', `${what} ${JSON.stringify(host.slice(0, 100))} is not a registry host`);
  return host;
}

/**
 * The stored repository a request's name designates: under `ns` when given, else under its own
 * host or `defaultUpstream`. NAME_INVALID when the result is not a valid repository name.
 */
export function repositoryOf(requested: string, ns: string | undefined, defaultUpstream: string): RepositoryName {
  if (ns !== undefined) checkHost(ns, 'the ns parameter');
  const qualified =
    ns !== undefined ? `${ns}/${requested}` : hasHost(requested) ? requested : `${defaultUpstream}/${requested}`;
  const parsed = tryParseNormalizedNamed(qualified);
  if (!parsed.ok || parsed.value.tag !== undefined || parsed.value.digest !== undefined) {
    throw new DistributionError('NAME_INVALID', `invalid repository name ${JSON.stringify(requested.slice(0, 300))}`, {
      detail: { name: requested.slice(0, 300) },
    });
  }
  const ref = parsed.value;
  return { full: ref.name, domain: ref.domain, path: ref.path, requested, ns };
}

/** How the catalog names a stored repository: the path alone under the default upstream (which
 * a request without `ns` reaches again), the full name otherwise. */
export function catalogName(full: string, defaultUpstream: string): string {
  const prefix = `${defaultUpstream}/`;
  return full.startsWith(prefix) ? full.slice(prefix.length) : full;
}
