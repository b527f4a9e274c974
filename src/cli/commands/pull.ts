import type { Command } from 'commander';
import type { PullResult } from '../../pull/index.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { listenForInterrupt, SIGNAL_EXIT } from '../interrupt.ts';
import {
  OUTPUT_OPTION,
  durationFlag,
  parseOutputFormat,
  printRecord,
  writeLine,
  type Io,
  type OutputFormat,
} from '../io.ts';
import { createProgress, parseProgressMode, type ProgressMode } from '../progress.ts';
import { addRegistryFlags, pullerFrom, storeLocation, type RegistryFlags } from '../registry-options.ts';

interface PullFlags extends RegistryFlags {
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly progress: string;
  readonly progressInterval: string;
  readonly quiet?: boolean;
  readonly output: string;
}

/** What `kimg pull -o json` prints (docs/cli-output.md). */
export function pullRecord(result: PullResult): Record<string, unknown> {
  return {
    name: result.name,
    digest: result.descriptor.digest,
    mediaType: result.descriptor.mediaType,
    size: result.descriptor.size,
    manifests: result.manifests.map((m) => ({ digest: m.digest, platform: m.platform ?? null })),
    blobs: result.blobs,
    blobsFetched: result.blobsFetched,
    bytesReceived: result.bytesReceived,
    upToDate: result.upToDate,
    ms: result.ms,
  };
}

/** Progress goes to standard output in text mode; with -o json or yaml standard output carries
 * the record alone, and progress goes to standard error when that is a terminal. */
function progressTarget(
  mode: ProgressMode,
  format: OutputFormat,
  io: Io,
): { mode: ProgressMode; stream: Io['stdout'] } {
  if (format === 'text') return { mode, stream: io.stdout };
  if (mode === 'auto') return { mode: io.stderr.isTTY === true ? 'tty' : 'quiet', stream: io.stderr };
  return { mode, stream: io.stderr };
}

export function registerPull(program: Command, io: Io, setExit: (code: number) => void): void {
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
      .option('--progress-interval <duration>', 'plain progress: a line per downloading blob this often', '5s')
      .option('-q, --quiet', 'print only the pulled reference')
      .option(...OUTPUT_OPTION),
  ).action(async (image: string, flags: PullFlags, command: Command) => {
    const all = { ...command.optsWithGlobals(), ...flags } as PullFlags;
    const format = parseOutputFormat(all.output);
    const asked = all.quiet === true ? 'quiet' : parseProgressMode(all.progress);
    const intervalMs = durationFlag('--progress-interval', all.progressInterval, { allowZero: true });
    const target = progressTarget(asked, format, io);
    const puller = await pullerFrom(all, io, image, { createStore: true });
    const progress = createProgress(target.mode, target.stream, { intervalMs });
    const interrupt = listenForInterrupt(() => progress.stop());
    let result: PullResult;
    try {
      result = await puller.pull(image, {
        ...(all.platform !== undefined && { platform: all.platform }),
        ...(all.allPlatforms === true && { allPlatforms: true }),
        onEvent: progress.onEvent,
        signal: interrupt.signal,
      });
    } catch (err) {
      if (interrupt.received === undefined) throw err;
      progress.stop();
      writeLine(
        io.stderr,
        `kimg: interrupted (${interrupt.received}): partial downloads are kept in ${storeLocation(all, io).path} and resume on the next pull`,
      );
      setExit(SIGNAL_EXIT[interrupt.received]);
      return;
    } finally {
      progress.stop();
      interrupt.dispose();
      await puller.close();
    }
    if (format !== 'text') return printRecord(io, format, pullRecord(result));
    if (target.mode === 'json') return;
    if (target.mode !== 'quiet') {
      writeLine(io.stdout, `Digest: ${result.descriptor.digest}`);
      writeLine(
        io.stdout,
        result.upToDate
          ? `Status: Image is up to date for ${result.name}`
          : `Status: Downloaded ${formatBytes(result.bytesReceived)} in ${formatDuration(result.ms)} (${result.blobsFetched} of ${result.blobs} blobs) for ${result.name}`,
      );
    }
    writeLine(io.stdout, result.name);
  });
}
