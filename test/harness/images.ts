/**
 * Reproducible test images, built in-process into an OCI image layout, and pushed to a registry
 * with skopeo so that the registry stores exactly the bytes built (`--preserve-digests`): tests
 * know every digest in advance.
 *
 * Each layer is a real ustar archive (mtime 0) holding one file of deterministic content derived
 * from a seed, optionally gzipped; layers stream to disk while they are hashed (sha256 of the
 * tar = diff_id, of the blob = digest), so gigabyte images build in bounded memory. Supported:
 * OCI image, OCI index, Docker schema2 image, Docker manifest list.
 */
import { createCipheriv, createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { removeAtExit } from './processes.ts';
import { copyImage, type SkopeoAuth } from './skopeo.ts';
import type { Credentials } from './registry.ts';

export type ContentKind = 'random' | 'text' | 'zero';
export type ImageFormat = 'oci' | 'docker';
export type Compression = 'gzip' | 'none';

export const MEDIA_TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    layerTar: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    layerTar: undefined,
  },
} as const;

const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.oci.index, MEDIA_TYPES.docker.index]);
const DOCKER_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.docker.manifest, MEDIA_TYPES.docker.index]);
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface LayerSpec {
  /** Bytes of file content (the tar is slightly larger). */
  size: number;
  content?: ContentKind;
  /**
   * An explicit seed makes the layer position- and platform-independent: the same
   * seed + content + size gives the same blob wherever it appears.
   */
  seed?: string;
}

export interface ImageSpec {
  /** One layer per entry: a byte size or a full spec. */
  layers: readonly (number | LayerSpec)[];
  /** Default `random` (incompressible). */
  content?: ContentKind;
  /** Default `kimg`. Same seed ⇒ layer i of a given size and platform is the same blob in every image. */
  seed?: string;
  /** `os/arch[/variant]`; default `['linux/amd64']`. Several ⇒ an index / manifest list. */
  platforms?: readonly string[];
  /** Make an index / manifest list even for one platform. */
  index?: boolean;
  /** Default `oci`. */
  format?: ImageFormat;
  /** Default `gzip`; `none` only for OCI (Docker schema2 has no plain-tar layer type). */
  compression?: Compression;
  /** 0–9; default 0 for random content (stored blocks, fast), else 6. */
  gzipLevel?: number;
  /** Every platform uses the same layer blobs (only configs differ). */
  shareLayers?: boolean;
  /** Config `created`; default `1970-01-01T00:00:00Z`. */
  created?: string;
  /** Tag inside the layout (`index.json` ref name); default `latest`. */
  tag?: string;
  /** Write into this layout (created if needed; other tags are kept; not safe for concurrent builds into one layout); default a fresh temp dir. */
  layout?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
}

export interface BuiltPlatformImage {
  platform: Platform;
  /** `os/arch[/variant]`. */
  platformString: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: BuiltLayer[];
}

export interface BuiltImage extends Descriptor {
  layout: string;
  tag: string;
  format: ImageFormat;
  /** True when the top manifest is an index / manifest list. */
  isIndex: boolean;
  /** Per platform, in the order given. */
  images: BuiltPlatformImage[];
  /** Path of a blob in the layout. */
  blobPath(digest: string): string;
  /** Deletes the layout (only when the builder created it). */
  remove(): Promise<void>;
}

/** `4K` → 4096; `128M`, `1G`; plain numbers are bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([KMG]?)(?:i?B)?$/i.exec(text.trim());
  if (!match?.[1]) throw new Error(`bad size ${JSON.stringify(text)} (use e.g. 512, 4K, 128M, 1G)`);
  const unit = (match[2] ?? '').toUpperCase();
  return Number(match[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
}

/** `linux/arm64/v8` → `{ os: 'linux', architecture: 'arm64', variant: 'v8' }`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined || variant === '')
    throw new Error(`bad platform ${JSON.stringify(text)} (use os/arch[/variant])`);
  return variant ? { architecture, os, variant } : { architecture, os };
}

const formatPlatform = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

// ---------------------------------------------------------------- content and tar

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);
/** 32 characters: with 32 random hex chars, 64-byte lines that gzip ≈ 3.3×. */
const TEXT_FILLER = ' compressible test content, ok.\n';

/** Deterministic pseudo-random bytes: AES-128-CTR keystream keyed by the layer identity. */
function keystream(key: string): { next(n: number): Buffer } {
  const cipher = createCipheriv(
    'aes-128-ctr',
    createHash('sha256').update(key).digest().subarray(0, 16),
    Buffer.alloc(16),
  );
  return { next: (n) => cipher.update(n <= CHUNK ? ZEROS.subarray(0, n) : Buffer.alloc(n)) };
}

function* contentChunks(kind: ContentKind, key: string, size: number): Generator<Buffer> {
  const stream = keystream(key);
  for (let left = size; left > 0;) {
    const n = Math.min(CHUNK, left);
    if (kind === 'random') yield stream.next(n);
    else if (kind === 'zero') yield ZEROS.subarray(0, n);
    else {
      const lines = Math.ceil(n / 64);
      const hex = stream.next(lines * 16).toString('hex');
      const out = Buffer.allocUnsafe(lines * 64);
      for (let line = 0; line < lines; line++) {
        out.write(hex.slice(line * 32, line * 32 + 32), line * 64, 'latin1');
        out.write(TEXT_FILLER, line * 64 + 32, 'latin1');
      }
      yield out.subarray(0, n);
    }
    left -= n;
  }
}

const MAX_USTAR_SIZE = 8 * 1024 ** 3 - 1;

/** One 512-byte ustar header; mtime 0, root-owned, for reproducibility. */
function tarHeader(name: string, size: number, type: 'file' | 'dir'): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const header = Buffer.alloc(512);
  const octal = (value: number, width: number): string => `${value.toString(8).padStart(width - 1, '0')}\0`;
  header.write(name, 0, 100, 'utf8');
  header.write(octal(type === 'dir' ? 0o755 : 0o644, 8), 100, 'ascii');
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(size, 12), 124, 'ascii');
  header.write(octal(0, 12), 136, 'ascii'); // mtime
  header.write('        ', 148, 'ascii'); // checksum is computed over spaces here
  header.write(type === 'dir' ? '5' : '0', 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.write('root', 265, 'ascii');
  header.write('root', 297, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}

function* tarChunks(dir: string, kind: ContentKind, key: string, size: number): Generator<Buffer> {
  yield tarHeader(`${dir}/`, 0, 'dir');
  yield tarHeader(`${dir}/data`, size, 'file');
  yield* contentChunks(kind, key, size);
  yield Buffer.alloc(((512 - (size % 512)) % 512) + 1024); // padding, then two zero end blocks
}

// ---------------------------------------------------------------- layout writing

interface LayerJob {
  key: string;
  dir: string;
  size: number;
  content: ContentKind;
}

interface LayerResult {
  digest: string;
  size: number;
  diffId: string;
  tarSize: number;
}

const blobFile = (layout: string, digest: string): string =>
  join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Streams tar → (diff_id) → compressor → (digest) → temp file, then renames it to its digest. */
async function writeLayer(
  layout: string,
  job: LayerJob,
  compression: Compression,
  gzipLevel: number,
): Promise<LayerResult> {
  const diffHash: Hash = createHash('sha256');
  const blobHash: Hash = createHash('sha256');
  let tarSize = 0;
  let size = 0;
  const tmp = join(layout, 'blobs', 'sha256', `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const compressor: Transform =
    compression === 'gzip' ? createGzip({ level: gzipLevel, chunkSize: CHUNK }) : new PassThrough();
  try {
    await pipeline(
      function* () {
        for (const chunk of tarChunks(job.dir, job.content, job.key, job.size)) {
          diffHash.update(chunk);
          tarSize += chunk.length;
          yield chunk;
        }
      },
      compressor,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          blobHash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(tmp, { highWaterMark: CHUNK }),
    );
    const digest = `sha256:${blobHash.digest('hex')}`;
    const dest = blobFile(layout, digest);
    if (await exists(dest)) await unlink(tmp);
    else await rename(tmp, dest);
    return { digest, size, diffId: `sha256:${diffHash.digest('hex')}`, tarSize };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function writeJsonBlob(layout: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const file = blobFile(layout, digest);
  if (!(await exists(file))) await writeFile(file, bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Runs `jobs` with at most `width` at a time, results in order. */
async function runPool<T>(jobs: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const index = next++;
      const job = jobs[index];
      if (job) results[index] = await job();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, jobs.length)) }, worker));
  return results;
}

interface LayoutIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: (Descriptor & { annotations?: Record<string, string> })[];
}

async function readLayoutIndex(layout: string): Promise<LayoutIndex> {
  const text = await readFile(join(layout, 'index.json'), 'utf8').catch(() => undefined);
  return text === undefined
    ? { schemaVersion: 2, mediaType: MEDIA_TYPES.oci.index, manifests: [] }
    : (JSON.parse(text) as LayoutIndex);
}

/** Builds the image described by `spec` into an OCI layout. */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const {
    content = 'random',
    seed = 'kimg',
    format = 'oci',
    compression = 'gzip',
    shareLayers = false,
    created = '1970-01-01T00:00:00Z',
    tag = 'latest',
  } = spec;
  const gzipLevel = spec.gzipLevel ?? (content === 'random' ? 0 : 6);
  if (!Number.isInteger(gzipLevel) || gzipLevel < 0 || gzipLevel > 9)
    throw new Error(`gzipLevel must be 0..9, got ${gzipLevel}`);
  const types = MEDIA_TYPES[format];
  const layerMediaType = compression === 'gzip' ? types.layerGzip : types.layerTar;
  if (!layerMediaType)
    throw new Error('compression "none" needs format "oci" (Docker schema2 has no plain tar layer type)');
  const platforms = (spec.platforms ?? ['linux/amd64']).map(parsePlatform);
  if (platforms.length === 0) throw new Error('at least one platform is needed');
  const layers = spec.layers.map((layer): LayerSpec => (typeof layer === 'number' ? { size: layer } : layer));
  for (const layer of layers) {
    if (!Number.isSafeInteger(layer.size) || layer.size < 0 || layer.size > MAX_USTAR_SIZE) {
      throw new Error(`layer size ${layer.size} is not a byte count below 8 GiB (the ustar limit)`);
    }
  }
  const makeIndex = spec.index === true || platforms.length > 1;

  const ownLayout = spec.layout === undefined;
  const layout = resolve(spec.layout ?? (await mkdtemp(join(tmpdir(), 'kimg-image-'))));
  const forgetLayout = ownLayout ? removeAtExit(layout) : () => undefined;
  const remove = async (): Promise<void> => {
    if (!ownLayout) return;
    await rm(layout, { recursive: true, force: true });
    forgetLayout();
  };

  try {
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');

    // One job per distinct layer identity: shared layers are built once.
    const jobs: LayerJob[] = [];
    const jobIndex = new Map<string, number>();
    const layerJobsPerPlatform = platforms.map((platform) =>
      layers.map((layer, position) => {
        const kind = layer.content ?? content;
        const key =
          layer.seed !== undefined
            ? `${layer.seed}|${kind}|${layer.size}`
            : `${seed}|${kind}|${shareLayers ? '*' : formatPlatform(platform)}|${position}|${layer.size}`;
        let index = jobIndex.get(key);
        if (index === undefined) {
          index = jobs.length;
          jobIndex.set(key, index);
          const dir =
            layer.seed !== undefined
              ? `layer-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`
              : `layer${position}`;
          jobs.push({ key, dir, size: layer.size, content: kind });
        }
        return index;
      }),
    );
    const built = await runPool(
      jobs.map((job) => () => writeLayer(layout, job, compression, gzipLevel)),
      availableParallelism(),
    );

    const images: BuiltPlatformImage[] = [];
    for (const [i, platform] of platforms.entries()) {
      const layerResults = (layerJobsPerPlatform[i] ?? []).map((index) => built[index] as LayerResult);
      const config = await writeJsonBlob(layout, types.config, {
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: layerResults.map((layer) => layer.diffId) },
        history: layerResults.map((_, n) => ({ created, created_by: `kimg test harness layer ${n}` })),
      });
      const layerDescriptors = layerResults.map((layer): Descriptor => ({
        mediaType: layerMediaType,
        digest: layer.digest,
        size: layer.size,
      }));
      const manifest = await writeJsonBlob(layout, types.manifest, {
        schemaVersion: 2,
        mediaType: types.manifest,
        config,
        layers: layerDescriptors,
      });
      images.push({
        platform,
        platformString: formatPlatform(platform),
        manifest,
        config,
        layers: layerResults.map((layer, n) => ({
          ...(layerDescriptors[n] as Descriptor),
          diffId: layer.diffId,
          tarSize: layer.tarSize,
        })),
      });
    }

    const top: Descriptor = makeIndex
      ? await writeJsonBlob(layout, types.index, {
          schemaVersion: 2,
          mediaType: types.index,
          manifests: images.map((image) => ({ ...image.manifest, platform: image.platform })),
        })
      : (images[0] as BuiltPlatformImage).manifest;

    const index = await readLayoutIndex(layout);
    index.manifests = index.manifests.filter((entry) => entry.annotations?.[REF_NAME] !== tag);
    index.manifests.push({ ...top, annotations: { [REF_NAME]: tag } });
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));

    return {
      ...top,
      layout,
      tag,
      format,
      isIndex: makeIndex,
      images,
      blobPath: (digest) => blobFile(layout, digest),
      remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

// ---------------------------------------------------------------- pushing

/** Where to push: a `RunningRegistry` fits; a string is a plain-HTTP `host:port`. */
export interface RegistryEndpoint {
  host: string;
  /** A dir holding only the registry's `ca.crt`. */
  certDir?: string;
}

export interface PushOptions {
  creds?: Credentials | string;
  /** Default: true when the registry has a `certDir`, else false (plain HTTP allowed). */
  tlsVerify?: boolean;
  certDir?: string;
}

export interface PushedImage {
  /** `HOST/REPO:TAG`. */
  ref: string;
  /** Digest of the top manifest or index as stored by the registry. */
  digest: string;
  mediaType: string;
}

/** An image in an OCI layout under a tag. */
export interface LayoutImage {
  layout: string;
  tag: string;
}

/**
 * skopeo's `oci:` transport ignores Docker media types in `index.json`, so Docker images go
 * through a `dir:` transport directory: `version`, `manifest.json` (top), `<hex>.manifest.json`
 * per instance of a list, and blobs named `<hex>` — all symlinks into the layout.
 */
async function makeDirTransportCopy(layout: string, top: Descriptor): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kimg-dir-transport-'));
  const hex = (digest: string): string => digest.slice('sha256:'.length);
  const link = async (digest: string, name: string): Promise<void> => {
    await symlink(blobFile(layout, digest), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  };
  interface ManifestJson {
    config?: Descriptor;
    layers?: Descriptor[];
    manifests?: Descriptor[];
  }
  const readManifest = async (digest: string): Promise<ManifestJson> =>
    JSON.parse(await readFile(blobFile(layout, digest), 'utf8')) as ManifestJson;
  const linkImage = async (manifest: ManifestJson): Promise<void> => {
    for (const blob of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])])
      await link(blob.digest, hex(blob.digest));
  };
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await link(top.digest, 'manifest.json');
  const topManifest = await readManifest(top.digest);
  if (INDEX_MEDIA_TYPES.has(top.mediaType)) {
    for (const child of topManifest.manifests ?? []) {
      await link(child.digest, `${hex(child.digest)}.manifest.json`);
      await linkImage(await readManifest(child.digest));
    }
  } else {
    await linkImage(topManifest);
  }
  return dir;
}

/**
 * Pushes a built image (or any tagged image in an OCI layout) to `registry` as `repoTag`
 * (`repo/name:tag`; without a tag, the layout tag) with `skopeo copy --preserve-digests`,
 * `--all` for indexes and manifest lists.
 */
export async function pushImage(
  image: BuiltImage | LayoutImage,
  registry: RegistryEndpoint | string,
  repoTag: string,
  options: PushOptions = {},
): Promise<PushedImage> {
  const endpoint: RegistryEndpoint = typeof registry === 'string' ? { host: registry } : registry;
  const layout = resolve(image.layout);
  const entry = (await readLayoutIndex(layout)).manifests.find((m) => m.annotations?.[REF_NAME] === image.tag);
  if (!entry) throw new Error(`no image tagged ${JSON.stringify(image.tag)} in the OCI layout ${layout}`);
  const lastSlash = repoTag.lastIndexOf('/');
  const hasTag = repoTag.lastIndexOf(':') > lastSlash;
  const ref = `${endpoint.host}/${hasTag ? repoTag : `${repoTag}:${image.tag}`}`;
  const certDir = options.certDir ?? endpoint.certDir;
  const auth: SkopeoAuth = { creds: options.creds, certDir, tlsVerify: options.tlsVerify ?? certDir !== undefined };

  const dirCopy = DOCKER_MEDIA_TYPES.has(entry.mediaType) ? await makeDirTransportCopy(layout, entry) : undefined;
  try {
    await copyImage(dirCopy ? `dir:${dirCopy}` : `oci:${layout}:${image.tag}`, `docker://${ref}`, {
      all: INDEX_MEDIA_TYPES.has(entry.mediaType),
      preserveDigests: true,
      dest: auth,
    });
  } finally {
    if (dirCopy) await rm(dirCopy, { recursive: true, force: true });
  }
  return { ref, digest: entry.digest, mediaType: entry.mediaType };
}
