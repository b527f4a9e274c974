/**
 * Discovering the OCI 1.1 referrers of a manifest on one endpoint (opencontainers/
 * distribution-spec spec.md, "Listing Referrers"): `GET /v2/<name>/referrers/<digest>` answers an
 * image index of the manifests whose `subject` is the digest, paged with `Link: <…>; rel="next"`.
 * A registry without the API (Distribution 2.8) answers 404; the caller then reads the fallback
 * tag `<alg>-<hex>` ("Referrers Tag Schema"), an index the pushers of referrers maintain.
 * Everything a registry sends is bounded: referrers, pages, bytes per page; a next link may not
 * leave the endpoint's origin or the referrers path.
 */
import { parseManifestDocument, type Descriptor } from '../oci/index.ts';
import type { Authenticator } from './auth.ts';
import { BodyTooLargeError, discard, readCapped } from './body.ts';
import { pullScope } from './challenge.ts';
import { errorFromResponse, observeResponse, type OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError } from './errors.ts';
import { contentLength, headerValues } from './headers.ts';
import { nextLink } from './tags.ts';
import type { CallOptions, RepositoryRef } from './types.ts';

/** Referrers read for one subject at most: beyond, the list says it was cut. Signatures,
 * SBOMs and attestations of one image are a handful; a thousand is a registry to distrust. */
export const MAX_REFERRERS = 1024;
/** Pages of one referrers listing at most. */
export const MAX_REFERRER_PAGES = 16;
/** Bytes of one page at most (an index of `MAX_REFERRERS` descriptors with annotations). */
export const MAX_REFERRER_PAGE_BYTES = 4 << 20;

const INDEX_ACCEPT = 'application/vnd.oci.image.index.v1+json';

export interface ListReferrersOptions extends CallOptions {
  /** Stop after this many referrers (the answer says it was cut); default `MAX_REFERRERS`. */
  readonly maxReferrers?: number;
  /** Stop after this many pages (the answer says it was cut); default `MAX_REFERRER_PAGES`. */
  readonly maxPages?: number;
  /** Largest page body read; default `MAX_REFERRER_PAGE_BYTES`. */
  readonly maxPageBytes?: number;
}

export interface ReferrerList {
  /** The referrers' descriptors (mediaType, digest, size, artifactType, annotations), each
   * digest once, in the registry's order. */
  readonly manifests: readonly Descriptor[];
  /** `api`: the referrers API answered; `tag`: the registry has none (404) and the fallback tag
   * `sha256-<hex>` was read (absent: no referrers). */
  readonly via: 'api' | 'tag';
  /** The registry had more than the bounds let through. */
  readonly truncated: boolean;
  /** Base URL of the endpoint that answered. */
  readonly endpoint: string;
}

export interface ReferrersDeps {
  readonly auth: Authenticator;
  readonly now: () => number;
  readonly onWarning: (host: string, text: string) => void;
}

/** The fallback tag of a subject: `sha256:abc…` → `sha256-abc…` (cut to the 128 characters a
 * tag may have, as the schema says). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

function invalid(ctx: OperationContext, host: string, what: string): RegistryError {
  return new RegistryError('ErrUnexpectedStatus', `${ctx.description}: ${host} sent ${what}`, { ...ctx.facts, host });
}

/** The manifests of a referrers index (a page of the API, or the fallback tag's index), strictly. */
export function referrersOf(bytes: Uint8Array, ctx: OperationContext, host: string, what: string): Descriptor[] {
  let document;
  try {
    document = parseManifestDocument(bytes, { what: `${ctx.description}: ${what}` });
  } catch (err) {
    throw invalid(ctx, host, `${what} that cannot be read as an image index: ${(err as Error).message}`);
  }
  if (document.kind !== 'index') throw invalid(ctx, host, `${what} that is an image manifest, not an index`);
  return [...document.index.manifests];
}

/**
 * The referrers API on `ep`: every page, bounded; undefined when the registry has no such API
 * (404 on the first page), so the caller reads the fallback tag.
 */
export async function listReferrersOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  digest: string,
  ctx: OperationContext,
  deps: ReferrersDeps,
  options: ListReferrersOptions,
): Promise<ReferrerList | undefined> {
  const maxReferrers = options.maxReferrers ?? MAX_REFERRERS;
  const maxPages = options.maxPages ?? MAX_REFERRER_PAGES;
  const maxPageBytes = options.maxPageBytes ?? MAX_REFERRER_PAGE_BYTES;
  const first = apiUrl(ep, `${repo.path}/referrers/${digest}`);
  const scopes = [pullScope(repo.path)];
  const manifests: Descriptor[] = [];
  const seen = new Set<string>();
  let url: URL | undefined = first;
  let pages = 0;
  const cut = (): ReferrerList => ({ manifests, via: 'api', truncated: true, endpoint: ep.label });
  while (url !== undefined) {
    if (pages >= maxPages) return cut();
    const res = await deps.auth.send(ep, { url, method: 'GET', headers: { accept: INDEX_ACCEPT } }, scopes, ctx);
    observeResponse(ctx, res, deps.onWarning);
    if (res.status === 404 && pages === 0) {
      await discard(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await errorFromResponse(res, ctx, 'ErrManifestUnknown', deps.now());
    let bytes: Buffer;
    try {
      bytes = await readCapped(res.body, maxPageBytes, contentLength(res.headers));
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      throw new RegistryError(
        'ErrBodyTooLarge',
        `${ctx.description}: a referrers page from ${res.url.host} is larger than the limit of ${maxPageBytes} bytes`,
        { ...ctx.facts, host: res.url.host, actualSize: err.seen },
      );
    }
    pages++;
    let added = 0;
    for (const descriptor of referrersOf(bytes, ctx, res.url.host, 'a referrers response')) {
      if (seen.has(descriptor.digest)) continue;
      if (manifests.length >= maxReferrers) return cut();
      seen.add(descriptor.digest);
      manifests.push(descriptor);
      added++;
    }
    const next = nextLink(headerValues(res.headers, 'link'), res.url);
    if (next !== undefined && (next.origin !== first.origin || next.pathname !== first.pathname)) {
      throw invalid(
        ctx,
        res.url.host,
        `a next-page link away from the referrers of ${digest} (${next.origin}${next.pathname})`,
      );
    }
    // A page without new referrers cannot lead anywhere new: a loop.
    url = next !== undefined && added > 0 ? next : undefined;
  }
  return { manifests, via: 'api', truncated: false, endpoint: ep.label };
}
