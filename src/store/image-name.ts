import { isValidDigest } from '../digest/index.ts';

/** The parts of a full normalized reference as the store keeps it
 * (`docker.io/library/busybox:1.36`, `…/busybox@sha256:…`, `…/busybox:1.36@sha256:…`). */
export interface ImageNameParts {
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 4096;

/**
 * Splits a reference into repository, tag and digest, or undefined when it is not one. This is not
 * reference normalization (that belongs to `reference/`, before the store is called): it only makes
 * sure the name is a single printable token whose tag and digest are well formed.
 */
export function splitImageName(name: string): ImageNameParts | undefined {
  if (name.length === 0 || name.length > MAX_NAME) return undefined;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return undefined;
  }
  let rest = name;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at !== -1) {
    digest = name.slice(at + 1);
    if (!isValidDigest(digest)) return undefined;
    rest = name.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    if (!TAG.test(tag)) return undefined;
    rest = rest.slice(0, colon);
  }
  if (rest.length === 0) return undefined;
  return { repository: rest, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}
