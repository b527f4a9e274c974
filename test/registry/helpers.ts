/** Shared pieces of the registry client's integration tests: sinks, clocks, event capture. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { BlobSink, RegistryEvent } from '../../src/registry/index.ts';
import { ManualClock } from '../../src/signals/index.ts';

/** Holds the blob in memory and can read it back (so a resumed download is verified end to end). */
export class MemorySink implements BlobSink {
  private chunks: Buffer[] = [];
  offset = 0;
  resets = 0;
  writes = 0;

  constructor(initial?: Uint8Array) {
    if (initial !== undefined && initial.byteLength > 0) {
      this.chunks.push(Buffer.from(initial));
      this.offset = initial.byteLength;
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(Buffer.from(chunk));
    this.offset += chunk.byteLength;
    this.writes++;
  }

  async reset(): Promise<void> {
    this.chunks = [];
    this.offset = 0;
    this.resets++;
  }

  async *read(): AsyncIterable<Uint8Array> {
    yield* this.chunks;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A sink without `read()`: a partial content it starts with cannot be re-hashed. */
export class OpaqueSink implements BlobSink {
  private readonly inner: MemorySink;
  constructor(initial?: Uint8Array) {
    this.inner = new MemorySink(initial);
  }
  get offset(): number {
    return this.inner.offset;
  }
  get resets(): number {
    return this.inner.resets;
  }
  write(chunk: Uint8Array): Promise<void> {
    return this.inner.write(chunk);
  }
  reset(): Promise<void> {
    return this.inner.reset();
  }
  bytes(): Buffer {
    return this.inner.bytes();
  }
}

/** Counts and throws bytes away. */
export class DiscardSink implements BlobSink {
  offset = 0;
  async write(chunk: Uint8Array): Promise<void> {
    this.offset += chunk.byteLength;
  }
  async reset(): Promise<void> {
    this.offset = 0;
  }
}

const T0 = Date.parse('2026-03-01T12:00:00Z');

/** Time that only moves when someone sleeps; sleeps are recorded (`sleeps`) and pass at once. */
export class FakeClock extends ManualClock {
  constructor() {
    super(T0, { autoAdvance: true });
  }
}

/** Time moved by hand (`advance`): the one ManualClock, started at a fixed instant. */
export class HandClock extends ManualClock {
  constructor() {
    super(T0);
  }
}

/** Collects events; `json()` is everything the client ever told the outside world. */
export function captureEvents(): { events: RegistryEvent[]; onEvent: (e: RegistryEvent) => void; json: () => string } {
  const events: RegistryEvent[] = [];
  return { events, onEvent: (e) => events.push(e), json: () => JSON.stringify(events) };
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export async function readBlob(blobPath: string): Promise<Buffer> {
  return readFile(blobPath);
}

/** Polls until `check` holds (for state reached asynchronously), or fails after `ms`. */
export async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every string and own property of an error and its causes, for "no secret leaked" checks. */
export function dumpError(err: unknown): string {
  const seen = new Set<unknown>();
  const parts: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 6 || value === null || value === undefined || seen.has(value)) return;
    if (typeof value === 'string') {
      parts.push(value);
      return;
    }
    if (typeof value !== 'object') {
      parts.push(String(value));
      return;
    }
    seen.add(value);
    if (value instanceof Error) {
      parts.push(value.message, value.stack ?? '');
      visit(value.cause, depth + 1);
    }
    for (const key of Object.getOwnPropertyNames(value)) visit((value as Record<string, unknown>)[key], depth + 1);
  };
  visit(err, 0);
  return parts.join('\n');
}
