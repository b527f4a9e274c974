/**
 * The kubelet's view of an image name (`pkg/util/parsers.ParseImageName`,
 * `applyDefaultImageTag`): parsed with parseNormalizedNamed; `latest` only when there is neither
 * tag nor digest; the default tag appended literally, so the runtime sees `busybox:latest`, not
 * `docker.io/library/busybox:latest`.
 */
import { DEFAULT_TAG, tryParseNormalizedNamed } from '../reference/index.ts';
import { goQuote } from './go-format.ts';

export interface ParsedImageName {
  /** The normalized repository without tag or digest: `docker.io/library/nginx`. */
  readonly repository: string;
  readonly domain: string;
  readonly path: string;
  /** `latest` when neither tag nor digest is written, else the tag written or `''`. */
  readonly tag: string;
  readonly digest: string;
}

export type ImageNameResult =
  { readonly ok: true; readonly value: ParsedImageName } | { readonly ok: false; readonly error: string };

/** `ParseImageName`; the error text is `couldn't parse image name "<image>": <reference error>`. */
export function parseImageName(image: string): ImageNameResult {
  const parsed = tryParseNormalizedNamed(image);
  if (!parsed.ok) return { ok: false, error: `couldn't parse image name ${goQuote(image)}: ${parsed.error.reason}` };
  const { domain, path, tag, digest } = parsed.value;
  return {
    ok: true,
    value: {
      repository: `${domain}/${path}`,
      domain,
      path,
      tag: tag ?? (digest === undefined ? DEFAULT_TAG : ''),
      digest: digest ?? '',
    },
  };
}

export type DefaultTagResult =
  { readonly ok: true; readonly image: string } | { readonly ok: false; readonly error: string };

/**
 * `applyDefaultImageTag`: a name without tag and digest gets `:latest` appended as written
 * (`busybox` → `busybox:latest`); anything with a digest, or already ending in `:<tag>`, is kept.
 */
export function applyDefaultImageTag(image: string): DefaultTagResult {
  const parsed = parseImageName(image);
  if (!parsed.ok) return parsed;
  const { tag, digest } = parsed.value;
  if (digest === '' && tag !== '' && !image.endsWith(`:${tag}`)) return { ok: true, image: `${image}:${tag}` };
  return { ok: true, image };
}

/** The normalized repository without tag or digest, or undefined when the name does not parse. */
export function repositoryOf(image: string): string | undefined {
  const parsed = parseImageName(image);
  return parsed.ok ? parsed.value.repository : undefined;
}
