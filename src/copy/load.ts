/**
 * `kimg load`: every named image of an archive (an OCI layout from kimg, skopeo or
 * `ctr images export`, or a `docker save` archive) into the store, each verified on ingest.
 */
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDockerRef } from '../reference/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { DockerArchiveSource, extractArchive, readDockerManifest } from './archive.ts';
import { copyImage, type CopyEventSink } from './engine.ts';
import { LayoutDestination, LayoutSource } from './layout.ts';
import { CopyError } from './types.ts';

function fullName(text: string): string | undefined {
  try {
    return parseDockerRef(text).toString();
  } catch {
    return undefined;
  }
}

/** Loads the archive's images into `store`; returns the names recorded. */
export async function loadArchive(
  file: string,
  store: Store,
  options: { signal?: AbortSignal; onEvent?: CopyEventSink } = {},
): Promise<string[]> {
  const dir = await extractArchive(file, options.signal);
  const loaded: string[] = [];
  const copy = {
    ...(options.signal !== undefined && { signal: options.signal }),
    ...(options.onEvent !== undefined && { onEvent: options.onEvent }),
  };
  try {
    const isLayout = await access(join(dir, 'index.json')).then(
      () =>
        access(join(dir, 'oci-layout')).then(
          () => true,
          () => false,
        ),
      () => false,
    );
    if (isLayout) {
      const layout = await openStore(dir, { create: false });
      for (const record of await layout.listImages()) {
        const name = record.name === undefined ? undefined : fullName(record.name);
        if (name === undefined || record.name === undefined) continue;
        const source = new LayoutSource(layout, record.name, `${file} (${record.name})`);
        await copyImage(source, new LayoutDestination(store, name, name), { ...copy, force: true });
        loaded.push(name);
      }
    } else {
      const entries = await readDockerManifest(dir, file);
      for (const entry of entries) {
        const names = (entry.RepoTags ?? []).map(fullName).filter((n): n is string => n !== undefined);
        const source = new DockerArchiveSource(dir, entry, `${file} (${entry.Config})`, names[0]);
        for (const name of names) {
          await copyImage(source, new LayoutDestination(store, name, name), { ...copy, force: true });
          loaded.push(name);
        }
      }
    }
    if (loaded.length === 0)
      throw new CopyError(
        'ErrImageUnknown',
        `${file}: the archive names no image (no io.containerd.image.name, ref.name or RepoTags)`,
        { image: file },
      );
    return loaded;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
