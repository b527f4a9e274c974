/**
 * Where KEP-2535 records live. `FsPullRecords` is the kubelet's layout under
 * `<root>/image_manager/` (`pulling/` intents by image, `pulled/` records by imageRef; files 0600
 * in dirs 0700, written to `<name>.tmp` and renamed). `CachedPullRecords` puts the kubelet's
 * write-through LRU caches in front (intents ≤ 1024, records ≤ 2000), authoritative until the
 * first eviction. `MemoryPullRecords` keeps everything in memory (tests, one-shot runs).
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  RecordDecodeError,
  decodePullIntent,
  decodePulledRecord,
  encodePullIntent,
  encodePulledRecord,
  recordFileName,
} from './pull-records-codec.ts';
import type { ImagePullIntent, ImagePulledRecord } from './pull-records.ts';

export interface PullRecordsAccessor {
  listIntents(): Promise<ImagePullIntent[]>;
  intentExists(image: string): Promise<boolean>;
  writeIntent(image: string): Promise<void>;
  deleteIntent(image: string): Promise<void>;
  listRecords(): Promise<ImagePulledRecord[]>;
  getRecord(imageRef: string): Promise<ImagePulledRecord | undefined>;
  writeRecord(record: ImagePulledRecord): Promise<void>;
  deleteRecord(imageRef: string): Promise<void>;
}

/**
 * KEP-2535 records kept in memory only, for tests and one-shot runs; nothing survives the
 * process.
 */
export class MemoryPullRecords implements PullRecordsAccessor {
  readonly intents = new Map<string, ImagePullIntent>();
  readonly records = new Map<string, ImagePulledRecord>();

  async listIntents(): Promise<ImagePullIntent[]> {
    return [...this.intents.values()];
  }
  async intentExists(image: string): Promise<boolean> {
    return this.intents.has(image);
  }
  async writeIntent(image: string): Promise<void> {
    this.intents.set(image, { image });
  }
  async deleteIntent(image: string): Promise<void> {
    this.intents.delete(image);
  }
  async listRecords(): Promise<ImagePulledRecord[]> {
    return [...this.records.values()];
  }
  async getRecord(imageRef: string): Promise<ImagePulledRecord | undefined> {
    return this.records.get(imageRef);
  }
  async writeRecord(record: ImagePulledRecord): Promise<void> {
    this.records.set(record.imageRef, record);
  }
  async deleteRecord(imageRef: string): Promise<void> {
    this.records.delete(imageRef);
  }
}

export const IMAGE_MANAGER_DIR = 'image_manager';
export const INTENTS_DIR = 'pulling';
export const RECORDS_DIR = 'pulled';

const isNotFound = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * KEP-2535 records on disk in the kubelet's layout under `<root>/image_manager/`: `pulling/`
 * intents by image, `pulled/` records by imageRef, files 0600 in directories 0700, each written
 * to a temporary file and renamed so a crash never leaves a half-written record. Undecodable files
 * are skipped and reported to `onSkip`.
 */
export class FsPullRecords implements PullRecordsAccessor {
  readonly intentsDir: string;
  readonly recordsDir: string;
  /** Files that could not be decoded while listing (skipped, as the kubelet logs and skips them). */
  readonly onSkip: ((path: string, problem: string) => void) | undefined;

  /** `kubeletRootDir` is the kubelet's `--root-dir`; records go to `<root>/image_manager/`. */
  constructor(kubeletRootDir: string, options: { onSkip?: (path: string, problem: string) => void } = {}) {
    const base = join(kubeletRootDir, IMAGE_MANAGER_DIR);
    this.intentsDir = join(base, INTENTS_DIR);
    this.recordsDir = join(base, RECORDS_DIR);
    this.onSkip = options.onSkip;
  }

  async listIntents(): Promise<ImagePullIntent[]> {
    return this.#list(this.intentsDir, decodePullIntent);
  }
  async intentExists(image: string): Promise<boolean> {
    return (await this.#read(this.intentsDir, image, decodePullIntent)) !== undefined;
  }
  async writeIntent(image: string): Promise<void> {
    await this.#write(this.intentsDir, image, encodePullIntent({ image }));
  }
  async deleteIntent(image: string): Promise<void> {
    await rm(join(this.intentsDir, recordFileName(image)), { force: true });
  }
  async listRecords(): Promise<ImagePulledRecord[]> {
    return this.#list(this.recordsDir, decodePulledRecord);
  }
  async getRecord(imageRef: string): Promise<ImagePulledRecord | undefined> {
    return this.#read(this.recordsDir, imageRef, decodePulledRecord);
  }
  async writeRecord(record: ImagePulledRecord): Promise<void> {
    await this.#write(this.recordsDir, record.imageRef, encodePulledRecord(record));
  }
  async deleteRecord(imageRef: string): Promise<void> {
    await rm(join(this.recordsDir, recordFileName(imageRef)), { force: true });
  }

  async #read<T>(dir: string, key: string, decode: (text: string, where: string) => T): Promise<T | undefined> {
    const path = join(dir, recordFileName(key));
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return decode(text, path);
  }

  async #write(dir: string, key: string, text: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, recordFileName(key));
    const temp = `${path}.tmp`;
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, path);
  }

  async #list<T>(dir: string, decode: (text: string, where: string) => T): Promise<T[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const found: T[] = [];
    for (const name of names.sort()) {
      if (!/^sha256-[0-9a-f]{64}$/.test(name)) continue;
      const path = join(dir, name);
      try {
        found.push(decode(await readFile(path, 'utf8'), path));
      } catch (err) {
        if (!(err instanceof RecordDecodeError) && !isNotFound(err)) throw err;
        if (err instanceof RecordDecodeError) this.onSkip?.(path, err.message);
      }
    }
    return found;
  }
}

export const INTENT_CACHE_SIZE = 1024;
export const RECORD_CACHE_SIZE = 2000;

/** A size-bounded LRU map that remembers whether it ever evicted (then a miss proves nothing). */
class Lru<V> {
  readonly #map = new Map<string, V>();
  authoritative = true;
  constructor(readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next().value;
      if (oldest === undefined) break;
      this.#map.delete(oldest);
      this.authoritative = false;
    }
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
  get size(): number {
    return this.#map.size;
  }
}

/**
 * KEP-2535 records behind the kubelet's write-through LRU caches (intents and records), in
 * front of another accessor (usually `FsPullRecords`); authoritative until the first eviction,
 * after which misses go to the delegate.
 */
export class CachedPullRecords implements PullRecordsAccessor {
  readonly #delegate: PullRecordsAccessor;
  readonly #intents: Lru<ImagePullIntent>;
  readonly #records: Lru<ImagePulledRecord>;

  private constructor(delegate: PullRecordsAccessor, intentCapacity: number, recordCapacity: number) {
    this.#delegate = delegate;
    this.#intents = new Lru(intentCapacity);
    this.#records = new Lru(recordCapacity);
  }

  /** Loads what the delegate holds; the caches stay authoritative while everything fits. */
  static async open(
    delegate: PullRecordsAccessor,
    options: { intentCapacity?: number; recordCapacity?: number } = {},
  ): Promise<CachedPullRecords> {
    const cached = new CachedPullRecords(
      delegate,
      options.intentCapacity ?? INTENT_CACHE_SIZE,
      options.recordCapacity ?? RECORD_CACHE_SIZE,
    );
    for (const intent of await delegate.listIntents()) cached.#intents.set(intent.image, intent);
    for (const record of await delegate.listRecords()) cached.#records.set(record.imageRef, record);
    return cached;
  }

  get authoritative(): { intents: boolean; records: boolean } {
    return { intents: this.#intents.authoritative, records: this.#records.authoritative };
  }

  async listIntents(): Promise<ImagePullIntent[]> {
    return this.#delegate.listIntents();
  }
  async intentExists(image: string): Promise<boolean> {
    if (this.#intents.get(image) !== undefined) return true;
    if (this.#intents.authoritative) return false;
    const exists = await this.#delegate.intentExists(image);
    if (exists) this.#intents.set(image, { image });
    return exists;
  }
  async writeIntent(image: string): Promise<void> {
    await this.#delegate.writeIntent(image);
    this.#intents.set(image, { image });
  }
  async deleteIntent(image: string): Promise<void> {
    await this.#delegate.deleteIntent(image);
    this.#intents.delete(image);
  }
  async listRecords(): Promise<ImagePulledRecord[]> {
    return this.#delegate.listRecords();
  }
  async getRecord(imageRef: string): Promise<ImagePulledRecord | undefined> {
    const cached = this.#records.get(imageRef);
    if (cached !== undefined || this.#records.authoritative) return cached;
    const record = await this.#delegate.getRecord(imageRef);
    if (record !== undefined) this.#records.set(imageRef, record);
    return record;
  }
  async writeRecord(record: ImagePulledRecord): Promise<void> {
    await this.#delegate.writeRecord(record);
    this.#records.set(record.imageRef, record);
  }
  async deleteRecord(imageRef: string): Promise<void> {
    await this.#delegate.deleteRecord(imageRef);
    this.#records.delete(imageRef);
  }
}
