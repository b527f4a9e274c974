import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadArchive, saveArchive, type SaveImage } from '../../archive/index.ts';
import { escapeControls, formatBytes, shortDigest } from '../format.ts';
import { listenForInterrupt } from '../interrupt.ts';
import {
  OUTPUT_FORMATS,
  OUTPUT_OPTION,
  UsageError,
  choiceFlag,
  parseOutputFormat,
  printRecord,
  printRecords,
  writeLine,
  type Io,
} from '../io.ts';
import { addRegistryFlags, requirePath, storeFrom, type StoreFlags } from '../registry-options.ts';
import { findStoredImages } from './images.ts';

function flagsOf<T>(flags: T, command: Command): T {
  return { ...command.optsWithGlobals(), ...flags } as T;
}

/** Runs `work` with Ctrl-C aborting it through the signal. */
async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interruption = listenForInterrupt(() => undefined);
  try {
    return await work(interruption.signal);
  } finally {
    interruption.dispose();
  }
}

/** `kimg save IMAGE… -o FILE.tar`: one archive for `ctr images import` and `docker load`. */
export function registerSave(program: Command, io: Io): void {
  // The registry flags are accepted (scripts pass them to every kimg command) and unused.
  addRegistryFlags(program.command('save'))
    .description(
      'write stored images to one tar that `ctr images import` and `docker load` both read (an OCI layout plus manifest.json)',
    )
    .argument('<image...>', 'image references as pulled, or unique prefixes of their digests')
    .option('-o, --output <file>', 'the archive to write (as docker save -o); replaced only once complete')
    .option('--format <format>', 'report as text, json or yaml', 'text')
    .action(async (images: string[], flags: StoreFlags & { output?: string; format: string }, command: Command) => {
      const all = flagsOf(flags, command);
      const format = choiceFlag('--format', all.format, OUTPUT_FORMATS);
      if (all.output === undefined || all.output === '')
        throw new UsageError('save: -o FILE is required (the archive to write)');
      const store = await storeFrom(all, io);
      const chosen = new Map<string, SaveImage>();
      for (const image of images) {
        for (const record of await findStoredImages(store, image)) {
          const name = record.name ?? record.refName;
          if (name === undefined) throw new UsageError(`save: ${image} has no name in the store`);
          chosen.set(name, { name, descriptor: record.descriptor });
        }
      }
      const file = resolve(all.output);
      const result = await interruptible((signal) => saveArchive(store, [...chosen.values()], file, { signal }));
      if (format !== 'text') {
        await printRecord(io, format, result);
        return;
      }
      for (const image of result.images)
        writeLine(io.stdout, escapeControls(`Saved image: ${image.name} (${shortDigest(image.digest)})`));
      writeLine(io.stdout, escapeControls(`Wrote ${file}: ${result.blobs} blobs, ${formatBytes(result.bytes)}`));
    });
}

/** `kimg load -i FILE.tar`: docker save, ctr export, skopeo and kimg archives into the store. */
export function registerLoad(program: Command, io: Io): void {
  addRegistryFlags(program.command('load'))
    .description(
      'load the images of an archive (docker save, ctr images export, skopeo oci-archive/docker-archive, kimg save) into the store, every blob verified',
    )
    .option('-i, --input <file>', 'the archive to read')
    .option('--repository <name>', 'repository for images the archive does not name (default localhost/<file name>)')
    .option(...OUTPUT_OPTION)
    .action(async (flags: StoreFlags & { input?: string; repository?: string; output: string }, command: Command) => {
      const all = flagsOf(flags, command);
      const format = parseOutputFormat(all.output);
      if (all.input === undefined || all.input === '') throw new UsageError('load: -i FILE is required');
      await requirePath('-i/--input', all.input, 'file');
      const store = await storeFrom(all, io, { create: true });
      const loaded = await interruptible((signal) =>
        loadArchive(store, resolve(all.input as string), {
          signal,
          ...(all.repository !== undefined && { repository: all.repository }),
        }),
      );
      if (format !== 'text') {
        await printRecords(io, format, loaded);
        return;
      }
      for (const image of loaded) {
        writeLine(
          io.stdout,
          escapeControls(
            `Loaded image: ${image.name} (${shortDigest(image.digest)}, ${image.blobs} blobs, ${formatBytes(image.bytesStored)} new)`,
          ),
        );
      }
    });
}
