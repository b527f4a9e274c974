/**
 * The distribution API's routes (opencontainers/distribution-spec spec.md, "Endpoints"; the
 * same patterns as distribution/distribution registry/api/v2/routes.go). The repository name
 * is everything before the last `/manifests/`, `/blobs/`, `/tags/list` or `/referrers/`;
 * it is checked later by the reference parser.
 */
export type Route =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'manifest'; readonly name: string; readonly reference: string }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: string }
  | { readonly kind: 'uploads'; readonly name: string }
  | { readonly kind: 'upload'; readonly name: string; readonly id: string }
  | { readonly kind: 'tags'; readonly name: string }
  | { readonly kind: 'referrers'; readonly name: string; readonly digest: string };

const PATTERNS: readonly [RegExp, (m: RegExpExecArray) => Route][] = [
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1] ?? '', reference: m[2] ?? '' })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1] ?? '' })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1] ?? '', id: m[2] ?? '' })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1] ?? '', digest: m[2] ?? '' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1] ?? '' })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1] ?? '', digest: m[2] ?? '' })],
];

/** Longest path routed; a repository name is at most 255 characters, a digest well under 200. */
export const MAX_PATH = 2048;

/** The route of a request path (without its query), or undefined for no API endpoint. */
export function matchRoute(path: string): Route | undefined {
  if (path.length > MAX_PATH) return undefined;
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  for (const [pattern, make] of PATTERNS) {
    const m = pattern.exec(path);
    if (m !== null) return make(m);
  }
  return undefined;
}
