/**
 * Listing a repository's tags on one endpoint (OCI distribution spec, "Content discovery":
 * `GET /v2/<name>/tags/list?n=<n>`, the next page named by a `Link: <…>; rel="next"` header, as
 * Distribution and crane do it). Everything a registry sends is bounded: pages, tags, bytes per
 * page; a next link may not leave the endpoint's origin or its tags path.
 */
import type { Authenticator } from './auth.ts';
import { BodyTooLargeError, readCapped } from './body.ts';
import { pullScope } from './challenge.ts';
import { errorFromResponse, observeResponse, type OperationContext } from './context.ts';
import { apiUrl, isValidTag, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError } from './errors.ts';
import { contentLength, headerValues } from './headers.ts';
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

export interface TagsDeps {
  readonly auth: Authenticator;
  readonly now: () => number;
  readonly onWarning: (host: string, text: string) => void;
}

export const DEFAULT_TAG_PAGE_SIZE = 1000;
export const DEFAULT_MAX_TAGS = 100_000;
export const DEFAULT_MAX_TAG_PAGES = 1000;
const DEFAULT_MAX_PAGE_BYTES = 4 * 1024 * 1024;

/** The target of a `Link: <url>; rel="next"` header, resolved against the page's URL. */
export function nextLink(values: readonly string[], base: URL): URL | undefined {
  for (const value of values) {
    // Several links may share one header, comma-separated.
    for (const part of value.split(/,(?=\s*<)/)) {
      const match = /^\s*<([^>]*)>\s*((?:;[^;]*)*)$/.exec(part);
      if (match === null) continue;
      const params = (match[2] ?? '').split(';').map((p) => p.trim().toLowerCase());
      if (!params.some((p) => /^rel\s*=\s*"?([^"]*)"?$/.exec(p)?.[1]?.split(/\s+/).includes('next'))) continue;
      try {
        return new URL(match[1] ?? '', base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function invalid(ctx: OperationContext, host: string, what: string): RegistryError {
  return new RegistryError('ErrUnexpectedStatus', `${ctx.description}: ${host} sent ${what}`, {
    ...ctx.facts,
    host,
  });
}

/** Reads one page's `{"name": …, "tags": […]}`; every tag must be one the reference grammar allows. */
function parsePage(bytes: Buffer, ctx: OperationContext, host: string): { name?: string; tags: string[] } {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(ctx, host, 'a tag list that is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid(ctx, host, 'a tag list that is not a JSON object');
  const { name, tags } = body as { name?: unknown; tags?: unknown };
  // Distribution answers `"tags": null` for a repository without tags.
  if (tags !== null && tags !== undefined && !Array.isArray(tags))
    throw invalid(ctx, host, 'a tag list whose "tags" is not an array');
  const list: string[] = [];
  for (const tag of (tags ?? []) as unknown[]) {
    if (typeof tag !== 'string' || !isValidTag(tag))
      throw invalid(ctx, host, `an invalid tag ${JSON.stringify(String(tag).slice(0, 200))}`);
    list.push(tag);
  }
  return { ...(typeof name === 'string' && { name }), tags: list };
}

export async function listTagsOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  ctx: OperationContext,
  deps: TagsDeps,
  options: ListTagsOptions,
): Promise<TagList> {
  const pageSize = options.pageSize ?? DEFAULT_TAG_PAGE_SIZE;
  const maxTags = options.maxTags ?? DEFAULT_MAX_TAGS;
  const maxPages = options.maxPages ?? DEFAULT_MAX_TAG_PAGES;
  const maxPageBytes = options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES;
  const first = apiUrl(ep, `${repo.path}/tags/list`);
  first.searchParams.set('n', String(pageSize));
  const scopes = [pullScope(repo.path)];
  const tags: string[] = [];
  const seen = new Set<string>();
  let name: string | undefined;
  let url: URL | undefined = first;
  let pages = 0;
  while (url !== undefined) {
    if (pages >= maxPages || tags.length >= maxTags) {
      return { name: name ?? repo.path, tags, truncated: true, pages, endpoint: ep.label };
    }
    const res = await deps.auth.send(ep, { url, method: 'GET', headers: { accept: 'application/json' } }, scopes, ctx);
    observeResponse(ctx, res, deps.onWarning);
    if (res.status !== 200) throw await errorFromResponse(res, ctx, 'ErrNameUnknown', deps.now());
    let bytes: Buffer;
    try {
      bytes = await readCapped(res.body, maxPageBytes, contentLength(res.headers));
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new RegistryError(
          'ErrBodyTooLarge',
          `${ctx.description}: a tag list page from ${res.url.host} is larger than the limit of ${maxPageBytes} bytes`,
          { ...ctx.facts, host: res.url.host, actualSize: err.seen },
        );
      }
      throw err;
    }
    pages++;
    const page = parsePage(bytes, ctx, res.url.host);
    name ??= page.name;
    let added = 0;
    for (const tag of page.tags) {
      if (seen.has(tag)) continue;
      if (tags.length >= maxTags) return { name: name ?? repo.path, tags, truncated: true, pages, endpoint: ep.label };
      seen.add(tag);
      tags.push(tag);
      added++;
    }
    const next = nextLink(headerValues(res.headers, 'link'), res.url);
    if (next !== undefined && (next.origin !== first.origin || next.pathname !== first.pathname)) {
      throw invalid(ctx, res.url.host, `a next-page link away from its tag list (${next.origin}${next.pathname})`);
    }
    // A page without new tags cannot lead anywhere new: a loop, or a registry that ignores `last`.
    url = next !== undefined && added > 0 ? keepEndpointQuery(next, first) : undefined;
  }
  return { name: name ?? repo.path, tags, truncated: false, pages, endpoint: ep.label };
}

/** The next page's URL with the endpoint's own query parameters (`ns=`) kept when it dropped them. */
function keepEndpointQuery(next: URL, first: URL): URL {
  for (const [key, value] of first.searchParams) {
    if (key !== 'n' && !next.searchParams.has(key)) next.searchParams.append(key, value);
  }
  return next;
}
