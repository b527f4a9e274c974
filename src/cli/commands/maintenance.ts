import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import { formatBytes } from '../format.ts';
import { OUTPUT_OPTION, parseOutputFormat, printRecord, writeLine, type Io } from '../io.ts';
import { storeFrom, type StoreFlags } from '../registry-options.ts';
import { addThresholdGcFlags, runThresholdGc, type ThresholdGcFlags } from './ensure-gc.ts';

export function registerGc(program: Command, io: Io): void {
  const gc = program
    .command('gc')
    .description(
      'remove blobs no image uses and partial downloads left by dead processes; --thresholds first removes images as the kubelet image GC would',
    )
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option(...OUTPUT_OPTION);
  addThresholdGcFlags(gc).action(
    async (flags: StoreFlags & ThresholdGcFlags & { thresholds?: boolean; output: string }, command: Command) => {
      const all = { ...command.optsWithGlobals(), ...flags } as typeof flags;
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const images = all.thresholds === true ? await runThresholdGc(all, io, store) : undefined;
      // A dry run counts the blobs of the images it would remove first, so that its lines add up.
      const wouldRemove = (images?.result.decisions ?? []).filter((d) => d.action === 'remove').map((d) => d.id);
      const result = await store.gc({ dryRun: all.dryRun === true, assumeRemoved: wouldRemove });
      if (format !== 'text') {
        await printRecord(io, format, images === undefined ? result : { images: images.result, blobs: result });
      } else {
        for (const line of images?.lines ?? []) writeLine(io.stdout, line);
        const verb = result.dryRun ? 'Would remove' : 'Removed';
        for (const blob of result.removedBlobs)
          writeLine(io.stdout, `${verb} ${blob.digest} (${formatBytes(blob.size)})`);
        writeLine(
          io.stdout,
          `${verb} ${result.removedBlobs.length} blobs (${formatBytes(result.reclaimedBytes)}) and ${result.removedIngests.length} stale ingest files; kept ${result.keptBlobs} blobs in use`,
        );
      }
      // Images over the walk limits do not stop the collection; say which they were.
      for (const image of result.overLimitImages) writeLine(io.stderr, `kimg: gc: ${image.message}`);
      if (images?.result.error !== undefined) throw new KimgError('ErrImageGC', images.result.error);
    },
  );
}

export function registerFsck(program: Command, io: Io): void {
  program
    .command('fsck')
    .description('verify every blob in the store against its digest and every image against its manifests')
    .option(...OUTPUT_OPTION)
    .action(async (flags: StoreFlags & { output: string }, command: Command) => {
      const all = { ...command.optsWithGlobals(), ...flags } as typeof flags;
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const report = await store.fsck();
      if (format !== 'text') {
        await printRecord(io, format, report);
      } else {
        for (const problem of report.problems) writeLine(io.stdout, `${problem.kind}: ${problem.message}`);
        writeLine(
          io.stdout,
          `${report.ok ? 'ok' : 'PROBLEMS FOUND'}: ${report.blobsChecked} blobs (${formatBytes(report.bytesChecked)}) in ${report.images} images checked in ${report.root}; ${report.problems.length} problems`,
        );
      }
      if (!report.ok)
        throw new KimgError('ErrStoreCorrupt', `the store at ${report.root} has ${report.problems.length} problems`);
    });
}
