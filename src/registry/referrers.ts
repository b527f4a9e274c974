/**
 * Discovering the OCI 1.1 referrers of a manifest on one endpoint (opencontainers/
 * distribution-spec spec.md, "Listing Referrers"): `GET /v2/<name>/referrers/<digest>` answers an
 * image index of the manifests whose `subject` is the digest, paged with `Link: <…>; rel="next"`.
 * A registry without the API (Distribution 2.8) answers 404; the caller then reads the fallback
 * tag `<alg>-<hex>` ("Referrers Tag Schema"), an index the pushers of referrers maintain.
 * The paging and its bounds are paging.ts's.
 */
import { parseManifestDocument, type Descriptor } from '../oci/index.ts';
import { pullScope } from './challenge.ts';
import type { OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { listPages, sentInvalid, type ListingDeps } from './paging.ts';
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

/** The fallback tag of a subject: `sha256:abc…` → `sha256-abc…` (cut to the 128 characters a
 * tag may have, as the schema says). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

/** The manifests of a referrers index (a page of the API, or the fallback tag's index), strictly. */
export function referrersOf(bytes: Uint8Array, ctx: OperationContext, host: string, what: string): Descriptor[] {
  let document;
  try {
    document = parseManifestDocument(bytes, { what: `${ctx.description}: ${what}` });
  } catch (err) {
    throw sentInvalid(ctx, host, `${what} that cannot be read as an image index: ${(err as Error).message}`);
  }
  if (document.kind !== 'index') throw sentInvalid(ctx, host, `${what} that is an image manifest, not an index`);
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
  deps: ListingDeps,
  options: ListReferrersOptions,
): Promise<ReferrerList | undefined> {
  const listed = await listPages<Descriptor>(
    ep,
    {
      first: apiUrl(ep, `${repo.path}/referrers/${digest}`),
      scopes: [pullScope(repo.path)],
      accept: INDEX_ACCEPT,
      page: 'a referrers page',
      of: `the referrers of ${digest}`,
      missing: 'ErrManifestUnknown',
      maxItems: options.maxReferrers ?? MAX_REFERRERS,
      maxPages: options.maxPages ?? MAX_REFERRER_PAGES,
      maxPageBytes: options.maxPageBytes ?? MAX_REFERRER_PAGE_BYTES,
      items: (bytes, host) => referrersOf(bytes, ctx, host, 'a referrers response'),
      key: (descriptor) => descriptor.digest,
      absentOn404: true,
    },
    ctx,
    deps,
  );
  return listed && { manifests: listed.items, via: 'api', truncated: listed.truncated, endpoint: ep.label };
}
