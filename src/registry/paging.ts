/**
 * One bounded listing that registries page with `Link: <…>; rel="next"` (OCI distribution spec,
 * "Content discovery"; Distribution and crane do it so): tags, referrers. Everything a registry
 * sends is bounded (items, pages, bytes per page), each item is kept once, a next link may not
 * leave the first page's origin and path, and a page that adds nothing ends the listing (a loop,
 * or a registry that ignores `last`).
 */
import { BodyTooLargeError, discard, readCapped } from './body.ts';
import type { Scope } from './challenge.ts';
import { errorFromResponse, observeResponse, type OperationContext } from './context.ts';
import type { PreparedEndpoint } from './endpoints.ts';
import { RegistryError, type RegistryErrorCode } from './errors.ts';
import { contentLength, headerValues } from './headers.ts';
import type { ManifestDeps } from './manifests.ts';

/** What a listing needs of the client: the manifest operations' dependencies less their size cap. */
export type ListingDeps = Pick<ManifestDeps, 'auth' | 'now' | 'onWarning'>;

export interface Listing<T> {
  readonly first: URL;
  readonly scopes: readonly Scope[];
  readonly accept: string;
  /** A page, in messages: `a tag list page`. */
  readonly page: string;
  /** What a next link must not leave, in messages: `its tag list`. */
  readonly of: string;
  /** The error code of an answer other than 200. */
  readonly missing: RegistryErrorCode;
  readonly maxItems: number;
  readonly maxPages: number;
  readonly maxPageBytes: number;
  /** One page's items, strictly (an error names what `host` sent). */
  readonly items: (bytes: Buffer, host: string) => readonly T[];
  /** What makes two items the same one. */
  readonly key: (item: T) => string;
  /** A 404 on the first page is an answer of its own (undefined), not an error. */
  readonly absentOn404?: boolean;
}

export interface Listed<T> {
  readonly items: T[];
  /** A bound stopped the listing and the registry had more. */
  readonly truncated: boolean;
  readonly pages: number;
}

/** Every page of `listing` on `ep`, within its bounds; undefined on a first-page 404 when
 * `absentOn404`. Each next page is asked for with the endpoint's own query parameters (the
 * `ns=` of a mirror) that the registry's link dropped. */
export async function listPages<T>(
  ep: PreparedEndpoint,
  listing: Listing<T> & { readonly absentOn404?: false },
  ctx: OperationContext,
  deps: ListingDeps,
): Promise<Listed<T>>;
export async function listPages<T>(
  ep: PreparedEndpoint,
  listing: Listing<T>,
  ctx: OperationContext,
  deps: ListingDeps,
): Promise<Listed<T> | undefined>;
export async function listPages<T>(
  ep: PreparedEndpoint,
  listing: Listing<T>,
  ctx: OperationContext,
  deps: ListingDeps,
): Promise<Listed<T> | undefined> {
  const { first, maxItems, maxPages, maxPageBytes } = listing;
  const items: T[] = [];
  const seen = new Set<string>();
  let url: URL | undefined = first;
  let pages = 0;
  while (url !== undefined) {
    if (pages >= maxPages || items.length >= maxItems) return { items, truncated: true, pages };
    const res = await deps.auth.send(
      ep,
      { url, method: 'GET', headers: { accept: listing.accept } },
      listing.scopes,
      ctx,
    );
    observeResponse(ctx, res, deps.onWarning);
    if (res.status === 404 && pages === 0 && listing.absentOn404 === true) {
      await discard(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await errorFromResponse(res, ctx, listing.missing, deps.now());
    let bytes: Buffer;
    try {
      bytes = await readCapped(res.body, maxPageBytes, contentLength(res.headers));
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      throw new RegistryError(
        'ErrBodyTooLarge',
        `${ctx.description}: ${listing.page} from ${res.url.host} is larger than the limit of ${maxPageBytes} bytes`,
        { ...ctx.facts, host: res.url.host, actualSize: err.seen },
      );
    }
    pages++;
    let added = 0;
    for (const item of listing.items(bytes, res.url.host)) {
      const key = listing.key(item);
      if (seen.has(key)) continue;
      if (items.length >= maxItems) return { items, truncated: true, pages };
      seen.add(key);
      items.push(item);
      added++;
    }
    const next = nextLink(headerValues(res.headers, 'link'), res.url);
    if (next !== undefined && (next.origin !== first.origin || next.pathname !== first.pathname)) {
      throw sentInvalid(ctx, res.url.host, `a next-page link away from ${listing.of} (${next.origin}${next.pathname})`);
    }
    url = next !== undefined && added > 0 ? keepEndpointQuery(next, first) : undefined;
  }
  return { items, truncated: false, pages };
}

/** The next page's URL with the first one's query parameters (the endpoint's `ns=`) that it
 * lacks; not `n`, which the registry may lower. */
function keepEndpointQuery(next: URL, first: URL): URL {
  for (const [key, value] of first.searchParams) {
    if (key !== 'n' && !next.searchParams.has(key)) next.searchParams.append(key, value);
  }
  return next;
}

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

/** ErrUnexpectedStatus: `host` sent `what` (a malformed listing page). */
export function sentInvalid(ctx: OperationContext, host: string, what: string): RegistryError {
  return new RegistryError('ErrUnexpectedStatus', `${ctx.description}: ${host} sent ${what}`, { ...ctx.facts, host });
}
