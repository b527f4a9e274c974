/**
 * OCI 1.1 referrers read from a document: what a referrers index lists for a manifest or index
 * with a `subject` (opencontainers/distribution-spec spec.md, "Listing Referrers": `artifactType`
 * is the document's own, else an image manifest's config media type; its annotations are
 * copied), and the referrers among a set of documents (an OCI layout's `index.json` entries, as
 * oras writes artifacts into a layout). No I/O: the caller reads the documents.
 */
import { KimgError } from '../errors/index.ts';
import { parseManifestDocument } from './document.ts';
import type { Descriptor, ManifestDocument } from './types.ts';
import { isDocumentMediaType } from './walk.ts';

/** A document's subject and the descriptor a referrers index lists for it; undefined without one. */
export function referrerOf(
  document: ManifestDocument,
  digest: string,
  size: number,
): { readonly subject: string; readonly descriptor: Descriptor } | undefined {
  const body = document.kind === 'manifest' ? document.manifest : document.index;
  if (body.subject === undefined) return undefined;
  const artifactType =
    body.artifactType ?? (document.kind === 'manifest' ? document.manifest.config.mediaType : undefined);
  return {
    subject: body.subject.digest,
    descriptor: {
      mediaType: document.mediaType,
      digest,
      size,
      ...(artifactType !== undefined && { artifactType }),
      ...(body.annotations !== undefined && { annotations: body.annotations }),
    },
  };
}

/** Documents `referrersAmong` reads at most: a layout listing more is refused, not half searched. */
export const MAX_REFERRER_CANDIDATES = 4096;

/**
 * The referrers among `candidates`, by subject digest: each document candidate read once with
 * `read` (which bounds and verifies it); one that cannot be read or parsed refers to nothing.
 * More than `MAX_REFERRER_CANDIDATES` documents: ErrTooManyReferrers.
 */
export async function referrersAmong(
  candidates: readonly Descriptor[],
  read: (descriptor: Descriptor) => Promise<Uint8Array>,
): Promise<Map<string, Descriptor[]>> {
  const bySubject = new Map<string, Descriptor[]>();
  const seen = new Set<string>();
  for (const candidate of candidates) {
    if (!isDocumentMediaType(candidate.mediaType) || seen.has(candidate.digest)) continue;
    seen.add(candidate.digest);
    if (seen.size > MAX_REFERRER_CANDIDATES) {
      throw new KimgError(
        'ErrTooManyReferrers',
        `more than ${MAX_REFERRER_CANDIDATES} manifests to search for referrers; none was copied`,
      );
    }
    let found;
    try {
      const bytes = await read(candidate);
      const document = parseManifestDocument(bytes, {
        what: candidate.digest,
        descriptorMediaType: candidate.mediaType,
      });
      found = referrerOf(document, candidate.digest, bytes.byteLength);
    } catch {
      continue;
    }
    if (found === undefined) continue;
    const list = bySubject.get(found.subject) ?? [];
    list.push(found.descriptor);
    bySubject.set(found.subject, list);
  }
  return bySubject;
}
