/**
 * A registry as either end of a copy, through the one registry client. Blobs stream from the
 * source's `GET` into the destination's upload with a small queue between them (bounded memory);
 * the upload hashes every byte, so the source read does not hash twice.
 */
import { PassThrough } from 'node:stream';
import { isKimgError } from '../errors/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { NamedReference } from '../reference/index.ts';
import {
  referrersTag,
  type BlobSink,
  type BlobSource,
  type RegistryClient,
  type RepositoryRef,
} from '../registry/index.ts';
import {
  CopyError,
  type BlobOutcome,
  type ImageDestination,
  type ImageSource,
  type PushBlobContext,
  type TopLevel,
} from './types.ts';

/** Bytes queued between a blob's download and its upload. */
const QUEUE_BYTES = 1 << 20;

function repositoryOf(ref: NamedReference): RepositoryRef {
  return { registry: ref.domain, path: ref.path };
}

/** A blob read from a registry from any offset, as a stream (the download resumes on its own). */
export function registryBlobSource(client: RegistryClient, repo: RepositoryRef, descriptor: Descriptor): BlobSource {
  return {
    open(offset: number, signal?: AbortSignal): AsyncIterable<Uint8Array> {
      const queue = new PassThrough({ highWaterMark: QUEUE_BYTES });
      let held = offset;
      const sink: BlobSink = {
        get offset() {
          return held;
        },
        write(chunk: Uint8Array): Promise<void> {
          held += chunk.byteLength;
          if (queue.write(chunk)) return Promise.resolve();
          return new Promise((resolve, reject) => {
            const done = () => {
              queue.off('close', closed);
              resolve();
            };
            const closed = () => {
              queue.off('drain', done);
              reject(new Error('the upload stopped reading'));
            };
            queue.once('drain', done);
            queue.once('close', closed);
          });
        },
        reset(): Promise<void> {
          return Promise.reject(new Error('cannot rewind a blob already streamed to the destination'));
        },
      };
      const controller = new AbortController();
      const both = signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]);
      queue.once('close', () => controller.abort(new Error('the upload stopped reading')));
      client
        .fetchBlob(repo, descriptor, sink, {
          signal: both,
          verify: false,
          onRangeIgnored: offset > 0 ? 'error' : 'restart',
        })
        .then(
          () => queue.end(),
          (err: unknown) => queue.destroy(err instanceof Error ? err : new Error(String(err))),
        );
      return queue;
    },
  };
}

/** `docker://REF` as a source. */
export class RegistrySource implements ImageSource {
  readonly label: string;
  readonly repository: RepositoryRef;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: NamedReference,
  ) {
    this.label = `docker://${ref.toString()}`;
    this.repository = repositoryOf(ref);
  }

  async root(signal?: AbortSignal): Promise<TopLevel> {
    const found = await this.client.resolve(this.repository, this.ref.digest ?? this.ref.tag ?? 'latest', {
      ...(signal !== undefined && { signal }),
    });
    const bytes =
      found.manifest?.bytes ??
      (
        await this.client.getManifest(this.repository, found.descriptor.digest, {
          descriptor: found.descriptor,
          ...(signal !== undefined && { signal }),
        })
      ).bytes;
    return { descriptor: found.descriptor, bytes, name: this.ref.toString() };
  }

  async manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    const got = await this.client.getManifest(this.repository, descriptor.digest, {
      descriptor,
      ...(signal !== undefined && { signal }),
    });
    return got.bytes;
  }

  blob(descriptor: Descriptor): BlobSource {
    return registryBlobSource(this.client, this.repository, descriptor);
  }

  async referrers(subject: Descriptor, signal?: AbortSignal): Promise<readonly Descriptor[]> {
    const list = await this.client.listReferrers(this.repository, subject.digest, {
      ...(signal !== undefined && { signal }),
    });
    if (list.truncated) {
      throw new CopyError(
        'ErrTooManyReferrers',
        `${this.label}: ${subject.digest} has more than ${list.manifests.length} referrers (through the ${list.via === 'api' ? 'referrers API' : `tag ${referrersTag(subject.digest)}`}); none of them was copied`,
        { image: this.label, digest: subject.digest },
      );
    }
    return list.manifests;
  }

  async close(): Promise<void> {}
}

/** `docker://REF` as a destination: the tag (or digest) is written last. */
export class RegistryDestination implements ImageDestination {
  readonly label: string;
  private readonly repository: RepositoryRef;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: NamedReference,
  ) {
    this.label = `docker://${ref.toString()}`;
    this.repository = repositoryOf(ref);
  }

  async current(signal?: AbortSignal): Promise<Descriptor | undefined> {
    try {
      const found = await this.client.resolve(this.repository, this.ref.tag ?? this.ref.digest ?? 'latest', {
        ...(signal !== undefined && { signal }),
      });
      return found.descriptor;
    } catch (err) {
      if (isKimgError(err, 'ErrManifestUnknown') || isKimgError(err, 'ErrNameUnknown')) return undefined;
      throw err;
    }
  }

  async pushBlob(descriptor: Descriptor, source: BlobSource, context: PushBlobContext): Promise<BlobOutcome> {
    const mountFrom =
      context.mountFrom !== undefined && context.mountFrom.registry === this.repository.registry
        ? context.mountFrom.path
        : undefined;
    const result = await this.client.pushBlob(this.repository, descriptor, source, {
      ...(context.signal !== undefined && { signal: context.signal }),
      ...(mountFrom !== undefined && { mountFrom }),
      ...(context.onProgress !== undefined && { onProgress: context.onProgress }),
    });
    return result.outcome;
  }

  async putManifest(descriptor: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.client.putManifest(this.repository, descriptor.digest, bytes, descriptor.mediaType, {
      ...(signal !== undefined && { signal }),
    });
  }

  async putReferrer(
    descriptor: Descriptor,
    bytes: Uint8Array,
    subject: Descriptor,
    signal?: AbortSignal,
  ): Promise<'api' | 'tag'> {
    const options = { ...(signal !== undefined && { signal }) };
    const put = await this.client.putManifest(this.repository, descriptor.digest, bytes, descriptor.mediaType, options);
    if (put.subject !== undefined) return 'api';
    // No `OCI-Subject`: the registry does not index subjects (Distribution 2.8); the fallback tag.
    await this.client.addToReferrersTag(this.repository, subject.digest, descriptor, options);
    return 'tag';
  }

  async commit(top: TopLevel, signal?: AbortSignal): Promise<string> {
    const reference = this.ref.tag ?? this.ref.digest ?? 'latest';
    await this.client.putManifest(this.repository, reference, top.bytes, top.descriptor.mediaType, {
      ...(signal !== undefined && { signal }),
    });
    return this.ref.toString();
  }

  async close(): Promise<void> {}
}
