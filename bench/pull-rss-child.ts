// Child process of the pull benchmark's memory measurement: pulls one image into a store and
// prints, as one JSON line, its resident memory before the pull and its peak (VmHWM) after it.
// Usage: node --import tsx bench/pull-rss-child.ts REF STORE_DIR [CA_FILE]
import { readFileSync } from 'node:fs';
import { Puller } from '../src/pull/index.ts';
import { peakRss } from './measure.ts';

export interface RssReport {
  /** Resident bytes once everything is loaded, before the pull starts. */
  readonly rssBefore: number;
  /** Peak resident bytes of the whole process (VmHWM), read after the pull. */
  readonly peakRss: number;
  /** process.resourceUsage().maxRSS, in bytes (the kernel's ru_maxrss). */
  readonly maxRss: number;
  readonly bytesReceived: number;
  readonly ms: number;
}

const [ref, store, caFile] = process.argv.slice(2);
if (ref === undefined || store === undefined) throw new Error('usage: pull-rss-child.ts REF STORE_DIR [CA_FILE]');

const puller = new Puller({ store, ...(caFile !== undefined && { caPems: [readFileSync(caFile, 'utf8')] }) });
await puller.store();
const rssBefore = process.memoryUsage.rss();
const start = performance.now();
const result = await puller.pull(ref);
const ms = performance.now() - start;
await puller.close();
const report: RssReport = {
  rssBefore,
  peakRss: peakRss('self') ?? NaN,
  maxRss: process.resourceUsage().maxRSS * 1024,
  bytesReceived: result.bytesReceived,
  ms,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
