/** Shared pieces of the pull engine's integration tests: request counts, store listings, events. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PullEvent } from '../../src/pull/index.ts';
import type { FaultProxy, RecordedRequest } from '../harness/index.ts';

/** Requests the proxy saw for blobs (`/v2/<name>/blobs/<digest>`). */
export function blobRequests(proxy: FaultProxy): RecordedRequest[] {
  return proxy.requests.filter((r) => r.path.includes('/blobs/'));
}

/** Requests the proxy saw for manifests (`/v2/<name>/manifests/<ref>`). */
export function manifestRequests(proxy: FaultProxy): RecordedRequest[] {
  return proxy.requests.filter((r) => r.path.includes('/manifests/'));
}

/** `METHOD /path` of every request, for readable assertion failures. */
export function describeRequests(requests: readonly RecordedRequest[]): string[] {
  return requests.map((r) => `${r.method} ${r.path}`);
}

/** How many GET requests asked for each blob digest. */
export function blobGetCounts(proxy: FaultProxy): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of blobRequests(proxy)) {
    if (r.method !== 'GET') continue;
    const digest = r.path.slice(r.path.lastIndexOf('/') + 1);
    counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

/** Every digest in `blobs/sha256/` of an OCI layout. */
export async function storedBlobs(root: string): Promise<string[]> {
  const names = await readdir(join(root, 'blobs', 'sha256')).catch(() => [] as string[]);
  return names.map((hex) => `sha256:${hex}`).sort();
}

/** Files left in a store's `ingest/` (partial downloads, their metadata, locks). */
export async function ingestFiles(root: string): Promise<string[]> {
  return readdir(join(root, 'ingest')).catch(() => [] as string[]);
}

export interface LayoutIndexEntry {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Record<string, string>;
}

/** The store's `index.json` entries as written on disk. */
export async function layoutEntries(root: string): Promise<LayoutIndexEntry[]> {
  const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as { manifests: LayoutIndexEntry[] };
  return index.manifests;
}

/** Collects pull events. */
export function captureEvents(): { events: PullEvent[]; onEvent: (e: PullEvent) => void } {
  const events: PullEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}

/** Polls until `check` holds (state another process or socket reaches on its own), or fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
