/**
 * Listing a repository's tags on one endpoint (OCI distribution spec, "Content discovery":
 * `GET /v2/<name>/tags/list?n=<n>`, the next page named by a `Link: <…>; rel="next"` header, as
 * Distribution and crane do it). The paging and its bounds are paging.ts's.
 */
import { pullScope } from './challenge.ts';
import type { OperationContext } from './context.ts';
import { apiUrl, isValidTag, type PreparedEndpoint } from './endpoints.ts';
import { listPages, sentInvalid, type ListingDeps } from './paging.ts';
import type { CallOptions, RepositoryRef } from './types.ts';

export interface ListTagsOptions extends CallOptions {
  /** Tags asked for per page (`n=`); default 1000. */
  readonly pageSize?: number;
  /** Stop after this many tags (the answer says it was cut); default 100 000. */
  readonly maxTags?: number;
  /** Stop after this many pages (the answer says it was cut); default 1000. */
  readonly maxPages?: number;
  /** Largest page body read; default 4 MiB. */
  readonly maxPageBytes?: number;
}

export interface TagList {
  /** The repository as the registry named it in its answer (first page), else as asked. */
  readonly name: string;
  /** In the order the registry listed them (Distribution: lexical). */
  readonly tags: readonly string[];
  /** The list stops at a bound (`maxTags`, `maxPages`) and the registry had more. */
  readonly truncated: boolean;
  readonly pages: number;
  /** Base URL of the endpoint that answered. */
  readonly endpoint: string;
}

export const DEFAULT_TAG_PAGE_SIZE = 1000;
export const DEFAULT_MAX_TAGS = 100_000;
export const DEFAULT_MAX_TAG_PAGES = 1000;
const DEFAULT_MAX_PAGE_BYTES = 4 * 1024 * 1024;

/** Reads one page's `{"name": …, "tags": […]}`; every tag must be one the reference grammar allows. */
function parsePage(bytes: Buffer, ctx: OperationContext, host: string): { name?: string; tags: string[] } {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw sentInvalid(ctx, host, 'a tag list that is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw sentInvalid(ctx, host, 'a tag list that is not a JSON object');
  const { name, tags } = body as { name?: unknown; tags?: unknown };
  // Distribution answers `"tags": null` for a repository without tags.
  if (tags !== null && tags !== undefined && !Array.isArray(tags))
    throw sentInvalid(ctx, host, 'a tag list whose "tags" is not an array');
  const list: string[] = [];
  for (const tag of (tags ?? []) as unknown[]) {
    if (typeof tag !== 'string' || !isValidTag(tag))
      throw sentInvalid(ctx, host, `an invalid tag ${JSON.stringify(String(tag).slice(0, 200))}`);
    list.push(tag);
  }
  return { ...(typeof name === 'string' && { name }), tags: list };
}

export async function listTagsOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  ctx: OperationContext,
  deps: ListingDeps,
  options: ListTagsOptions,
): Promise<TagList> {
  const first = apiUrl(ep, `${repo.path}/tags/list`);
  first.searchParams.set('n', String(options.pageSize ?? DEFAULT_TAG_PAGE_SIZE));
  let name: string | undefined;
  const listed = await listPages<string>(
    ep,
    {
      first,
      scopes: [pullScope(repo.path)],
      accept: 'application/json',
      page: 'a tag list page',
      of: 'its tag list',
      missing: 'ErrNameUnknown',
      maxItems: options.maxTags ?? DEFAULT_MAX_TAGS,
      maxPages: options.maxPages ?? DEFAULT_MAX_TAG_PAGES,
      maxPageBytes: options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES,
      items: (bytes, host) => {
        const page = parsePage(bytes, ctx, host);
        name ??= page.name;
        return page.tags;
      },
      key: (tag) => tag,
    },
    ctx,
    deps,
  );
  return {
    name: name ?? repo.path,
    tags: listed.items,
    truncated: listed.truncated,
    pages: listed.pages,
    endpoint: ep.label,
  };
}
