import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { describeStoredImage, pickPlatformImage, storedName } from '../../pull/index.ts';
import { familiarName, parseDockerRef } from '../../reference/index.ts';
import { formatBytes, formatTable, shortDigest } from '../format.ts';
import { parseOutputFormat, writeLine, type Io } from '../io.ts';
import { storeFrom, type StoreFlags } from '../registry-options.ts';

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

export function registerImages(program: Command, io: Io): void {
  program
    .command('images')
    .description('list the images in the store')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: OutputFlags, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      // One image that cannot be read (e.g. a graph over the walk limits) is listed with its
      // error; the others are listed as usual.
      const images = await Promise.all(
        (await store.listImages()).map((r) =>
          describeStoredImage(store, r).then(
            (image) => ({ image, record: r, error: undefined }),
            (err: unknown) => ({ image: undefined, record: r, error: (err as Error).message }),
          ),
        ),
      );
      for (const { error } of images) if (error !== undefined) writeLine(io.stderr, `kimg: ${error}`);
      if (format === 'json') {
        writeLine(
          io.stdout,
          JSON.stringify(
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
            null,
            2,
          ),
        );
        return;
      }
      const rows = images.map(({ image: i, record }) => {
        const [repository, tag] = repositoryAndTag(
          i?.name ?? record.name ?? record.refName ?? record.descriptor.digest,
        );
        return [
          repository,
          tag,
          shortDigest(record.descriptor.digest),
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
    .argument('<image>', 'image reference as pulled')
    .option('--platform <os/arch[/variant]>', 'which platform of a multi-platform image to show')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (image: string, flags: OutputFlags & { platform?: string }, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const stored = await describeStoredImage(store, await store.requireImage(storedName(image)));
      const chosen = pickPlatformImage(stored, all.platform === undefined ? undefined : parsePlatform(all.platform));
      if (chosen === undefined)
        throw new KimgError('ErrImageIncomplete', `${stored.name}: no platform of this image is stored; pull it again`);
      if (format === 'json') {
        writeLine(
          io.stdout,
          JSON.stringify(
            {
              name: stored.name,
              digest: stored.descriptor.digest,
              mediaType: stored.descriptor.mediaType,
              platform: chosen.platform ?? null,
              manifestDigest: chosen.descriptor.digest,
              size: chosen.size,
              manifest: chosen.manifest,
              config: chosen.config ?? null,
            },
            null,
            2,
          ),
        );
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
      for (const [label, value] of lines) writeLine(io.stdout, `${`${label}:`.padEnd(12)}${value}`);
      writeLine(io.stdout, `Layers:`);
      for (const layer of chosen.manifest.layers)
        writeLine(io.stdout, `  ${layer.digest}  ${formatBytes(layer.size).padStart(8)}  ${layer.mediaType}`);
    });
}

export function registerRmi(program: Command, io: Io): void {
  program
    .command('rmi')
    .description('remove images from the store (their blobs go with the next `kimg gc`)')
    .argument('<image...>', 'image references')
    .action(async (images: string[], flags: StoreFlags, command: Command) => {
      const store = await storeFrom(flagsOf(flags, command), io);
      let missing = 0;
      for (const image of images) {
        const name = storedName(image);
        if (await store.removeImage(name)) {
          writeLine(io.stdout, `Untagged: ${name}`);
        } else {
          missing++;
          writeLine(io.stderr, `kimg: no such image in ${store.root}: ${name}`);
        }
      }
      if (missing > 0)
        throw new KimgError('ErrImageUnknown', `${missing} of ${images.length} images were not in the store`);
    });
}
