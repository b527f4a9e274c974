/**
 * One upstream download of a blob, shared by every client asking for it meanwhile: the bytes go
 * into the store's ingest (verified at commit) and each client follows the partial file at its
 * own pace, so a slow client holds back nobody and memory stays bounded. A client never gets the
 * last byte of its answer before the blob verified: when verification fails, its connection is
 * reset instead of ending cleanly on a wrong body.
 */
import { EventEmitter } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { Descriptor } from '../oci/index.ts';
import type { BlobSink, RegistryClient } from '../registry/index.ts';
import type { Ingest, Store } from '../store/index.ts';
import { CHUNK_BYTES, ChunkSender } from './chunk-sender.ts';

/** `verified`: every byte arrived and the ingest's commit found them hashing to the digest (its
 * fsync and rename may still be running): clients may have their last byte. */
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
      // Followers read the partial file while it grows, whatever the blob's size.
      ingest = await this.store.openIngest(descriptor, {
        source: `${this.repo.registry}/${this.repo.path}`,
        partialFile: true,
      });
      this.ingest = ingest;
      if (!ingest.alreadyPresent && ingest.offset < descriptor.size) {
        this.state = 'running';
        this.changed();
        const current = ingest;
        const sink: BlobSink = {
          get offset() {
            return current.bytes;
          },
          write: async (chunk) => {
            await current.write(chunk);
            this.onUpstreamBytes(chunk.byteLength);
            this.changed();
          },
          take: (chunk) => {
            const result = current.take(chunk);
            this.onUpstreamBytes(chunk.byteLength);
            this.changed();
            return result;
          },
          reset: async () => {
            await current.reset();
            this.changed();
          },
        };
        // Hashed once, by the ingest, which verifies at commit.
        await this.client.fetchBlob(this.repo, descriptor, sink, { verify: false });
      }
      // Clients get their last byte once the content is known good, before the commit's fsync.
      await ingest.commit({
        onVerified: () => {
          this.state = 'verified';
          this.changed();
        },
      });
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
   * Reads wait for a whole chunk while the download runs, so that a fast upstream's many small
   * socket reads do not each cost every follower a read and a write.
   */
  async follow(res: ServerResponse, start: number, end: number, onBytes: (n: number) => void): Promise<void> {
    let handle: FileHandle | undefined;
    let position = start;
    const stop = end + 1;
    const sender = new ChunkSender(res, stop - start);
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
          await sender.finish();
          res.end();
          return;
        }
        if (position >= available || (!complete && available - position < CHUNK_BYTES && available < end)) {
          await this.next();
          continue;
        }
        if (handle === undefined) handle = await this.openSource(committed);
        const buffer = sender.buffer();
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, available - position), position);
        if (bytesRead === 0) {
          // Not in the file yet (the ingest gathers small writes), or the partial was reset
          // (upstream ignored a Range): wait for it to grow.
          await this.next();
          continue;
        }
        position += bytesRead;
        onBytes(bytesRead);
        await sender.send(buffer.subarray(0, bytesRead));
      }
    } catch (err) {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      await sender.finish().catch(() => undefined);
      await handle?.close().catch(() => undefined);
    }
  }

  /** The partial file while downloading (it stays readable after the rename at commit), else the blob. */
  private async openSource(committed: boolean): Promise<FileHandle> {
    if (!committed) {
      const partial = await this.ingest?.openPartial().catch(() => undefined);
      // Without one (renamed into blobs/ meanwhile, or never a file): read the blob.
      if (partial !== undefined) return partial;
    }
    return (await this.store.openBlobFile(this.descriptor.digest)).handle;
  }
}
