/**
 * One upstream download of a blob, shared by every client asking for it meanwhile: the bytes go
 * into the store's ingest (verified at commit) and each client follows the partial file at its
 * own pace, so a slow client holds back nobody and memory stays bounded. A client never gets the
 * last byte of its answer before the blob verified: when verification fails, its connection is
 * reset instead of ending cleanly on a wrong body.
 */
import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { parseDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { BlobSink, RegistryClient } from '../registry/index.ts';
import type { Ingest, Store } from '../store/index.ts';

const READ_CHUNK = 1 << 20;

/** `verified`: every byte arrived and hashes to the digest (the store's commit, which verifies
 * again and syncs to disk, may still be running): clients may have their last byte. */
export type DownloadState = 'starting' | 'running' | 'verified' | 'committed' | 'failed';

export class BlobDownload extends EventEmitter {
  state: DownloadState = 'starting';
  error: unknown;
  private ingest: Ingest | undefined;
  /** Settles when the download committed or failed; never rejects. */
  readonly done: Promise<void>;

  constructor(
    readonly descriptor: Descriptor,
    private readonly store: Store,
    private readonly client: RegistryClient,
    private readonly repo: { registry: string; path: string },
    private readonly onUpstreamBytes: (n: number) => void,
  ) {
    super();
    this.setMaxListeners(0);
    this.done = this.run().catch(() => undefined);
  }

  /** Bytes in the partial file (or the whole blob once committed). */
  get bytes(): number {
    if (this.state === 'committed' || this.state === 'verified') return this.descriptor.size;
    return this.ingest?.bytes ?? 0;
  }

  get partialPath(): string | undefined {
    return this.ingest?.partialPath;
  }

  private changed(): void {
    this.emit('progress');
  }

  /** Resolves at the next change (bytes, commit, failure). */
  next(): Promise<void> {
    return new Promise((resolve) => this.once('progress', resolve));
  }

  private async run(): Promise<void> {
    const { descriptor } = this;
    let ingest: Ingest | undefined;
    try {
      ingest = await this.store.openIngest(descriptor, { source: `${this.repo.registry}/${this.repo.path}` });
      this.ingest = ingest;
      if (!ingest.alreadyPresent && ingest.offset < descriptor.size) {
        this.state = 'running';
        this.changed();
        const current = ingest;
        // Hashed here too, so that clients get their last byte as soon as the content is
        // known good, without waiting for the commit's fsync. A resumed partial is not: its
        // first bytes were hashed by the store when it reopened them.
        let hash: Hash | undefined =
          current.offset === 0 ? createHash(parseDigest(descriptor.digest).algorithm) : undefined;
        const sink: BlobSink = {
          get offset() {
            return current.bytes;
          },
          write: async (chunk) => {
            await current.write(chunk);
            hash?.update(chunk);
            this.onUpstreamBytes(chunk.byteLength);
            this.changed();
          },
          take: (chunk) => {
            const result = current.take(chunk);
            hash?.update(chunk);
            this.onUpstreamBytes(chunk.byteLength);
            this.changed();
            return result;
          },
          reset: async () => {
            await current.reset();
            hash = createHash(parseDigest(descriptor.digest).algorithm);
            this.changed();
          },
        };
        await this.client.fetchBlob(this.repo, descriptor, sink, { verify: false });
        if (hash !== undefined && current.bytes === descriptor.size) {
          if (`${parseDigest(descriptor.digest).algorithm}:${hash.digest('hex')}` === descriptor.digest) {
            this.state = 'verified';
            this.changed();
          }
        }
      }
      await ingest.commit();
      this.state = 'committed';
      this.changed();
    } catch (err) {
      this.error = err;
      this.state = 'failed';
      // A partial that was only cut short is kept for the next request to resume; a failed
      // commit (a wrong digest) has already removed it.
      await ingest?.abort({ keepPartial: (ingest?.bytes ?? 0) > 0 }).catch(() => undefined);
      this.changed();
      throw err;
    }
  }

  /** Waits until the download has bytes, committed or failed (what decides the answer's status). */
  async started(): Promise<void> {
    while (this.state === 'starting' || (this.state === 'running' && this.bytes === 0)) await this.next();
  }

  /**
   * Sends bytes `start`..`end` (inclusive) to `res` as they arrive, the last one only after the
   * blob verified. Resolves when the answer ended; on a failed download the connection is reset.
   */
  async follow(res: ServerResponse, start: number, end: number, onBytes: (n: number) => void): Promise<void> {
    let handle: FileHandle | undefined;
    let position = start;
    const stop = end + 1;
    try {
      for (;;) {
        if (res.destroyed) return;
        if (this.state === 'failed') {
          res.destroy(new Error('the blob failed verification or its download failed'));
          return;
        }
        const committed = this.state === 'committed';
        const complete = committed || this.state === 'verified';
        const available = complete ? stop : Math.min(this.bytes, end);
        if (position >= stop) {
          res.end();
          return;
        }
        if (position >= available) {
          await this.next();
          continue;
        }
        if (handle === undefined) handle = await this.openSource(committed);
        const length = Math.min(READ_CHUNK, available - position);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead === 0) {
          // The partial was reset (upstream ignored a Range): wait for it to grow again.
          await this.next();
          continue;
        }
        position += bytesRead;
        onBytes(bytesRead);
        if (!res.write(buffer.subarray(0, bytesRead))) await drained(res);
      }
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /** The partial file while downloading (it stays readable after the rename at commit), else the blob. */
  private async openSource(committed: boolean): Promise<FileHandle> {
    const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
    const partial = this.partialPath;
    if (!committed && partial !== undefined) {
      try {
        return await open(partial, flags);
      } catch {
        // Renamed into blobs/ meanwhile: read it there.
      }
    }
    return open(this.store.blobPath(this.descriptor.digest), flags);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
