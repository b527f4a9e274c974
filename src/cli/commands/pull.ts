import type { Command } from 'commander';
import { formatBytes, formatDuration } from '../format.ts';
import { writeLine, type Io } from '../io.ts';
import { createProgress, parseProgressMode } from '../progress.ts';
import { addRegistryFlags, pullerFrom, type RegistryFlags } from '../registry-options.ts';

interface PullFlags extends RegistryFlags {
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly progress: string;
  readonly quiet?: boolean;
}

export function registerPull(program: Command, io: Io): void {
  addRegistryFlags(
    program
      .command('pull')
      .description('pull an image into the store, verifying every byte against its digest')
      .argument('<image>', 'image reference, e.g. busybox:1.36 or registry.example.com/team/app@sha256:…')
      .option(
        '--platform <os/arch[/variant]>',
        "platform to pull from a multi-platform image (default: this machine's)",
      )
      .option('--all-platforms', 'keep every platform of a multi-platform image')
      .option('--concurrency <n>', 'blobs downloaded at once', '3')
      .option(
        '--progress <mode>',
        'auto (bars on a terminal, lines otherwise), tty, plain, json (events as JSON lines) or quiet',
        'auto',
      )
      .option('-q, --quiet', 'print only the pulled reference'),
  ).action(async (image: string, flags: PullFlags, command: Command) => {
    const all = { ...command.optsWithGlobals(), ...flags } as PullFlags;
    const mode = all.quiet ? 'quiet' : parseProgressMode(all.progress);
    const puller = await pullerFrom(all, io, image);
    const progress = createProgress(mode, io.stdout);
    try {
      const result = await puller.pull(image, {
        ...(all.platform !== undefined && { platform: all.platform }),
        ...(all.allPlatforms === true && { allPlatforms: true }),
        onEvent: progress.onEvent,
      });
      progress.stop();
      if (mode === 'json') return;
      if (mode !== 'quiet') {
        writeLine(io.stdout, `Digest: ${result.descriptor.digest}`);
        writeLine(
          io.stdout,
          result.upToDate
            ? `Status: Image is up to date for ${result.name}`
            : `Status: Downloaded ${formatBytes(result.bytesReceived)} in ${formatDuration(result.ms)} (${result.blobsFetched} of ${result.blobs} blobs) for ${result.name}`,
        );
      }
      writeLine(io.stdout, result.name);
    } finally {
      progress.stop();
      await puller.close();
    }
  });
}
