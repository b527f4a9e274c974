import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import { formatBytes } from '../format.ts';
import { parseOutputFormat, writeLine, type Io } from '../io.ts';
import { storeFrom, type StoreFlags } from '../registry-options.ts';

export function registerGc(program: Command, io: Io): void {
  program
    .command('gc')
    .description('remove blobs no image uses and partial downloads left by dead processes')
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: StoreFlags & { dryRun?: boolean; output: string }, command: Command) => {
      const all = { ...command.optsWithGlobals(), ...flags } as typeof flags;
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const result = await store.gc({ dryRun: all.dryRun === true, claimMaxAgeMs: 0 });
      if (format === 'json') {
        writeLine(io.stdout, JSON.stringify(result, null, 2));
        return;
      }
      const verb = result.dryRun ? 'Would remove' : 'Removed';
      for (const blob of result.removedBlobs) writeLine(io.stdout, `${verb} ${blob.digest} (${formatBytes(blob.size)})`);
      writeLine(
        io.stdout,
        `${verb} ${result.removedBlobs.length} blobs (${formatBytes(result.reclaimedBytes)}) and ${result.removedIngests.length} stale ingest files; kept ${result.keptBlobs} blobs in use`,
      );
    });
}

export function registerFsck(program: Command, io: Io): void {
  program
    .command('fsck')
    .description('verify every blob in the store against its digest and every image against its manifests')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: StoreFlags & { output: string }, command: Command) => {
      const all = { ...command.optsWithGlobals(), ...flags } as typeof flags;
      const format = parseOutputFormat(all.output);
      const store = await storeFrom(all, io);
      const report = await store.fsck();
      if (format === 'json') {
        writeLine(io.stdout, JSON.stringify(report, null, 2));
      } else {
        for (const problem of report.problems) writeLine(io.stdout, `${problem.kind}: ${problem.message}`);
        writeLine(io.stdout, `${report.ok ? 'ok' : 'PROBLEMS FOUND'}: ${report.blobsChecked} blobs (${formatBytes(report.bytesChecked)}) in ${report.images} images checked in ${report.root}; ${report.problems.length} problems`);
      }
      if (!report.ok) throw new KimgError('ErrStoreCorrupt', `the store at ${report.root} has ${report.problems.length} problems`);
    });
}
