/**
 * Transports as skopeo names them (containers/image transports): `docker://REF`, `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`, and a plain reference for the kimg store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openArchiveSource, saveArchive } from '../archive/index.ts';
import { parseDockerRef, type NamedReference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { LayoutDestination, LayoutSource } from './layout.ts';
import { RegistryDestination, RegistrySource } from './registry.ts';
import { CopyError, type ImageDestination, type ImageSource } from './types.ts';

export type TransportRef =
  | { readonly kind: 'docker'; readonly ref: NamedReference }
  | { readonly kind: 'store'; readonly ref: NamedReference }
  | { readonly kind: 'oci' | 'oci-archive' | 'docker-archive'; readonly path: string; readonly reference?: string };

/** Parses `TRANSPORT:…` or a plain reference (the store). Throws a CopyError naming the input. */
export function parseTransport(text: string): TransportRef {
  const bad = (why: string) =>
    new CopyError('ErrInvalidTransport', `${JSON.stringify(text.slice(0, 300))}: ${why}`, { image: text });
  const reference = (value: string): NamedReference => {
    try {
      return parseDockerRef(value);
    } catch (err) {
      throw bad(`not a valid image reference (${(err as Error).message})`);
    }
  };
  if (text.startsWith('docker://')) return { kind: 'docker', ref: reference(text.slice('docker://'.length)) };
  for (const kind of ['oci', 'oci-archive', 'docker-archive'] as const) {
    if (!text.startsWith(`${kind}:`)) continue;
    const rest = text.slice(kind.length + 1);
    const colon = rest.indexOf(':');
    const path = colon === -1 ? rest : rest.slice(0, colon);
    const ref = colon === -1 ? undefined : rest.slice(colon + 1);
    if (path === '') throw bad(`${kind}: needs a path`);
    if (ref === '') throw bad('the reference after the path is empty');
    return { kind, path, ...(ref !== undefined && { reference: ref }) };
  }
  if (/^[a-z-]+:\/\//.test(text) || /^(dir|docker-daemon|containers-storage):/.test(text))
    throw bad('unsupported transport (docker://, oci:, oci-archive:, docker-archive: or a plain reference)');
  return { kind: 'store', ref: reference(text) };
}

export interface TransportContext {
  readonly registry: RegistryClient;
  /** The kimg store (opened on first use). */
  readonly store: () => Promise<Store>;
}

type FileTransport = Extract<TransportRef, { readonly path: string }>;

/** `oci:DIR[:REF]` as the user wrote it, for messages. */
function fileLabel(t: FileTransport): string {
  return `${t.kind}:${t.path}${t.reference === undefined ? '' : `:${t.reference}`}`;
}

/** Opens the source a transport names. A layout is opened read-only (never migrated or
 * prepared for writing); an archive is read in place through src/archive's tar index, every
 * blob checked against its digest, nothing extracted. */
export async function openSource(t: TransportRef, ctx: TransportContext, signal?: AbortSignal): Promise<ImageSource> {
  switch (t.kind) {
    case 'docker':
      return new RegistrySource(ctx.registry, t.ref);
    case 'store':
      return new LayoutSource(await ctx.store(), t.ref.toString(), t.ref.toString());
    case 'oci':
      return new LayoutSource(await openStore(t.path, { readOnly: true }), t.reference, fileLabel(t));
    case 'oci-archive':
    case 'docker-archive':
      return openArchiveSource(t.path, t.reference, { label: fileLabel(t), ...(signal !== undefined && { signal }) });
  }
}

/** A full reference normalized (`nginx:1` → `docker.io/library/nginx:1`); a bare tag (`v1`, as
 * skopeo's `oci:DIR:v1` names an entry) stays as it is. */
function normalizeIfFull(text: string): string {
  if (!/[/:@]/.test(text)) return text;
  try {
    return parseDockerRef(text).toString();
  } catch {
    return text;
  }
}

function normalizedReference(t: FileTransport): string | undefined {
  return t.reference === undefined ? undefined : normalizeIfFull(t.reference);
}

/** Opens the destination a transport names. An archive is written as a layout in a temp
 * directory and written by `kimg save`'s writer once the image and its referrers landed. */
export async function openDestination(t: TransportRef, ctx: TransportContext): Promise<ImageDestination> {
  switch (t.kind) {
    case 'docker':
      return new RegistryDestination(ctx.registry, t.ref);
    case 'store':
      return new LayoutDestination(await ctx.store(), t.ref.toString(), t.ref.toString());
    case 'oci':
      return new LayoutDestination(await openStore(t.path), normalizedReference(t), fileLabel(t));
    case 'oci-archive':
    case 'docker-archive':
      return archiveDestination(t.path, normalizedReference(t), fileLabel(t));
  }
}

/**
 * An archive as a destination: the image is copied into a private temp layout, then written by
 * `kimg save`'s writer (an OCI layout with `io.containerd.image.name`, plus Docker's
 * `manifest.json` and `repositories`), so `kimg copy … oci-archive:` and `docker-archive:` write
 * what `kimg save` writes; the file appears whole or not at all.
 */
async function archiveDestination(
  file: string,
  reference: string | undefined,
  label: string,
): Promise<ImageDestination> {
  const dir = await mkdtemp(join(tmpdir(), 'kimg-save-'));
  try {
    const store = await openStore(dir);
    return new LayoutDestination(
      store,
      reference,
      label,
      async ([image, ...referrers]) => {
        // The image as `kimg save` writes it; its referrers (REPOSITORY@DIGEST in the temp
        // layout) without names, so `ctr images import` does not take them for images.
        const descriptor = async (name: string) => (await store.requireImage(name)).descriptor;
        if (image === undefined) return;
        await saveArchive(store, [{ name: image, descriptor: await descriptor(image) }], file, {
          referrers: await Promise.all(referrers.map(descriptor)),
        });
      },
      () => rm(dir, { recursive: true, force: true }),
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
