/**
 * An OCI image layout as either end of a copy: the kimg store, or any `oci:DIR` written by
 * skopeo, crane, umoci or `ctr images export`. Reads go through the store's bounded, symlink-
 * refusing readers; writes through its verified ingest, the name recorded last.
 */
import { referrersAmong, type Descriptor } from '../oci/index.ts';
import type { BlobSource } from '../registry/index.ts';
import { splitImageName, withoutNameAnnotations, type Store } from '../store/index.ts';
import {
  CopyError,
  type BlobOutcome,
  type ImageDestination,
  type ImageSource,
  type PushBlobContext,
  type TopLevel,
} from './types.ts';

const MANIFEST_LIMIT = 4 * 1024 * 1024;

/**
 * A blob of a layout from any offset, read as the store reads its blobs (never through a symlink,
 * only a regular file, the store's errors). With `reuse` one buffer is read into again for every
 * chunk (Store.readBlobChunks); otherwise each chunk is a buffer of its own (openBlobStream). The
 * file opens when the first chunk is asked for, not before.
 */
export function layoutBlobSource(store: Store, descriptor: Descriptor): BlobSource {
  return {
    async *open(offset: number, _signal?: AbortSignal, reuse = false) {
      if (reuse) yield* store.readBlobChunks(descriptor.digest, offset);
      else yield* store.openBlobStream(descriptor.digest, { start: offset }) as AsyncIterable<Buffer>;
    },
  };
}

/** The layout entry `reference` designates: a full name, a tag, or the only entry when none. */
async function findRoot(store: Store, reference: string | undefined, label: string) {
  if (reference !== undefined) {
    let record = await store.getImage(reference);
    if (record === undefined && !/[/:@]/.test(reference)) {
      // A bare tag (`oci:DIR:v1`): the one entry whose full name carries that tag.
      const tagged = (await store.listImages()).filter(
        (r) => r.name !== undefined && splitImageName(r.name)?.tag === reference,
      );
      if (tagged.length === 1) record = tagged[0];
    }
    if (record === undefined)
      throw new CopyError('ErrImageUnknown', `${label}: no image named ${JSON.stringify(reference)} in ${store.root}`, {
        image: label,
      });
    return record;
  }
  const all = await store.listImages();
  if (all.length !== 1 || all[0] === undefined) {
    throw new CopyError(
      'ErrImageUnknown',
      `${label}: the layout ${store.root} holds ${all.length} images; name one (oci:DIR:REF)`,
      { image: label },
    );
  }
  return all[0];
}

/** A layout (or the store) as a source. */
export class LayoutSource implements ImageSource {
  private referrerMap: Promise<Map<string, Descriptor[]>> | undefined;

  constructor(
    private readonly store: Store,
    private readonly reference: string | undefined,
    readonly label: string,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  async root(): Promise<TopLevel> {
    const record = await findRoot(this.store, this.reference, this.label);
    const descriptor = withoutNameAnnotations(record.descriptor);
    const bytes = await this.manifest(descriptor);
    return { descriptor, bytes, ...(record.name !== undefined && { name: record.name }) };
  }

  async manifest(descriptor: Descriptor): Promise<Uint8Array> {
    if (descriptor.size > MANIFEST_LIMIT) {
      throw new CopyError(
        'ErrManifestTooLarge',
        `${this.label}: manifest ${descriptor.digest} declares ${descriptor.size} bytes, more than ${MANIFEST_LIMIT}`,
        { image: this.label, digest: descriptor.digest },
      );
    }
    try {
      return await this.store.readBlob(descriptor.digest, descriptor.size);
    } catch (err) {
      throw new CopyError(
        'ErrBlobUnknown',
        `${this.label}: manifest ${descriptor.digest}: ${(err as Error).message}`,
        { image: this.label, digest: descriptor.digest },
        err,
      );
    }
  }

  hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.store.hasBlob(descriptor.digest);
  }

  blob(descriptor: Descriptor): BlobSource {
    return layoutBlobSource(this.store, descriptor);
  }

  /** Referrers the layout lists in `index.json` (as oras writes artifacts into a layout); a
   * referrer only among the blobs is not found. */
  async referrers(subject: Descriptor): Promise<readonly Descriptor[]> {
    this.referrerMap ??= this.store.listImages().then((records) =>
      referrersAmong(
        records.map((r) => r.descriptor),
        (d) => this.manifest(d),
      ),
    );
    return (await this.referrerMap).get(subject.digest) ?? [];
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

/** The name to record in a layout: a full reference as given, or a bare tag under the source's
 * repository (`oci:DIR:v1` keeps `ref.name` = `v1`, as skopeo reads it). */
export function layoutName(reference: string | undefined, sourceName: string | undefined): string {
  if (reference !== undefined) {
    const parts = splitImageName(reference);
    if (
      parts !== undefined &&
      (parts.tag !== undefined || parts.digest !== undefined) &&
      parts.repository.includes('/')
    )
      return reference;
  }
  const repository = splitImageName(sourceName ?? '')?.repository ?? 'localhost/image';
  return `${repository}:${reference ?? splitImageName(sourceName ?? '')?.tag ?? 'latest'}`;
}

/** A layout (or the store) as a destination; blobs are verified on ingest. Referrers are kept
 * as entries of `index.json` named `REPOSITORY@DIGEST` (what a layout source finds them by). */
export class LayoutDestination implements ImageDestination {
  /** Every name written, the image's first. */
  private readonly names: string[] = [];

  constructor(
    private readonly store: Store,
    private readonly reference: string | undefined,
    readonly label: string,
    /** After the image and its referrers (an archive is written then). */
    private readonly onFinish: (names: readonly string[]) => Promise<void> = async () => undefined,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  async current(): Promise<Descriptor | undefined> {
    if (this.reference === undefined) return undefined;
    return (await this.store.getImage(this.reference))?.descriptor;
  }

  async pushBlob(descriptor: Descriptor, source: BlobSource, context: PushBlobContext): Promise<BlobOutcome> {
    const ingest = await this.store.openIngest(descriptor, {
      ...(context.signal !== undefined && { signal: context.signal }),
    });
    if (ingest.alreadyPresent) return 'exists';
    try {
      await context.waitToSend?.();
      let done = ingest.offset;
      for await (const chunk of source.open(ingest.offset, context.signal)) {
        await ingest.write(chunk);
        done += chunk.byteLength;
        context.onProgress?.(done);
      }
      context.onSent?.();
      await ingest.commit();
    } catch (err) {
      await ingest.abort().catch(() => undefined);
      throw new CopyError(
        isCode(err) ?? 'ErrCopy',
        `${this.label}: blob ${descriptor.digest}: ${(err as Error).message}`,
        { digest: descriptor.digest },
        err,
      );
    }
    return 'pushed';
  }

  async putManifest(descriptor: Descriptor, bytes: Uint8Array): Promise<void> {
    await this.store.putBlob(descriptor, bytes);
  }

  async commit(top: TopLevel): Promise<string> {
    await this.store.putBlob(top.descriptor, top.bytes);
    const name = layoutName(this.reference, top.name);
    await this.store.setImage(name, top.descriptor);
    this.names.push(name);
    return name;
  }

  async putReferrer(descriptor: Descriptor, bytes: Uint8Array): Promise<'index'> {
    await this.store.putBlob(descriptor, bytes);
    const image = this.names[0] ?? layoutName(this.reference, undefined);
    const name = `${splitImageName(image)?.repository ?? 'localhost/image'}@${descriptor.digest}`;
    await this.store.setImage(name, descriptor);
    this.names.push(name);
    return 'index';
  }

  finish(): Promise<void> {
    return this.onFinish(this.names);
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

function isCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('Err') ? code : undefined;
}
