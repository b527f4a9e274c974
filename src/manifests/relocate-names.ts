/**
 * Where `kimg relocate` puts each image: the target (`REGISTRY[/PREFIX]`) and the name mapping.
 * The default mapping is kbld's and `skopeo sync`'s: drop the source host, keep the repository
 * path (`docker.io/library/nginx` → `REGISTRY/PREFIX/library/nginx`).
 */
import { matchDomain, tryParse, tryParseNormalizedNamed, type NamedReference } from '../reference/index.ts';
import { RelocateError } from './errors.ts';

/** A parsed `--to`: the registry host (normalized: `index.docker.io` is `docker.io`) and the
 * repository path prefix under it ("" for none). */
export interface RelocateTarget {
  readonly registry: string;
  readonly prefix: string;
}

/**
 * How a source repository is named under the target:
 * - `path` (default): the source path (`ghcr.io/org/app` → `TARGET/org/app`);
 * - `keep-host`: the source host as a first component, a port's `:` written `_`
 *   (`ghcr.io/org/app` → `TARGET/ghcr.io/org/app`, `localhost:5000/app` → `TARGET/localhost_5000/app`);
 * - `flatten`: the last path component only (`ghcr.io/org/app` → `TARGET/app`).
 */
export type NameMapping = 'path' | 'keep-host' | 'flatten';

/** Parses `REGISTRY[/PREFIX]`. The first component must be a registry host (with a dot or a port,
 * or `localhost`): `--to mirror` would otherwise silently mean Docker Hub. Throws RelocateError
 * `ErrRelocateTarget` naming the input. */
export function parseRelocateTarget(text: string): RelocateTarget {
  const shown = JSON.stringify(text.slice(0, 300));
  const bad = (why: string) =>
    new RelocateError(
      'ErrRelocateTarget',
      `--to ${shown}: ${why}; expected REGISTRY[/PREFIX], e.g. registry.example.com/mirror or localhost:5000`,
    );
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  const prefix = slash === -1 ? '' : text.slice(slash + 1);
  if (host === '') throw bad('no registry host');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw bad('a URL scheme is not part of a registry name');
  if (!matchDomain(host) || !(host.includes('.') || host.includes(':') || host === 'localhost'))
    throw bad(`"${host}" is not a registry host (a name with a dot or a port, or localhost)`);
  if (slash !== -1 && prefix === '') throw bad('ends with "/"');
  // A prefix is repository path components: checked by parsing a name below it.
  const probe = tryParseNormalizedNamed(`${host}/${prefix === '' ? '' : `${prefix}/`}x`);
  if (!probe.ok) throw bad(`not a repository path (${probe.error.message})`);
  if (probe.value.kind !== 'name') throw bad('a tag or digest has no place in a target');
  return { registry: probe.value.domain, prefix: probe.value.path.slice(0, -'x'.length).replace(/\/$/, '') };
}

/** `REGISTRY/PREFIX` as text. */
export function formatRelocateTarget(target: RelocateTarget): string {
  return target.prefix === '' ? target.registry : `${target.registry}/${target.prefix}`;
}

/** Whether a (normalized) image is already under the target: it is then left as it is. */
export function isUnderTarget(image: NamedReference, target: RelocateTarget): boolean {
  if (image.domain !== target.registry) return false;
  return target.prefix === '' || image.path === target.prefix || image.path.startsWith(`${target.prefix}/`);
}

/**
 * The destination repository (`REGISTRY/PREFIX/…`, no tag or digest) of a normalized source
 * image. Throws RelocateError `ErrRelocateName` when the result is not a valid repository name
 * (longer than 255 characters, or a host `keep-host` cannot write as a path component).
 */
export function relocatedRepository(source: NamedReference, target: RelocateTarget, mapping: NameMapping): string {
  let rest: string;
  switch (mapping) {
    case 'path':
      rest = source.path;
      break;
    case 'keep-host':
      rest = `${source.domain.toLowerCase().replaceAll(':', '_')}/${source.path}`;
      break;
    case 'flatten':
      rest = source.path.slice(source.path.lastIndexOf('/') + 1);
      break;
  }
  const name = `${formatRelocateTarget(target)}/${rest}`;
  const parsed = tryParse(name);
  if (!parsed.ok || parsed.value.kind !== 'name' || parsed.value.domain !== target.registry) {
    throw new RelocateError(
      'ErrRelocateName',
      `${source.name}: its destination ${JSON.stringify(name.slice(0, 300))} is not a valid repository name${parsed.ok ? '' : ` (${parsed.error.message})`}`,
      [source.name],
    );
  }
  return name;
}

/**
 * Checks that no two different source repositories map to one destination repository (with
 * `flatten`, `team/app` and `other/app` would). Throws RelocateError `ErrRelocateCollision`
 * naming both, before anything is copied.
 */
export function assertNoCollisions(pairs: Iterable<{ readonly source: string; readonly destination: string }>): void {
  const owner = new Map<string, string>();
  const collisions: string[] = [];
  const images = new Set<string>();
  for (const { source, destination } of pairs) {
    const other = owner.get(destination);
    if (other === undefined) owner.set(destination, source);
    else if (other !== source) {
      collisions.push(`${other} and ${source} would both be copied to ${destination}`);
      images.add(other).add(source);
    }
  }
  if (collisions.length > 0) {
    throw new RelocateError(
      'ErrRelocateCollision',
      `name collision: ${collisions.join('; ')}; change the mapping (--keep-host keeps each source host, the default keeps the whole path)`,
      [...images],
    );
  }
}
