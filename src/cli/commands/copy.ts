import type { Command } from 'commander';
import {
  copyImage,
  openDestination,
  openSource,
  parseTransport,
  type CopyEvent,
  type CopyResult,
  type TransportRef,
} from '../../copy/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { OUTPUT_OPTION, UsageError, parseOutputFormat, writeLine, type Io } from '../io.ts';
import { addRegistryFlags, registryFrom, storeFrom, type RegistryFlags } from '../registry-options.ts';

interface CopyFlags extends RegistryFlags {
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly referrers?: boolean;
  readonly output: string;
  readonly quiet?: boolean;
}

/** Per-blob lines on stderr (exists, mounted, pushed), as pull reports its blobs. */
function progressLines(io: Io, quiet: boolean): (event: CopyEvent) => void {
  return (event) => {
    if (quiet) return;
    if (event.type === 'blob')
      writeLine(io.stderr, `${event.outcome.padEnd(7)} ${event.digest.slice(0, 19)} ${formatBytes(event.size)}`);
    else if (event.type === 'up-to-date') writeLine(io.stderr, `up to date ${event.destination} ${event.digest}`);
    else if (event.type === 'referrer')
      writeLine(
        io.stderr,
        `referrer ${event.digest.slice(0, 19)} ${event.artifactType ?? event.mediaType} of ${event.subject.slice(0, 19)}${event.via === 'tag' ? ' (+ tag)' : ''}`,
      );
  };
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
  const registry = await registryFrom(flags, io, credentialImage(dst, src));
  const ctx = { registry, store: () => storeFrom(flags, io, { create: dst.kind === 'store' }) };
  const source = await openSource(src, ctx);
  try {
    const destination = await openDestination(dst, ctx);
    try {
      const result = await copyImage(source, destination, {
        ...(flags.platform !== undefined && { platform: parsePlatform(flags.platform) }),
        ...(flags.allPlatforms === true && { allPlatforms: true }),
        ...(flags.dryRun === true && { dryRun: true }),
        ...(flags.force === true && { force: true }),
        ...(flags.referrers === true && { referrers: true }),
        onEvent: progressLines(io, flags.quiet === true || format !== 'text'),
      });
      writeLine(io.stdout, format === 'text' ? summary(result) : jsonResult(result));
    } finally {
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
        'also copy the OCI 1.1 referrers (signatures, SBOMs, attestations) of every manifest copied, and theirs; registry to registry',
      )
      .option('-q, --quiet', 'no per-blob lines on stderr')
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
