import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MediaType } from './media-types.ts';
import { MAX_REFERRER_CANDIDATES, referrersAmong } from './referrers.ts';
import type { Descriptor } from './types.ts';

const digestOf = (bytes: Uint8Array | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A document in memory with its descriptor. */
function doc(body: object): { descriptor: Descriptor; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(body));
  const mediaType = (body as { mediaType: string }).mediaType;
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

const config = { mediaType: 'application/vnd.example.config', digest: digestOf('{}'), size: 2 };

describe('referrersAmong', () => {
  const image = doc({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] });
  const subject = image.descriptor;
  const typed = doc({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: 'application/vnd.example.sig',
    config,
    layers: [],
    subject,
    annotations: { a: 'b' },
  });
  const untyped = doc({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [], subject });
  const all = new Map([image, typed, untyped].map((d) => [d.descriptor.digest, d.bytes]));
  const read = async (d: Descriptor) => all.get(d.digest) ?? Promise.reject(new Error('absent'));

  it('lists the documents with the subject, artifactType from the document or its config, annotations kept', async () => {
    const broken: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf('gone'), size: 4 };
    const found = await referrersAmong([image.descriptor, typed.descriptor, broken, untyped.descriptor], read);
    assert.deepEqual(found.get(subject.digest), [
      { ...typed.descriptor, artifactType: 'application/vnd.example.sig', annotations: { a: 'b' } },
      { ...untyped.descriptor, artifactType: config.mediaType },
    ]);
    assert.equal(found.size, 1);
  });

  it(`refuses to search more than ${MAX_REFERRER_CANDIDATES} documents`, async () => {
    const many = Array.from({ length: MAX_REFERRER_CANDIDATES + 1 }, (_, i) => ({
      mediaType: MediaType.OciManifest,
      digest: digestOf(`m${i}`),
      size: 1,
    }));
    await assert.rejects(referrersAmong(many, read), { code: 'ErrTooManyReferrers' });
  });
});
