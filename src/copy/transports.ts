/**
 * Transports as skopeo names them (containers/image transports): `docker://REF`, `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`, and a plain reference for the kimg store.
 */
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDockerRef, type NamedReference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { DockerArchiveSource, dockerEntryFor, extractArchive, packLayout, readDockerManifest } from './archive.ts';
import { LayoutDestination, LayoutSource } from './layout.ts';
import { RegistryDestination, RegistrySource } from './registry.ts';
import { CopyError, type ImageDestination, type ImageSource, type TopLevel } from './types.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parseManifestDocument } from '../oci/index.ts';

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

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Opens the source a transport names. Archives are extracted (safely) into a temp directory
 * that `close()` removes. */
export async function openSource(t: TransportRef, ctx: TransportContext, signal?: AbortSignal): Promise<ImageSource> {
  switch (t.kind) {
    case 'docker':
      return new RegistrySource(ctx.registry, t.ref);
    case 'store':
      return new LayoutSource(await ctx.store(), t.ref.toString(), t.ref.toString());
    case 'oci':
      return new LayoutSource(
        await openStore(t.path, { create: false }),
        t.reference,
        `oci:${t.path}${t.reference === undefined ? '' : `:${t.reference}`}`,
      );
    case 'oci-archive':
    case 'docker-archive': {
      const label = `${t.kind}:${t.path}${t.reference === undefined ? '' : `:${t.reference}`}`;
      const dir = await extractArchive(t.path, signal);
      const cleanup = () => rm(dir, { recursive: true, force: true });
      try {
        if ((await exists(join(dir, 'oci-layout'))) && (await exists(join(dir, 'index.json')))) {
          const reference = t.reference === undefined ? undefined : normalizeIfFull(t.reference);
          return new LayoutSource(await openStore(dir, { create: false }), reference, label, cleanup);
        }
        const entries = await readDockerManifest(dir, label);
        const wanted = t.reference === undefined ? undefined : normalizeIfFull(t.reference);
        const entry =
          wanted === undefined
            ? entries.length === 1
              ? entries[0]
              : undefined
            : entries.find((e) => (e.RepoTags ?? []).some((tag) => normalizeIfFull(tag) === wanted));
        if (entry === undefined) {
          throw new CopyError(
            'ErrImageUnknown',
            `${label}: ${wanted === undefined ? `the archive holds ${entries.length} images; name one` : `no image tagged ${wanted}`}`,
            { image: label },
          );
        }
        const name = entry.RepoTags?.[0] === undefined ? undefined : normalizeIfFull(entry.RepoTags[0]);
        return new DockerArchiveSource(dir, entry, label, name, cleanup);
      } catch (err) {
        await cleanup();
        throw err;
      }
    }
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

/** Opens the destination a transport names. An archive is written as a layout in a temp
 * directory and packed into place when the image is committed. */
export async function openDestination(t: TransportRef, ctx: TransportContext): Promise<ImageDestination> {
  switch (t.kind) {
    case 'docker':
      return new RegistryDestination(ctx.registry, t.ref);
    case 'store':
      return new LayoutDestination(await ctx.store(), t.ref.toString(), t.ref.toString());
    case 'oci':
      return new LayoutDestination(
        await openStore(t.path),
        t.reference === undefined ? undefined : normalizeIfFull(t.reference),
        `oci:${t.path}${t.reference === undefined ? '' : `:${t.reference}`}`,
      );
    case 'oci-archive':
    case 'docker-archive': {
      const writer = await ArchiveWriter.create(t.path);
      const reference = t.reference === undefined ? undefined : normalizeIfFull(t.reference);
      return new LayoutDestination(
        writer.store,
        reference,
        `${t.kind}:${t.path}${t.reference === undefined ? '' : `:${t.reference}`}`,
        async (name, top) => {
          await writer.add(name, top);
          await writer.finish();
        },
        () => writer.discard(),
      );
    }
  }
}

/**
 * Builds one archive from several images: each is copied into a private layout, then the
 * layout and Docker's `manifest.json` are packed into the file at once (`kimg save`).
 */
export class ArchiveWriter {
  private readonly docker: unknown[] = [];

  private constructor(
    readonly file: string,
    readonly dir: string,
    readonly store: Store,
  ) {}

  static async create(file: string): Promise<ArchiveWriter> {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-save-'));
    return new ArchiveWriter(file, dir, await openStore(dir));
  }

  /** Records an image committed to `store` for Docker's `manifest.json` (single-platform
   * manifests only: `docker load` cannot take an index from it). */
  async add(name: string, top: TopLevel): Promise<void> {
    const document = parseManifestDocument(top.bytes, { what: name });
    if (document.kind !== 'manifest') return;
    const tag = name.replace(/^docker\.io\/(library\/)?/, '');
    this.docker.push(dockerEntryFor(document.manifest, name.includes('@') ? [] : [tag]));
  }

  async finish(): Promise<void> {
    await packLayout(this.dir, this.file, this.docker);
  }

  async discard(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
