/**
 * Image archives: `oci-archive` (a tar of an OCI layout) and `docker-archive` (`docker save`:
 * `manifest.json` with config and layer files). Reading extracts into a fresh private directory
 * and refuses any entry that is not a plain file or directory with a relative path that stays
 * inside it (`../`, absolute paths, links and devices are errors naming the entry). Writing packs
 * a layout plus Docker's `manifest.json`, so one archive loads with `ctr images import`,
 * `docker load`, skopeo and kimg; the file appears whole (temp file + rename) or not at all.
 */
import { createReadStream, createWriteStream, constants } from 'node:fs';
import { link, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf } from '../digest/index.ts';
import { MediaType, parseStrictJson, type Descriptor } from '../oci/index.ts';
import type { BlobSource } from '../registry/index.ts';
import { CopyError, type ImageSource, type TopLevel } from './types.ts';

const MAX_ENTRIES = 100_000;
const MAX_NAME = 4096;
const MAX_MANIFEST_JSON = 16 * 1024 * 1024;

/** A checked archive entry path, relative and normalized, or an error naming the entry. */
function entryPath(name: string, archive: string): string {
  const fail = (why: string) =>
    new CopyError(
      'ErrArchiveInvalid',
      `${archive}: entry ${JSON.stringify(name.slice(0, 300))} ${why}; nothing was loaded`,
      {
        image: archive,
      },
    );
  if (name.length === 0 || name.length > MAX_NAME || name.includes('\0')) throw fail('has an invalid name');
  if (name.startsWith('/')) throw fail('is an absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw fail('leaves the archive (..)');
  if (parts.length === 0) return '';
  return posix.join(...parts);
}

/** Extracts `file` (gzip or plain tar) into a new temp directory; returns its path. */
export async function extractArchive(file: string, signal?: AbortSignal): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kimg-archive-'));
  try {
    const head = Buffer.alloc(2);
    const fh = await open(file, 'r');
    try {
      await fh.read(head, 0, 2, 0);
    } finally {
      await fh.close();
    }
    const extract = tar.extract();
    let entries = 0;
    const aliases: [alias: string, target: string, name: string][] = [];
    const done = (async () => {
      for await (const entry of extract) {
        signal?.throwIfAborted();
        if (++entries > MAX_ENTRIES)
          throw new CopyError('ErrArchiveInvalid', `${file}: more than ${MAX_ENTRIES} entries`, { image: file });
        const { header } = entry;
        const rel = entryPath(header.name, file);
        if (header.type === 'directory') {
          if (rel !== '') await mkdir(join(dir, rel), { recursive: true });
          entry.resume();
          continue;
        }
        if (header.type === 'symlink') {
          // skopeo and older `docker save` alias layer files (`<id>/layer.tar` → `../<hex>.tar`):
          // kept as an alias of another entry, never as a link on disk.
          const link = header.linkname ?? '';
          const target = link.startsWith('/') ? '..' : posix.normalize(posix.join(posix.dirname(rel), link));
          if (rel === '' || link === '' || target === '..' || target.startsWith('../')) {
            throw new CopyError(
              'ErrArchiveInvalid',
              `${file}: entry ${JSON.stringify(header.name.slice(0, 300))} is a symlink to ${JSON.stringify(link.slice(0, 300))}, outside the archive; nothing was loaded`,
              { image: file },
            );
          }
          aliases.push([rel, target, header.name]);
          entry.resume();
          continue;
        }
        if (header.type !== 'file' && header.type !== 'contiguous-file') {
          throw new CopyError(
            'ErrArchiveInvalid',
            `${file}: entry ${JSON.stringify(header.name.slice(0, 300))} is a ${header.type ?? 'unknown'} entry; only files and directories are accepted; nothing was loaded`,
            { image: file },
          );
        }
        if (rel === '')
          throw new CopyError('ErrArchiveInvalid', `${file}: a file entry without a name`, { image: file });
        const target = join(dir, rel);
        await mkdir(dirname(target), { recursive: true });
        const out = await open(
          target,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o644,
        ).catch((err: NodeJS.ErrnoException) => {
          throw new CopyError(
            'ErrArchiveInvalid',
            `${file}: entry ${JSON.stringify(header.name.slice(0, 300))} cannot be written (${err.code ?? err.message}; a duplicate?)`,
            { image: file },
            err,
          );
        });
        await pipeline(entry, createWriteStream('', { fd: out }));
      }
    })();
    const input = createReadStream(file);
    const feed =
      head[0] === 0x1f && head[1] === 0x8b ? pipeline(input, createGunzip(), extract) : pipeline(input, extract);
    await Promise.all([feed, done]);
    for (const [alias, target, name] of aliases) {
      const path = join(dir, alias);
      await mkdir(dirname(path), { recursive: true });
      await link(join(dir, target), path).catch((err: NodeJS.ErrnoException) => {
        throw new CopyError(
          'ErrArchiveInvalid',
          `${file}: entry ${JSON.stringify(name.slice(0, 300))} links to ${target}, which is not a file of the archive (${err.code ?? err.message}); nothing was loaded`,
          { image: file },
          err,
        );
      });
    }
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof CopyError) throw err;
    throw new CopyError(
      'ErrArchiveInvalid',
      `${file}: not a readable tar archive (${(err as Error).message})`,
      { image: file },
      err,
    );
  }
}

/** What `manifest.json` of a `docker save` archive lists per image. */
export interface DockerArchiveEntry {
  readonly Config: string;
  readonly RepoTags?: readonly string[] | null;
  readonly Layers: readonly string[];
}

/** Reads `manifest.json` of an extracted docker archive, strictly. */
export async function readDockerManifest(dir: string, archive: string): Promise<DockerArchiveEntry[]> {
  let parsed: unknown;
  try {
    const info = await stat(join(dir, 'manifest.json'));
    if (info.size > MAX_MANIFEST_JSON) throw new Error('manifest.json is too large');
    parsed = parseStrictJson(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new CopyError(
      'ErrArchiveInvalid',
      `${archive}: manifest.json: ${(err as Error).message}`,
      { image: archive },
      err,
    );
  }
  const bad = () =>
    new CopyError('ErrArchiveInvalid', `${archive}: manifest.json is not a docker-archive manifest list`, {
      image: archive,
    });
  if (!Array.isArray(parsed)) throw bad();
  return parsed.map((entry: unknown) => {
    const e = entry as Partial<DockerArchiveEntry>;
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string'))
      throw bad();
    if (e.RepoTags != null && (!Array.isArray(e.RepoTags) || !e.RepoTags.every((t) => typeof t === 'string')))
      throw bad();
    return { Config: e.Config, Layers: e.Layers, RepoTags: e.RepoTags ?? [] };
  });
}

async function hashFile(path: string): Promise<{ digest: string; size: number; gzip: boolean }> {
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  let size = 0;
  let first: Buffer | undefined;
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  for await (const chunk of createReadStream('', { fd: handle }) as AsyncIterable<Buffer>) {
    first ??= chunk;
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return {
    digest: `sha256:${hash.digest('hex')}`,
    size,
    gzip: first !== undefined && first[0] === 0x1f && first[1] === 0x8b,
  };
}

/**
 * One image of a docker archive as a source: a Docker schema 2 manifest is made from its config
 * and layer files (hashed here), so the image can be pushed or stored like any other.
 */
export class DockerArchiveSource implements ImageSource {
  private readonly files = new Map<string, string>();
  private built: TopLevel | undefined;

  constructor(
    private readonly dir: string,
    private readonly entry: DockerArchiveEntry,
    readonly label: string,
    private readonly name: string | undefined,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  private file(rel: string): string {
    return join(this.dir, entryPath(rel, this.label));
  }

  async root(): Promise<TopLevel> {
    if (this.built !== undefined) return this.built;
    const configPath = this.file(this.entry.Config);
    const config = await hashFile(configPath).catch((err: unknown) => {
      throw new CopyError(
        'ErrBlobUnknown',
        `${this.label}: config ${this.entry.Config} is missing (${(err as Error).message})`,
        { image: this.label },
      );
    });
    this.files.set(config.digest, configPath);
    const layers: Descriptor[] = [];
    for (const layer of this.entry.Layers) {
      const path = this.file(layer);
      const h = await hashFile(path).catch((err: unknown) => {
        throw new CopyError('ErrBlobUnknown', `${this.label}: layer ${layer} is missing (${(err as Error).message})`, {
          image: this.label,
        });
      });
      this.files.set(h.digest, path);
      layers.push({
        mediaType: h.gzip ? MediaType.DockerLayerGzip : 'application/vnd.docker.image.rootfs.diff.tar',
        digest: h.digest,
        size: h.size,
      });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: config.digest, size: config.size },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    this.built = {
      descriptor: { mediaType: MediaType.DockerManifest, digest: digestOf(bytes), size: bytes.byteLength },
      bytes,
      ...(this.name !== undefined && { name: this.name }),
    };
    return this.built;
  }

  async manifest(descriptor: Descriptor): Promise<Uint8Array> {
    const top = await this.root();
    if (descriptor.digest !== top.descriptor.digest)
      throw new CopyError('ErrBlobUnknown', `${this.label}: no manifest ${descriptor.digest}`, { image: this.label });
    return top.bytes;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    await this.root();
    return this.files.has(descriptor.digest);
  }

  blob(descriptor: Descriptor): BlobSource {
    const files = this.files;
    return {
      async *open(offset: number) {
        const path = files.get(descriptor.digest);
        if (path === undefined) throw new Error(`no file for ${descriptor.digest}`);
        const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
        yield* createReadStream('', { fd: handle, start: offset, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
      },
    };
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

/** Docker's `manifest.json` entry for an image stored in a layout (blobs under `blobs/`). */
export function dockerEntryFor(
  manifest: { config: Descriptor; layers: readonly Descriptor[] },
  repoTags: readonly string[],
) {
  const path = (d: Descriptor) => `blobs/${d.digest.replace(':', '/')}`;
  return { Config: path(manifest.config), RepoTags: repoTags, Layers: manifest.layers.map(path) };
}

/** `index.json` as containerd's export writes it: `ref.name` is the tag of the full name in
 * `io.containerd.image.name`, so `skopeo … oci-archive:FILE:TAG` finds the image too. */
function exportIndex(text: string): string {
  const index = JSON.parse(text) as { manifests?: Descriptor[] };
  for (const entry of index.manifests ?? []) {
    const full = entry.annotations?.['io.containerd.image.name'];
    if (full === undefined || entry.annotations === undefined) continue;
    const tag = /:([\w][\w.-]{0,127})$/.exec(full.replace(/@.*$/, ''))?.[1];
    const annotations: Record<string, string> = { ...entry.annotations };
    if (tag !== undefined && !full.slice(0, full.length - tag.length - 1).endsWith('/'))
      annotations['org.opencontainers.image.ref.name'] = tag;
    else delete annotations['org.opencontainers.image.ref.name'];
    Object.assign(entry, { annotations });
  }
  return JSON.stringify(index);
}

/**
 * Packs a layout directory (without its `ingest/`) plus `manifest.json` into `file`, via a temp
 * file renamed into place.
 */
export async function packLayout(dir: string, file: string, dockerManifest: readonly unknown[]): Promise<void> {
  const pack = tar.pack();
  const temp = `${file}.kimg-${process.pid}-${Date.now()}.tmp`;
  const writing = pipeline(pack, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
  const addFile = async (rel: string) => {
    const path = join(dir, rel);
    const info = await stat(path);
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name: rel, size: info.size, mode: 0o644, mtime: new Date(0) }, (err) =>
        err ? reject(err) : resolve(),
      );
      createReadStream(path).on('error', reject).pipe(entry);
    });
  };
  try {
    await addFile('oci-layout');
    pack.entry(
      { name: 'index.json', mtime: new Date(0) },
      exportIndex(await readFile(join(dir, 'index.json'), 'utf8')),
    );
    for (const alg of await readdir(join(dir, 'blobs'))) {
      for (const hex of (await readdir(join(dir, 'blobs', alg))).sort()) await addFile(`blobs/${alg}/${hex}`);
    }
    pack.entry({ name: 'manifest.json', mtime: new Date(0) }, JSON.stringify(dockerManifest));
    pack.finalize();
    await writing;
    await rename(temp, file);
  } catch (err) {
    pack.destroy();
    await rm(temp, { force: true });
    throw err;
  }
}
