import { tryParseDigest } from '../digest/index.ts';
import { KimgError } from '../errors/index.ts';
import { parseStrictJson } from './json.ts';
import {
  MediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  stripMediaTypeParameters,
} from './media-types.ts';
import type { Descriptor, ImageIndex, ImageManifest, ManifestDocument, Platform } from './types.ts';

export type ManifestErrorCode = 'ErrManifestInvalid' | 'ErrUnsupportedMediaType' | 'ErrUnsupportedDigestAlgorithm';

/** A manifest or index that kimg refuses to read; `what` names the document (image, digest). */
export class ManifestError extends KimgError<ManifestErrorCode> {
  constructor(code: ManifestErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface DocumentLimits {
  /** Most descriptors in an index (default 1024). */
  readonly maxManifests?: number;
  /** Most layers in a manifest (default 1024). */
  readonly maxLayers?: number;
}

export interface ParseDocumentOptions extends DocumentLimits {
  /** The response `Content-Type` (parameters are ignored). */
  readonly contentType?: string;
  /** The media type of the descriptor that pointed at this document. */
  readonly descriptorMediaType?: string;
  /** Names the document in errors, e.g. `docker.io/library/nginx@sha256:…`. */
  readonly what?: string;
}

/**
 * Reads an index or image manifest from the exact bytes that were hashed, refusing anything
 * ambiguous: a document that is both an index and a manifest (CVE-2021-41190), media types that
 * disagree between the body, the `Content-Type` and the parent descriptor, duplicate keys,
 * schema 1, malformed descriptors.
 */
export function parseManifestDocument(bytes: Uint8Array, options: ParseDocumentOptions = {}): ManifestDocument {
  const what = options.what ?? 'manifest';
  const fail = (message: string, code: ManifestErrorCode = 'ErrManifestInvalid'): never => {
    throw new ManifestError(code, `${what}: ${message}`);
  };

  let parsed: unknown;
  try {
    parsed = parseStrictJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new ManifestError('ErrManifestInvalid', `${what}: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(parsed)) return fail('not a JSON object');

  const declared = [
    optionalString(parsed, 'mediaType', fail),
    options.contentType === undefined ? undefined : stripMediaTypeParameters(options.contentType),
    options.descriptorMediaType,
  ].filter(
    (t): t is string => t !== undefined && t !== '' && t !== 'application/json' && t !== 'application/octet-stream',
  );
  for (const type of declared) {
    if (isSchema1MediaType(type)) {
      fail(
        `Docker schema 1 manifests (${type}) are not supported; push the image again with a current client`,
        'ErrUnsupportedMediaType',
      );
    }
  }
  const distinct = [...new Set(declared)];
  if (distinct.length > 1) fail(`media types disagree: ${distinct.join(' vs ')}`);

  if (parsed.schemaVersion === 1) fail('Docker schema 1 manifests are not supported', 'ErrUnsupportedMediaType');
  if (parsed.schemaVersion !== 2) fail(`schemaVersion must be 2, got ${JSON.stringify(parsed.schemaVersion)}`);

  const hasManifests = 'manifests' in parsed;
  const hasImageFields = 'layers' in parsed || 'config' in parsed;
  if (hasManifests && hasImageFields)
    fail('document has both "manifests" and "layers"/"config": refusing an ambiguous document');

  const mediaType = distinct[0] ?? (hasManifests ? MediaType.OciIndex : MediaType.OciManifest);
  const artifactType = optionalString(parsed, 'artifactType', fail);
  const annotations = optionalAnnotations(parsed.annotations, 'annotations', fail);
  const subject = parsed.subject === undefined ? undefined : parseDescriptor(parsed.subject, 'subject', fail);

  if (hasManifests || isIndexMediaType(mediaType)) {
    if (!isIndexMediaType(mediaType)) fail(`media type ${mediaType} is not an index but the document lists manifests`);
    if (!Array.isArray(parsed.manifests)) fail('"manifests" must be an array');
    const list = parsed.manifests as unknown[];
    const max = options.maxManifests ?? 1024;
    if (list.length > max) fail(`index lists ${list.length} manifests, more than the limit of ${max}`);
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType,
      manifests: list.map((d, i) => parseDescriptor(d, `manifests[${i}]`, fail)),
      ...(artifactType !== undefined && { artifactType }),
      ...(subject !== undefined && { subject }),
      ...(annotations !== undefined && { annotations }),
    };
    return { kind: 'index', mediaType, index };
  }

  if (!isManifestMediaType(mediaType)) fail(`unsupported manifest media type ${mediaType}`, 'ErrUnsupportedMediaType');
  if (!Array.isArray(parsed.layers)) fail('"layers" must be an array');
  const layers = parsed.layers as unknown[];
  const max = options.maxLayers ?? 1024;
  if (layers.length > max) fail(`manifest lists ${layers.length} layers, more than the limit of ${max}`);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: parseDescriptor(parsed.config, 'config', fail),
    layers: layers.map((d, i) => parseDescriptor(d, `layers[${i}]`, fail)),
    ...(artifactType !== undefined && { artifactType }),
    ...(subject !== undefined && { subject }),
    ...(annotations !== undefined && { annotations }),
  };
  return { kind: 'manifest', mediaType, manifest };
}

type Fail = (message: string, code?: ManifestErrorCode) => never;

/** Validates one descriptor; its digest is safe to put in a URL or a path afterwards. */
export function parseDescriptor(value: unknown, where: string, fail: Fail): Descriptor {
  if (!isObject(value)) return fail(`${where} must be an object`);
  const mediaType = value.mediaType;
  if (typeof mediaType !== 'string' || mediaType === '') fail(`${where}.mediaType must be a non-empty string`);
  const digest = value.digest;
  if (typeof digest !== 'string') return fail(`${where}.digest must be a string`);
  const checked = tryParseDigest(digest);
  if (!checked.ok) {
    const shown = JSON.stringify(digest.length > 80 ? `${digest.slice(0, 80)}…` : digest);
    if (checked.error.code === 'digest.ErrDigestUnsupported') {
      fail(`${where}.digest ${shown} uses an unsupported algorithm`, 'ErrUnsupportedDigestAlgorithm');
    }
    fail(`${where}.digest ${shown} is not a valid digest (${checked.error.reason})`);
  }
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    fail(`${where}.size must be a non-negative integer below 2^53, got ${JSON.stringify(size)}`);
  }
  if (size === 0 && digest !== EMPTY_SHA256)
    fail(`${where}.size is 0 but ${digest} is not the digest of empty content`);

  const descriptor: { -readonly [K in keyof Descriptor]: Descriptor[K] } = {
    mediaType: mediaType as string,
    digest,
    size: size as number,
  };
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((u) => typeof u === 'string'))
      fail(`${where}.urls must be an array of strings`);
    descriptor.urls = value.urls as string[];
  }
  const annotations = optionalAnnotations(value.annotations, `${where}.annotations`, fail);
  if (annotations !== undefined) descriptor.annotations = annotations;
  if (value.data !== undefined) {
    if (typeof value.data !== 'string') fail(`${where}.data must be a base64 string`);
    descriptor.data = value.data as string;
  }
  if (value.artifactType !== undefined) {
    if (typeof value.artifactType !== 'string') fail(`${where}.artifactType must be a string`);
    descriptor.artifactType = value.artifactType as string;
  }
  if (value.platform !== undefined) descriptor.platform = parsePlatformField(value.platform, `${where}.platform`, fail);
  return descriptor;
}

function parsePlatformField(value: unknown, where: string, fail: Fail): Platform {
  if (!isObject(value)) return fail(`${where} must be an object`);
  const { architecture, os, variant } = value;
  if (typeof architecture !== 'string' || typeof os !== 'string')
    return fail(`${where} needs string "os" and "architecture"`);
  const platform: { -readonly [K in keyof Platform]: Platform[K] } = { architecture, os };
  if (variant !== undefined) {
    if (typeof variant !== 'string') fail(`${where}.variant must be a string`);
    platform.variant = variant as string;
  }
  const osVersion = value['os.version'];
  if (osVersion !== undefined) {
    if (typeof osVersion !== 'string') fail(`${where}.os.version must be a string`);
    platform['os.version'] = osVersion as string;
  }
  const features = value['os.features'];
  if (features !== undefined) {
    if (!Array.isArray(features) || !features.every((f) => typeof f === 'string'))
      fail(`${where}.os.features must be an array of strings`);
    platform['os.features'] = features as string[];
  }
  return platform;
}

function optionalString(obj: Record<string, unknown>, key: string, fail: Fail): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return fail(`"${key}" must be a string`);
  return value;
}

function optionalAnnotations(value: unknown, where: string, fail: Fail): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    return fail(`${where} must map strings to strings`);
  }
  return value as Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every blob a manifest refers to, config first. */
export function manifestBlobs(manifest: ImageManifest): Descriptor[] {
  return [manifest.config, ...manifest.layers];
}
