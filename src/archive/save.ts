/**
 * `kimg save`: stored images into one tar that `ctr images import` and `docker load` both read:
 * an OCI image layout (`oci-layout`, `index.json` whose entries carry `io.containerd.image.name`
 * and `org.opencontainers.image.ref.name`, `blobs/sha256/…` holding the manifests byte for
 * byte), plus Docker's `manifest.json` and `repositories` pointing into `blobs/`, as Docker 25's
 * `docker save` writes it (moby `image/tarexport/save.go`). containerd reads the layout when
 * `oci-layout` is present (containerd `images/archive/importer.go`, v1.6); docker reads
 * `manifest.json`. The tar goes to a temporary file renamed into place at the end.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack, type Pack } from 'tar-stream';
import { MediaType, hostPlatform, platformMatcher, type Descriptor } from '../oci/index.ts';
import { familiarName, parseDockerRef } from '../reference/index.ts';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, withoutNameAnnotations, type Store } from '../store/index.ts';
import { MAX_METADATA_BYTES } from './archive.ts';
import { planImage, type ImagePlan } from './plan.ts';

/** An image to save: its full name and its stored top-level descriptor. */
export interface SaveImage {
  readonly name: string;
  readonly descriptor: Descriptor;
}

export interface SaveOptions {
  /** OCI referrers (signatures, SBOMs) stored with the images: listed in `index.json` without a
   * name, as oras writes them into a layout, so `ctr images import` does not make (and unpack)
   * images of them; Docker's `manifest.json` leaves them out. */
  readonly referrers?: readonly Descriptor[];
  readonly signal?: AbortSignal;
  readonly onBlob?: (digest: string, size: number) => void;
}

export interface SaveResult {
  readonly file: string;
  readonly images: readonly { readonly name: string; readonly digest: string }[];
  readonly blobs: number;
  readonly bytes: number;
}

const MTIME = new Date(0);

function blobPath(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

/** The manifest `docker load` gets for a plan: the host's platform when stored, else the first. */
function dockerManifest(plan: ImagePlan): ImagePlan['manifests'][number] | undefined {
  const matches = platformMatcher(hostPlatform());
  const images = plan.manifests.filter((m) =>
    [MediaType.DockerConfig, MediaType.OciConfig].includes(m.manifest.config.mediaType as never),
  );
  return images.find((m) => m.descriptor.platform !== undefined && matches(m.descriptor.platform)) ?? images[0];
}

function addEntry(tar: Pack, name: string, content: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry({ name, mtime: MTIME, mode: 0o644 }, Buffer.from(content), (err) => (err ? reject(err) : resolve()));
  });
}

async function addBlob(tar: Pack, store: Store, blob: Descriptor): Promise<void> {
  let done: () => void = () => undefined;
  let failed: (err: Error) => void = () => undefined;
  const written = new Promise<void>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const sink = tar.entry({ name: blobPath(blob.digest), size: blob.size, mtime: MTIME, mode: 0o644 }, (err) =>
    err ? failed(err) : done(),
  );
  await pipeline(store.openBlobStream(blob.digest, { verify: true }), sink);
  await written;
}

/** Writes `images` from `store` into the tar `file` (replacing it only when complete). */
export async function saveArchive(
  store: Store,
  images: readonly SaveImage[],
  file: string,
  options: SaveOptions = {},
): Promise<SaveResult> {
  const source = {
    label: `the store ${store.root}`,
    has: (d: Descriptor) => store.hasBlob(d.digest),
    document: (d: Descriptor) => store.readBlob(d.digest, Math.min(d.size, MAX_METADATA_BYTES)),
  };
  const plans: ImagePlan[] = [];
  for (const image of images) plans.push(await planImage(source, image.name, image.descriptor));
  const referrers = (options.referrers ?? []).map(withoutNameAnnotations);
  for (const referrer of referrers) plans.push(await planImage(source, referrer.digest, referrer));

  const blobs = new Map<string, Descriptor>();
  const documents = new Map<string, Descriptor>();
  for (const plan of plans) {
    for (const d of plan.documents) documents.set(d.descriptor.digest, d.descriptor);
    for (const [digest, d] of plan.blobs) blobs.set(digest, d);
  }
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    // ref.name is the tag, as `ctr images export` and Docker 25's `docker save` write it (so
    // `skopeo … oci-archive:FILE:v1` finds it); the full name is in io.containerd.image.name.
    manifests: images
      .map(({ name, descriptor }): Descriptor => ({
        ...descriptor,
        annotations: {
          ...descriptor.annotations,
          [ANNOTATION_IMAGE_NAME]: name,
          [ANNOTATION_REF_NAME]: parseDockerRef(name).tag ?? name,
        },
      }))
      .concat(referrers),
  };
  // docker load: one item per image manifest, with every tag naming it.
  const docker = new Map<string, { Config: string; RepoTags: string[]; Layers: string[] }>();
  const repositories: Record<string, Record<string, string>> = {};
  images.forEach((image, i) => {
    const chosen = dockerManifest(plans[i] as ImagePlan);
    if (chosen === undefined) return;
    const item = docker.get(chosen.descriptor.digest) ?? {
      Config: blobPath(chosen.manifest.config.digest),
      RepoTags: [],
      Layers: chosen.manifest.layers.map((l) => blobPath(l.digest)),
    };
    docker.set(chosen.descriptor.digest, item);
    const ref = parseDockerRef(image.name);
    if (ref.tag !== undefined) {
      const familiar = familiarName(ref);
      item.RepoTags.push(`${familiar}:${ref.tag}`);
      (repositories[familiar] ??= {})[ref.tag] = chosen.manifest.config.digest.replace(/^sha256:/, '');
    }
  });

  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const tar = pack();
  const output = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
  const writing = pipeline(tar, output);
  let bytes = 0;
  try {
    await addEntry(tar, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await addEntry(tar, 'index.json', JSON.stringify(index));
    await addEntry(tar, 'manifest.json', JSON.stringify([...docker.values()]));
    await addEntry(tar, 'repositories', JSON.stringify(repositories));
    for (const plan of plans) {
      for (const d of plan.documents) {
        if (!documents.delete(d.descriptor.digest)) continue;
        await addEntry(tar, blobPath(d.descriptor.digest), d.bytes);
        bytes += d.bytes.byteLength;
      }
    }
    for (const blob of blobs.values()) {
      options.signal?.throwIfAborted();
      await addBlob(tar, store, blob);
      bytes += blob.size;
      options.onBlob?.(blob.digest, blob.size);
    }
    tar.finalize();
    await writing;
    const handle = await open(temp, 'r');
    await handle.sync().finally(() => handle.close());
    await rename(temp, file);
  } catch (err) {
    tar.destroy(err as Error);
    await writing.catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  return {
    file,
    images: images.map((i) => ({ name: i.name, digest: i.descriptor.digest })),
    blobs: blobs.size + new Set(plans.flatMap((p) => p.documents.map((d) => d.descriptor.digest))).size,
    bytes,
  };
}
