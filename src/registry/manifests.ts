/**
 * Resolving tags and fetching manifests on one endpoint (docs/semantics.md registry §3, §4): HEAD first, GET and hash
 * when HEAD is not usable, GET by digest verified against the digest, `/blobs/` on a 404.
 */
import { digestOf, isValidDigest, tryParseDigest, type Algorithm } from '../digest/index.ts';
import {
  MANIFEST_ACCEPT,
  ManifestError,
  isSchema1MediaType,
  parseManifestDocument,
  stripMediaTypeParameters,
  type Descriptor,
  type ManifestDocument,
} from '../oci/index.ts';
import type { Authenticator } from './auth.ts';
import { BodyTooLargeError, discard, readCapped } from './body.ts';
import { pullScope } from './challenge.ts';
import { errorFromResponse, observeResponse, type OperationContext } from './context.ts';
import { apiUrl, type PreparedEndpoint } from './endpoints.ts';
import { RegistryError, factsOf, type RateLimit } from './errors.ts';
import { contentLength, headerValue } from './headers.ts';
import { redactUrl } from './redact.ts';
import type { FollowedResponse } from './redirect.ts';
import type { RepositoryRef } from './types.ts';

export interface ManifestResult {
  /** The exact bytes, verified against `digest`. */
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly mediaType: string;
  readonly document: ManifestDocument;
  /** Base URL of the endpoint that served it. */
  readonly endpoint: string;
  readonly warnings: readonly string[];
  readonly rateLimit?: RateLimit;
}

export interface ResolveResult {
  /** mediaType, digest and size of the manifest or index the reference points at. */
  readonly descriptor: Descriptor;
  readonly endpoint: string;
  /** HEAD when the registry's headers were usable; GET when the bytes were fetched and hashed. */
  readonly via: 'HEAD' | 'GET';
  /** With `via: 'GET'`: the verified manifest, so it need not be fetched again. */
  readonly manifest?: ManifestResult;
  readonly warnings: readonly string[];
  readonly rateLimit?: RateLimit;
}

export interface ManifestDeps {
  readonly auth: Authenticator;
  readonly maxManifestBytes: number;
  readonly now: () => number;
  readonly onWarning: (host: string, text: string) => void;
}

function extras(ctx: OperationContext): { warnings: readonly string[]; rateLimit?: RateLimit } {
  return { warnings: [...ctx.warnings], ...(ctx.rateLimit !== undefined && { rateLimit: ctx.rateLimit }) };
}

function digestMismatch(
  ctx: OperationContext,
  host: string,
  expected: string,
  actual: string,
  what: string,
): RegistryError {
  return new RegistryError(
    'ErrDigestMismatch',
    `${ctx.description}: ${what} from ${host} hashes to ${actual}, expected ${expected}`,
    {
      ...ctx.facts,
      host,
      expectedDigest: expected,
      actualDigest: actual,
    },
  );
}

export async function resolveOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  reference: { kind: 'tag' | 'digest'; value: string },
  ctx: OperationContext,
  deps: ManifestDeps,
): Promise<ResolveResult> {
  const url = apiUrl(ep, `${repo.path}/manifests/${reference.value}`);
  const scopes = [pullScope(repo.path)];
  const head = await deps.auth.send(ep, { url, method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } }, scopes, ctx);
  observeResponse(ctx, head, deps.onWarning);

  if (head.status === 200) {
    await discard(head.body);
    const headerDigest = headerValue(head.headers, 'docker-content-digest');
    const length = contentLength(head.headers);
    const type = headerValue(head.headers, 'content-type');
    if (
      headerDigest !== undefined &&
      isValidDigest(headerDigest) &&
      length !== undefined &&
      length > 0 &&
      type !== undefined &&
      type !== ''
    ) {
      const mediaType = stripMediaTypeParameters(type);
      if (isSchema1MediaType(mediaType)) {
        throw new ManifestError(
          'ErrUnsupportedMediaType',
          `${ctx.description}: Docker schema 1 manifests (${mediaType}) are not supported`,
        );
      }
      let digest = headerDigest;
      if (reference.kind === 'digest' && headerDigest !== reference.value) {
        if (sameAlgorithm(headerDigest, reference.value))
          throw digestMismatch(ctx, head.url.host, reference.value, headerDigest, 'the Docker-Content-Digest header');
        digest = reference.value;
      }
      if (length > deps.maxManifestBytes) throw tooLarge(ctx, head, length, deps.maxManifestBytes);
      return { descriptor: { mediaType, digest, size: length }, endpoint: ep.label, via: 'HEAD', ...extras(ctx) };
    }
  } else if (head.status === 405 || head.status === 403) {
    // 405: HEAD not supported. 403: the GET surfaces the registry's error body (HEAD has none).
    await discard(head.body);
  } else {
    throw await errorFromResponse(head, ctx, 'ErrManifestUnknown', deps.now());
  }

  const get = await deps.auth.send(ep, { url, method: 'GET', headers: { accept: MANIFEST_ACCEPT } }, scopes, ctx);
  observeResponse(ctx, get, deps.onWarning);
  if (get.status !== 200) throw await errorFromResponse(get, ctx, 'ErrManifestUnknown', deps.now());
  const bytes = await readManifestBody(get, deps.maxManifestBytes, undefined, ctx);
  const headerDigest = headerValue(get.headers, 'docker-content-digest');
  const validHeader = headerDigest !== undefined && isValidDigest(headerDigest) ? headerDigest : undefined;
  const algorithm = algorithmOf(reference.kind === 'digest' ? reference.value : validHeader);
  const computed = digestOf(bytes, algorithm);
  if (reference.kind === 'digest' && computed !== reference.value)
    throw digestMismatch(ctx, get.url.host, reference.value, computed, 'the manifest');
  if (validHeader !== undefined && sameAlgorithm(validHeader, computed) && validHeader !== computed) {
    throw digestMismatch(
      ctx,
      get.url.host,
      validHeader,
      computed,
      'the manifest (against its Docker-Content-Digest header)',
    );
  }
  const contentType = headerValue(get.headers, 'content-type');
  const document = parseManifestDocument(bytes, {
    what: ctx.description,
    ...(contentType !== undefined && { contentType }),
  });
  const manifest: ManifestResult = {
    bytes,
    digest: computed,
    mediaType: document.mediaType,
    document,
    endpoint: ep.label,
    ...extras(ctx),
  };
  return {
    descriptor: { mediaType: document.mediaType, digest: computed, size: bytes.byteLength },
    endpoint: ep.label,
    via: 'GET',
    manifest,
    ...extras(ctx),
  };
}

export async function getManifestOnEndpoint(
  ep: PreparedEndpoint,
  repo: RepositoryRef,
  digest: string,
  descriptor: Descriptor | undefined,
  ctx: OperationContext,
  deps: ManifestDeps,
): Promise<ManifestResult> {
  const scopes = [pullScope(repo.path)];
  const manifestUrl = apiUrl(ep, `${repo.path}/manifests/${digest}`);
  let res = await deps.auth.send(
    ep,
    { url: manifestUrl, method: 'GET', headers: { accept: MANIFEST_ACCEPT } },
    scopes,
    ctx,
  );
  observeResponse(ctx, res, deps.onWarning);
  if (res.status === 404) {
    // containerd's fallback: some registries serve a manifest only as a blob. Only on 404.
    await discard(res.body);
    const blobUrl = apiUrl(ep, `${repo.path}/blobs/${digest}`);
    res = await deps.auth.send(ep, { url: blobUrl, method: 'GET', headers: { accept: '*/*' } }, scopes, ctx);
    observeResponse(ctx, res, deps.onWarning);
  }
  if (res.status !== 200) {
    const err = await errorFromResponse(res, ctx, 'ErrManifestUnknown', deps.now());
    // The /blobs/ fallback answers BLOB_UNKNOWN for what is, to the caller, a missing manifest.
    throw err.code === 'ErrBlobUnknown' ? new RegistryError('ErrManifestUnknown', err.message, factsOf(err)) : err;
  }

  const bytes = await readManifestBody(res, deps.maxManifestBytes, descriptor?.size, ctx);
  if (descriptor !== undefined && bytes.byteLength !== descriptor.size) {
    throw new RegistryError(
      'ErrSizeMismatch',
      `${ctx.description}: ${res.url.host} sent ${bytes.byteLength} bytes, the descriptor says ${descriptor.size}`,
      {
        ...ctx.facts,
        host: res.url.host,
        expectedSize: descriptor.size,
        actualSize: bytes.byteLength,
      },
    );
  }
  const computed = digestOf(bytes, algorithmOf(digest));
  if (computed !== digest) throw digestMismatch(ctx, res.url.host, digest, computed, 'the manifest');
  const headerDigest = headerValue(res.headers, 'docker-content-digest');
  if (
    headerDigest !== undefined &&
    isValidDigest(headerDigest) &&
    sameAlgorithm(headerDigest, digest) &&
    headerDigest !== digest
  ) {
    throw digestMismatch(
      ctx,
      res.url.host,
      headerDigest,
      digest,
      'the manifest (against its Docker-Content-Digest header)',
    );
  }
  const contentType = headerValue(res.headers, 'content-type');
  const document = parseManifestDocument(bytes, {
    what: ctx.description,
    ...(contentType !== undefined && { contentType }),
    ...(descriptor !== undefined && { descriptorMediaType: descriptor.mediaType }),
  });
  return { bytes, digest, mediaType: document.mediaType, document, endpoint: ep.label, ...extras(ctx) };
}

/** Reads a manifest body under the cap (and exactly the descriptor's size when known). */
async function readManifestBody(
  res: FollowedResponse,
  maxBytes: number,
  expectedSize: number | undefined,
  ctx: OperationContext,
): Promise<Uint8Array> {
  const declared = contentLength(res.headers);
  if (expectedSize !== undefined && declared !== undefined && declared !== expectedSize) {
    await discard(res.body);
    throw new RegistryError(
      'ErrSizeMismatch',
      `${ctx.description}: ${res.url.host} declares Content-Length ${declared}, the descriptor says ${expectedSize}; not read`,
      { ...ctx.facts, host: res.url.host, expectedSize, actualSize: declared },
    );
  }
  const limit = expectedSize === undefined ? maxBytes : Math.min(maxBytes, expectedSize);
  try {
    return await readCapped(res.body, limit, declared);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) throw err;
    if (expectedSize !== undefined && expectedSize <= maxBytes) {
      throw new RegistryError(
        'ErrSizeMismatch',
        `${ctx.description}: ${res.url.host} sent more than the ${expectedSize} bytes the descriptor says`,
        {
          ...ctx.facts,
          host: res.url.host,
          expectedSize,
          actualSize: err.seen,
        },
      );
    }
    throw tooLarge(ctx, res, err.seen, maxBytes);
  }
}

function tooLarge(ctx: OperationContext, res: FollowedResponse, size: number, limit: number): RegistryError {
  return new RegistryError(
    'ErrManifestTooLarge',
    `${ctx.description}: the manifest from ${res.url.host} is larger than the limit of ${limit} bytes (${size} bytes declared or seen at ${redactUrl(res.url)})`,
    { ...ctx.facts, host: res.url.host, actualSize: size },
  );
}

function algorithmOf(digest: string | undefined): Algorithm {
  if (digest === undefined) return 'sha256';
  const parsed = tryParseDigest(digest);
  return parsed.ok ? parsed.value.algorithm : 'sha256';
}

function sameAlgorithm(a: string, b: string): boolean {
  return a.slice(0, a.indexOf(':')) === b.slice(0, b.indexOf(':'));
}
