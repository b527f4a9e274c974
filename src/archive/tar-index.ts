/**
 * Reads a tar once, without extracting anything: every entry's name, data offset, size and
 * sha256, so that later reads are byte ranges of the archive file itself. Nothing from the
 * archive ever becomes a path on disk, and entries that would mean something outside it are
 * refused by name: `..`, absolute paths, hard links, devices, fifos, and symlinks leaving the
 * archive. A symlink inside the archive (`docker save` before Docker 25 links repeated
 * `<id>/layer.tar` files) is kept as an alias, never created.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract, type Header } from 'tar-stream';
import { ArchiveError } from './errors.ts';

/** Bounds on reading an archive's table of contents. */
export interface TarLimits {
  /** Entries in the archive; default 65,536. */
  readonly maxEntries?: number;
}

/** A regular file of the archive: its bytes are `[offset, offset + size)` of the archive file. */
export interface TarEntry {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  /** `sha256:<hex>` of the content, computed while scanning. */
  readonly digest: string;
  /** The first bytes (up to 4), to tell compressed layers apart. */
  readonly head: Buffer;
}

export interface TarIndex {
  readonly file: string;
  readonly entries: ReadonlyMap<string, TarEntry>;
  /** In-archive symlinks: normalized name → normalized target. */
  readonly links: ReadonlyMap<string, string>;
}

const DEFAULT_MAX_ENTRIES = 65_536;
const GZIP_MAGIC = [0x1f, 0x8b];

/** `./a//b` → `a/b`; undefined for names that leave the archive or are absolute. */
function normalizeName(name: string): string | undefined {
  if (name.startsWith('/') || name.includes('\\') || name.includes('\0')) return undefined;
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

function quote(name: string): string {
  return JSON.stringify(name.length > 300 ? `${name.slice(0, 300)}…` : name);
}

/** Scans `file` (an uncompressed tar) into a TarIndex; throws ArchiveError naming the entry. */
export async function indexTar(file: string, limits: TarLimits = {}, signal?: AbortSignal): Promise<TarIndex> {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const entries = new Map<string, TarEntry>();
  const links = new Map<string, string>();
  const refuse = (header: Header, why: string): ArchiveError =>
    new ArchiveError('ErrArchiveEntryRefused', `archive ${file}: entry ${quote(header.name)} refused: ${why}`, {
      archive: file,
      entry: header.name,
    });
  let count = 0;
  const first = await readHead(file);
  if (first[0] === GZIP_MAGIC[0] && first[1] === GZIP_MAGIC[1]) {
    throw new ArchiveError('ErrArchiveInvalid', `archive ${file} is gzip-compressed: decompress it first (gunzip)`, {
      archive: file,
    });
  }
  const extractor = extract();
  extractor.on('entry', (header, stream, next) => {
    const fail = (err: Error): void => {
      stream.resume();
      next(err);
    };
    if (++count > maxEntries) return fail(refuse(header, `the archive has more than ${maxEntries} entries`));
    const name = normalizeName(header.name);
    if (name === undefined) return fail(refuse(header, 'absolute path or `..` (outside the archive)'));
    if (header.type === 'directory') {
      stream.resume();
      stream.on('end', () => next());
      return;
    }
    if (header.type === 'symlink') {
      const target = header.linkname.startsWith('/')
        ? undefined
        : normalizeName(posix.join(posix.dirname(name), header.linkname));
      if (target === undefined) return fail(refuse(header, `symlink to ${quote(header.linkname)} outside the archive`));
      if (name.startsWith('blobs/')) return fail(refuse(header, 'a symlink in place of a blob'));
      links.set(name, target);
      stream.resume();
      stream.on('end', () => next());
      return;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file')
      return fail(refuse(header, `a ${header.type} entry (only regular files and directories are read)`));
    if (entries.has(name) || links.has(name)) return fail(refuse(header, 'the name appears twice'));
    const offset = (header as Header & { byteOffset?: unknown }).byteOffset;
    if (typeof offset !== 'number') return fail(refuse(header, 'no data offset (tar reader changed?)'));
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    stream.on('data', (data: unknown) => {
      const chunk = data as Buffer;
      hash.update(chunk);
      if (headBytes < 4) {
        head.push(chunk.subarray(0, 4 - headBytes));
        headBytes += Math.min(4, chunk.length);
      }
    });
    stream.on('end', () => {
      entries.set(name, {
        name,
        offset,
        size: header.size,
        digest: `sha256:${hash.digest('hex')}`,
        head: Buffer.concat(head),
      });
      next();
    });
    stream.on('error', (err: Error) => next(err));
  });
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), extractor, {
      ...(signal !== undefined && { signal }),
    });
  } catch (err) {
    if (err instanceof ArchiveError || signal?.aborted) throw err;
    throw new ArchiveError('ErrArchiveInvalid', `archive ${file} is not a readable tar: ${(err as Error).message}`, {
      archive: file,
      cause: err,
    });
  }
  return { file, entries, links };
}

async function readHead(file: string): Promise<Buffer> {
  for await (const chunk of createReadStream(file, { start: 0, end: 3 })) return chunk as Buffer;
  return Buffer.alloc(0);
}

/** The entry `name` designates, following in-archive symlinks (at most 8). */
export function resolveEntry(index: TarIndex, name: string): TarEntry | undefined {
  let current = normalizeName(name);
  for (let hops = 0; current !== undefined && hops <= 8; hops++) {
    const entry = index.entries.get(current);
    if (entry !== undefined) return entry;
    current = index.links.get(current);
  }
  return undefined;
}

/** Streams `[offset, end)` of an entry from the archive file. */
export async function* readEntry(
  index: TarIndex,
  entry: TarEntry,
  start = 0,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  if (start >= entry.size) return;
  const stream = createReadStream(index.file, {
    start: entry.offset + start,
    end: entry.offset + entry.size - 1,
    highWaterMark: 1 << 20,
    ...(signal !== undefined && { signal }),
  });
  yield* stream as AsyncIterable<Buffer>;
}

/** A whole entry in memory, at most `maxBytes` (ErrArchiveTooLarge beyond, naming the entry). */
export async function readSmallEntry(index: TarIndex, entry: TarEntry, maxBytes: number): Promise<Buffer> {
  if (entry.size > maxBytes) {
    throw new ArchiveError(
      'ErrArchiveTooLarge',
      `archive ${index.file}: entry ${quote(entry.name)} is ${entry.size} bytes, more than the ${maxBytes} read for metadata`,
      { archive: index.file, entry: entry.name },
    );
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of readEntry(index, entry)) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== entry.digest || bytes.length !== entry.size) {
    throw new ArchiveError(
      'ErrArchiveInvalid',
      `archive ${index.file} changed while it was read (entry ${quote(entry.name)})`,
      {
        archive: index.file,
        entry: entry.name,
      },
    );
  }
  return bytes;
}
