import type { Command } from 'commander';
import {
  copyImage,
  openDestination,
  openSource,
  parseTransport,
  type CopyResult,
  type TransportRef,
} from '../../copy/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { createCopyProgress } from '../copy-progress.ts';
import { listenForInterrupt } from '../interrupt.ts';
import {
  OUTPUT_OPTION,
  UsageError,
  durationFlag,
  parseOutputFormat,
  writeLine,
  type Io,
  type OutputFormat,
} from '../io.ts';
import { parseProgressMode, type ProgressMode } from '../progress.ts';
import { addRegistryFlags, registryFrom, storeFrom, type RegistryFlags } from '../registry-options.ts';

interface CopyFlags extends RegistryFlags {
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly referrers?: boolean;
  readonly output: string;
  readonly quiet?: boolean;
  readonly progress?: string;
  readonly progressInterval?: string;
}

/** Where progress goes: standard error (standard output carries the summary or the record); with
 * -o json or yaml only when that is a terminal, unless a mode is asked for. */
function progressMode(flags: CopyFlags, format: OutputFormat, io: Io): ProgressMode {
  if (flags.quiet === true) return 'quiet';
  const asked = parseProgressMode(flags.progress ?? 'auto');
  if (asked === 'auto' && format !== 'text') return io.stderr.isTTY === true ? 'tty' : 'quiet';
  return asked;
}

function summary(result: CopyResult): string {
  const referrers = result.referrers.length > 0 ? `, ${result.referrers.length} referrers` : '';
  if (result.upToDate) return `${result.destination}: up to date at ${result.descriptor.digest}${referrers}`;
  return `${result.destination}@${result.descriptor.digest}: ${result.pushed} pushed (${formatBytes(result.bytesPushed)}), ${result.mounted} mounted, ${result.existing} present, ${result.manifests} manifests${referrers} in ${formatDuration(result.ms)}`;
}

function jsonResult(result: CopyResult): string {
  return JSON.stringify({
    source: result.source,
    destination: result.destination,
    digest: result.descriptor.digest,
    mediaType: result.descriptor.mediaType,
    manifests: result.manifests,
    blobs: result.blobs,
    pushed: result.pushed,
    mounted: result.mounted,
    existing: result.existing,
    bytesPushed: result.bytesPushed,
    upToDate: result.upToDate,
    referrers: result.referrers,
    ms: Math.round(result.ms),
  });
}

/** The image a `--creds` flag is for: the registry end of a copy (the destination first). */
function credentialImage(...ends: TransportRef[]): string | undefined {
  for (const end of ends) if (end.kind === 'docker') return end.ref.toString();
  return undefined;
}

async function runCopy(io: Io, flags: CopyFlags, src: TransportRef, dst: TransportRef): Promise<void> {
  const format = parseOutputFormat(flags.output);
  const intervalMs = durationFlag('--progress-interval', flags.progressInterval ?? '5s', { allowZero: true });
  const mode = progressMode(flags, format, io);
  // Registry to registry, blob downloads stay on the event loop: reading them on worker threads
  // (as pulls do) cost ≈ 0.5 CPU s and 30 MB more per GiB copied over TLS (A/B, 2 cores), where
  // the registries at both ends need the other core.
  const registry = await registryFrom(flags, io, credentialImage(dst, src), undefined, {
    ...(dst.kind === 'docker' && { blobThreads: false }),
  });
  const ctx = { registry, store: () => storeFrom(flags, io, { create: dst.kind === 'store' }) };
  const source = await openSource(src, ctx);
  try {
    const destination = await openDestination(dst, ctx);
    const progress = createCopyProgress(mode, io.stderr, { intervalMs });
    const interrupt = listenForInterrupt(() => progress.stop());
    try {
      const result = await copyImage(source, destination, {
        ...(flags.platform !== undefined && { platform: parsePlatform(flags.platform) }),
        ...(flags.allPlatforms === true && { allPlatforms: true }),
        ...(flags.dryRun === true && { dryRun: true }),
        ...(flags.force === true && { force: true }),
        ...(flags.referrers === true && { referrers: true }),
        onEvent: progress.onEvent,
        signal: interrupt.signal,
      });
      progress.stop();
      writeLine(io.stdout, format === 'text' ? summary(result) : jsonResult(result));
    } finally {
      progress.stop();
      interrupt.dispose();
      await destination.close();
    }
  } finally {
    await source.close();
    await registry.close();
  }
}

function copyFlags(command: Command): Command {
  return addRegistryFlags(
    command
      .option('--platform <os/arch[/variant]>', 'copy only this platform of a multi-platform image')
      .option('--all-platforms', 'copy every platform of a multi-platform image (the default)')
      .option('--dry-run', 'walk the source and check it is complete; write nothing')
      .option('--force', 'copy even when the destination already points at the same digest')
      .option(
        '--referrers',
        'also copy the OCI 1.1 referrers (signatures, SBOMs, attestations) of every manifest copied, and theirs',
      )
      .option(
        '--progress <mode>',
        'auto (bars on a terminal, lines otherwise; nothing with -o json unless stderr is a terminal), tty, plain, json (events as JSON lines) or quiet; on stderr',
        'auto',
      )
      .option('--progress-interval <duration>', 'plain progress: a line per uploading blob this often', '5s')
      .option('-q, --quiet', 'no progress on stderr')
      .option(...OUTPUT_OPTION),
  );
}

export function registerCopy(program: Command, io: Io): void {
  copyFlags(
    program
      .command('copy')
      .description(
        'copy an image between registries (docker://REF), the store (a plain reference), OCI layouts (oci:DIR[:REF]) and archives (oci-archive:FILE[:REF], docker-archive:FILE[:REF]); every byte verified, the name written last',
      )
      .argument('<source>', 'where the image is')
      .argument('<destination>', 'where it goes'),
  ).action(async (src: string, dst: string, flags: CopyFlags, command: Command) => {
    const all = { ...command.optsWithGlobals(), ...flags } as CopyFlags;
    await runCopy(io, all, parseTransport(src), parseTransport(dst));
  });
}

export function registerPush(program: Command, io: Io): void {
  copyFlags(
    program
      .command('push')
      .description('push an image from the store to its registry, or to DEST (every stored platform)')
      .argument('<image>', 'a stored image')
      .argument('[dest]', 'another reference to push it as'),
  ).action(async (image: string, dest: string | undefined, flags: CopyFlags, command: Command) => {
    const all = { ...command.optsWithGlobals(), ...flags } as CopyFlags;
    const src = parseTransport(image);
    if (src.kind !== 'store')
      throw new UsageError('kimg push takes a stored image (a plain reference); use kimg copy for other transports');
    const target: TransportRef = dest === undefined ? { kind: 'docker', ref: src.ref } : parseTransport(dest);
    if (target.kind !== 'store' && target.kind !== 'docker')
      throw new UsageError('kimg push DEST is a reference (a registry); use kimg copy for layouts and archives');
    await runCopy(io, all, src, { kind: 'docker', ref: target.ref });
  });
}
