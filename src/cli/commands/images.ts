import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { describeStoredImage, pickPlatformImage, storedName } from '../../pull/index.ts';
import { familiarName, parseDockerRef } from '../../reference/index.ts';
import type { ImageRecord, Store } from '../../store/index.ts';
import { escapeControls, formatBytes, formatTable, shortDigest } from '../format.ts';
import { OUTPUT_OPTION, formatError, parseOutputFormat, printRecord, printRecords, writeLine, type Io } from '../io.ts';
import { existingStoreFrom, storeFrom, type StoreFlags } from '../registry-options.ts';

type OutputFlags = StoreFlags & { output: string };

function flagsOf<T>(flags: T, command: Command): T {
  return { ...command.optsWithGlobals(), ...flags } as T;
}

/** Repository and tag columns for a stored name; names other tools wrote may be bare tags. */
function repositoryAndTag(name: string): [string, string] {
  try {
    const ref = parseDockerRef(name);
    return [familiarName(ref), ref.tag ?? '<none>'];
  } catch {
    return [name, '<none>'];
  }
}

const HEX_PREFIX = /^(?:sha256:)?([0-9a-f]{4,64})$/;

/**
 * The stored images `image` names: a reference as pulled, else (as docker takes an image ID
 * prefix) a prefix of at least 4 hex digits of an image's digest, as `kimg images` prints it.
 * A prefix of two different digests is ambiguous: an error listing them.
 */
export async function findStoredImages(store: Store, image: string): Promise<ImageRecord[]> {
  let name: string | undefined;
  try {
    name = storedName(image);
  } catch {
    name = undefined;
  }
  const byName = name === undefined ? undefined : await store.getImage(name);
  if (byName !== undefined) return [byName];
  const prefix = HEX_PREFIX.exec(image)?.[1];
  if (prefix !== undefined) {
    const matches = (await store.listImages()).filter((r) => r.descriptor.digest.startsWith(`sha256:${prefix}`));
    const digests = [...new Set(matches.map((r) => r.descriptor.digest))];
    if (digests.length > 1) {
      throw new KimgError(
        'ErrImageAmbiguous',
        `${image} is a prefix of ${digests.length} image digests in ${store.root} (${digests.map((d) => shortDigest(d)).join(', ')}): give more digits`,
      );
    }
    if (matches.length > 0) return matches;
  }
  if (name === undefined) throw new KimgError('ErrImageUnknown', `no such image in ${store.root}: ${image}`);
  return [await store.requireImage(name)];
}

export function registerImages(program: Command, io: Io): void {
  program
    .command('images')
    .description('list the images in the store')
    .option('-q, --quiet', 'print only the short digests (IDs), one per image')
    .option('--digests', 'show full digests instead of the short ones')
    .option(...OUTPUT_OPTION)
    .action(async (flags: OutputFlags & { quiet?: boolean; digests?: boolean }, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      // No store yet (nothing pulled): no images, as docker lists none on a fresh machine.
      const store = await existingStoreFrom(all, io);
      const records = store === undefined ? [] : await store.listImages();
      // One image that cannot be read (e.g. a graph over the walk limits) is listed with its
      // error; the others are listed as usual.
      const images = await Promise.all(
        records.map((r) =>
          describeStoredImage(store as Store, r).then(
            (image) => ({ image, record: r, error: undefined }),
            (err: unknown) => ({ image: undefined, record: r, error: (err as Error).message }),
          ),
        ),
      );
      for (const { error } of images) if (error !== undefined) writeLine(io.stderr, `kimg: ${error}`);
      const id = (digest: string) => (all.digests === true ? digest : shortDigest(digest));
      if (format !== 'text') {
        await printRecords(
          io,
          format,
          images.map(({ image: i, record, error }) =>
            i === undefined
              ? {
                  name: record.name ?? record.refName ?? record.descriptor.digest,
                  digest: record.descriptor.digest,
                  mediaType: record.descriptor.mediaType,
                  size: null,
                  platforms: [],
                  error,
                }
              : {
                  name: i.name,
                  digest: i.descriptor.digest,
                  mediaType: i.descriptor.mediaType,
                  size: i.size,
                  platforms: i.images.map((p) => p.platform ?? null),
                },
          ),
        );
        return;
      }
      if (all.quiet === true) {
        for (const { record } of images) writeLine(io.stdout, id(record.descriptor.digest));
        return;
      }
      const rows = images.map(({ image: i, record }) => {
        const [repository, tag] = repositoryAndTag(
          i?.name ?? record.name ?? record.refName ?? record.descriptor.digest,
        );
        return [
          repository,
          tag,
          id(record.descriptor.digest),
          i === undefined ? '(unreadable)' : i.images.map((p) => p.platform ?? '?').join(','),
          i === undefined ? '?' : formatBytes(i.size),
        ];
      });
      writeLine(io.stdout, formatTable(['REPOSITORY', 'TAG', 'DIGEST', 'PLATFORMS', 'SIZE'], rows));
    });
}

export function registerInspect(program: Command, io: Io): void {
  program
    .command('inspect')
    .description('show a stored image: digest, platform, size, manifest and config')
    .argument('<image>', 'image reference as pulled, or a unique prefix of its digest as `kimg images` shows it')
    .option('--platform <os/arch[/variant]>', 'which platform of a multi-platform image to show')
    .option(...OUTPUT_OPTION)
    .action(async (image: string, flags: OutputFlags & { platform?: string }, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const [record] = await findStoredImages(store, image);
      const stored = await describeStoredImage(store, record as ImageRecord);
      const chosen = pickPlatformImage(stored, all.platform === undefined ? undefined : parsePlatform(all.platform));
      if (chosen === undefined)
        throw new KimgError('ErrImageIncomplete', `${stored.name}: no platform of this image is stored; pull it again`);
      if (format !== 'text') {
        await printRecord(io, format, {
          name: stored.name,
          digest: stored.descriptor.digest,
          mediaType: stored.descriptor.mediaType,
          platform: chosen.platform ?? null,
          manifestDigest: chosen.descriptor.digest,
          size: chosen.size,
          manifest: chosen.manifest,
          config: chosen.config ?? null,
        });
        return;
      }
      const lines: [string, string][] = [
        ['Name', stored.name],
        ['Digest', stored.descriptor.digest],
        ['Media type', stored.descriptor.mediaType],
        ['Platform', chosen.platform ?? '-'],
        [
          'Manifest',
          chosen.descriptor.digest === stored.descriptor.digest ? '(the image itself)' : chosen.descriptor.digest,
        ],
        ['Config', chosen.manifest.config.digest],
        ['Size', `${formatBytes(chosen.size)} (${chosen.size} bytes)`],
      ];
      if (stored.images.length > 1 || stored.missingPlatforms.length > 0) {
        lines.push([
          'Platforms',
          `${stored.images.map((i) => i.platform ?? '?').join(', ')} stored${stored.missingPlatforms.length ? `; not pulled: ${stored.missingPlatforms.join(', ')}` : ''}`,
        ]);
      }
      for (const [label, value] of lines) writeLine(io.stdout, `${`${label}:`.padEnd(12)}${escapeControls(value)}`);
      writeLine(io.stdout, `Layers:`);
      for (const layer of chosen.manifest.layers)
        writeLine(
          io.stdout,
          escapeControls(`  ${layer.digest}  ${formatBytes(layer.size).padStart(8)}  ${layer.mediaType}`),
        );
    });
}

export function registerRmi(program: Command, io: Io): void {
  program
    .command('rmi')
    .description('remove images from the store (their blobs go with the next `kimg gc`)')
    .argument('<image...>', 'image references, or unique prefixes of their digests as `kimg images` shows them')
    .option(...OUTPUT_OPTION)
    .action(async (images: string[], flags: OutputFlags, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const results: { image: string; untagged: string[]; error: { code: string; message: string } | null }[] = [];
      for (const image of images) {
        try {
          const found = await findStoredImages(store, image);
          const names = [...new Set(found.map((r) => r.name ?? r.refName ?? r.descriptor.digest))];
          if (names.length > 1) {
            throw new KimgError(
              'ErrImageAmbiguous',
              `${image} is the image of ${names.length} names (${names.join(', ')}): remove them by name`,
            );
          }
          const untagged: string[] = [];
          for (const name of names) if (await store.removeImage(name)) untagged.push(name);
          if (untagged.length === 0) throw new KimgError('ErrImageUnknown', `no such image in ${store.root}: ${image}`);
          results.push({ image, untagged, error: null });
          if (format === 'text') for (const name of untagged) writeLine(io.stdout, `Untagged: ${name}`);
        } catch (err) {
          if (!(err instanceof KimgError)) throw err;
          results.push({ image, untagged: [], error: { code: err.code, message: err.message } });
          writeLine(io.stderr, formatError(err));
        }
      }
      if (format !== 'text') await printRecords(io, format, results);
      const failed = results.filter((r) => r.error !== null).length;
      if (failed > 0) throw new KimgError('ErrImageUnknown', `${failed} of ${images.length} images were not removed`);
    });
}
