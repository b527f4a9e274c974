// `kimg relocate`: copy every image of a set of manifests into one registry and rewrite the
// manifests to the new names pinned by digest. Input, output, `-w` and the slot flags are
// `kimg pin`'s (pin-input, pin-output, pin-engine); the copies are the copy engine's.
import type { Command } from 'commander';
import type { CopyResult } from '../../copy/index.ts';
import {
  RelocateError,
  formatRelocateTarget,
  parseFieldPath,
  parseRelocateTarget,
  relocate,
  type NameMapping,
  type RelocateEvent,
  type RelocateReport,
  type SlotOptions,
} from '../../manifests/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { escapeControls, formatBytes, formatDuration } from '../format.ts';
import { SIGNAL_EXIT, listenForInterrupt } from '../interrupt.ts';
import { printRecords, writeLine, type Io } from '../io.ts';
import { addRegistryFlags, registryFrom } from '../registry-options.ts';
import { addSlotFlags, collect, loadConfig, mutateFromFlags, resolveModeOf, type PinFlags } from './pin-engine.ts';
import { readManifests, UsageError } from './pin-input.ts';
import { writeRewrite } from './pin-output.ts';
import { failWith, outputFormat, where } from './pin-report.ts';

interface RelocateFlags extends PinFlags {
  readonly to?: string;
  readonly keepHost?: boolean;
  readonly flatten?: boolean;
  readonly allPlatforms?: boolean;
  readonly quiet?: boolean;
}

export function registerRelocate(program: Command, io: Io, setExit: (code: number) => void): void {
  addRegistryFlags(
    addSlotFlags(program.command('relocate'), 'relocate')
      .description(
        'copy every image Kubernetes manifests reference into one registry and rewrite the manifests, byte for byte, to the new names pinned by digest',
      )
      .option(
        '-f, --filename <file...>',
        'manifest files or directories (YAML or JSON, multi-document); - reads standard input',
      )
      .option(
        '--to <registry[/prefix]>',
        'where the images go: docker.io/library/nginx becomes REGISTRY/PREFIX/library/nginx',
      )
      .option(
        '--keep-host',
        'keep the source registry as a path component: ghcr.io/org/app becomes REGISTRY/PREFIX/ghcr.io/org/app',
      )
      .option('--flatten', 'keep only the last path component: ghcr.io/org/app becomes REGISTRY/PREFIX/app')
      .option('-w, --write', 'rewrite the files in place (atomically, all or none) instead of printing them')
      .option('--lock <file>', 'write source → digest → destination of every relocated image to a lock file')
      .option(
        '--check',
        'copy and write nothing: list each image, whether the destination has it, and exit 1 if any is missing',
      )
      .option(
        '-o, --output <format>',
        'text (the rewritten manifests; with --check one line per image), or json (one record per line) or yaml',
        'text',
      )
      .option(
        '--output-format <format>',
        'preserve (REGISTRY/PREFIX/library/nginx:1.25@sha256:…, the tag as written; the default), canonical (the tag always, latest when implied) or digest-only',
      )
      .option('--form <form>', 'the same as --output-format, as tag+digest, canonical or digest')
      .option(
        '--platform <os/arch[/variant]>',
        "copy only this platform's manifest and pin it (by default the whole index goes: a manifest may run on any node)",
      )
      .option('--all-platforms', 'copy every platform of an index (the default)')
      .option('--skip-prefix <prefix>', 'leave images starting with this (as written) alone (repeatable)', collect)
      .option('-q, --quiet', 'no per-image lines on stderr'),
  ).action(async (flags: RelocateFlags, command: Command) => {
    setExit(await runRelocate({ ...command.optsWithGlobals(), ...flags } as RelocateFlags, io));
  });
}

function checkUsage(flags: RelocateFlags): void {
  const files = flags.filename ?? [];
  if (flags.to === undefined) throw new UsageError('--to REGISTRY[/PREFIX] is required: where the images go');
  if (flags.check === true && (flags.write === true || flags.lock !== undefined))
    throw new UsageError('--check copies and writes nothing: no -w or --lock');
  if (flags.write === true && files.includes('-'))
    throw new UsageError('-w rewrites files: standard input (-f -) cannot be rewritten');
  if (flags.keepHost === true && flags.flatten === true) throw new UsageError('--keep-host and --flatten disagree');
  if (flags.allPlatforms === true && flags.platform !== undefined)
    throw new UsageError('--platform and --all-platforms disagree');
}

/** What the target is and how names map, or a usage error naming `--to`. */
function targetFrom(flags: RelocateFlags): { to: ReturnType<typeof parseRelocateTarget>; mapping: NameMapping } {
  try {
    const to = parseRelocateTarget(flags.to as string);
    return { to, mapping: flags.keepHost === true ? 'keep-host' : flags.flatten === true ? 'flatten' : 'path' };
  } catch (err) {
    throw err instanceof RelocateError ? new UsageError(err.message) : err;
  }
}

/** `kimg relocate`; returns the exit status. */
export async function runRelocate(flags: RelocateFlags, io: Io): Promise<number> {
  try {
    checkUsage(flags);
    const format = outputFormat(flags.output);
    const { to, mapping } = targetFrom(flags);
    const mutate = mutateFromFlags((await loadConfig(undefined, io)).mutate, flags);
    const slotOptions: SlotOptions = { extraPodSpecPaths: mutate.extraPodSpecPaths, extraPaths: flags.extraPath ?? [] };
    for (const path of slotOptions.extraPaths ?? []) parseFieldPath(path, '--extra-path');
    const sources = await readManifests(flags.filename ?? [], io);

    // `--creds` is for the destination: the registry written to.
    const registry = await registryFrom(flags, io, `${formatRelocateTarget(to)}/x`);
    let report: RelocateReport;
    const interruption = listenForInterrupt(() => undefined);
    try {
      report = await relocate(sources, {
        ...slotOptions,
        registry,
        to,
        mapping,
        outputFormat: mutate.outputFormat,
        skipPrefixes: mutate.skipPrefixes,
        ...(flags.platform !== undefined && { platform: parsePlatform(flags.platform) }),
        ...(flags.check === true && { check: true }),
        onEvent: progress(io, flags.quiet === true || flags.check === true),
        signal: interruption.signal,
      });
    } catch (err) {
      if (interruption.received === undefined) throw err;
      writeLine(io.stderr, `kimg: interrupted by ${interruption.received}; nothing was rewritten`);
      return SIGNAL_EXIT[interruption.received];
    } finally {
      interruption.dispose();
      await registry.close();
    }
    for (const { slot, cause } of report.failures)
      writeLine(io.stderr, `${where(slot)}: ${escapeControls(slot.image)}: ${cause}`);
    if (report.failures.length > 0) {
      if (flags.write === true) writeLine(io.stderr, 'kimg: nothing was rewritten');
      return 1;
    }
    if (flags.check === true) return await printCheck(io, report, format);
    return await finish(io, flags, resolveModeOf(mutate), report, format);
  } catch (err) {
    if (err instanceof RelocateError) {
      io.stderr.write(`kimg: ${escapeControls(err.message)} (${err.code})\n`);
      return 2;
    }
    return failWith(io, err);
  }
}

function copySummary(result: CopyResult): string {
  if (result.upToDate) return 'up to date';
  return `${result.pushed} pushed (${formatBytes(result.bytesPushed)}), ${result.mounted} mounted, ${result.existing} present, ${result.manifests} manifests in ${formatDuration(result.ms)}`;
}

/** One line per image on stderr as it is copied. */
function progress(io: Io, quiet: boolean): (event: RelocateEvent) => void {
  return (event) => {
    if (quiet) return;
    if (event.type === 'copied')
      writeLine(
        io.stderr,
        `${event.source} -> ${event.destination.replace(/@.*$/, '')}@${event.result.descriptor.digest}: ${copySummary(event.result)}`,
      );
    else if (event.type === 'in-place') writeLine(io.stderr, `${where(event.slot)}: ${event.slot.image}: in place`);
  };
}

/** `--check`: one line (or record) per image, on stdout; exit 1 when any is missing. */
async function printCheck(io: Io, report: RelocateReport, format: 'text' | 'json' | 'yaml'): Promise<number> {
  const rows = [
    ...report.images.flatMap((image) =>
      image.slots.map((slot) => ({
        slot,
        destination: `${image.destination.replace(/@.*$/, '')}@${image.digest}`,
        state: image.present === true ? 'present' : 'missing',
      })),
    ),
    ...report.inPlace.map(({ slot, present }) => ({
      slot,
      destination: slot.image,
      state: present === true ? 'in place' : 'missing',
    })),
  ];
  const order = new Map(report.slots.map((slot, i) => [slot, i]));
  rows.sort((a, b) => (order.get(a.slot) ?? 0) - (order.get(b.slot) ?? 0));
  if (format === 'text') {
    for (const { slot, destination, state } of rows)
      writeLine(
        io.stdout,
        slot.image === destination
          ? `${where(slot)}: ${slot.image}: ${state}`
          : `${where(slot)}: ${slot.image} -> ${destination}: ${state}`,
      );
    const missing = rows.filter((r) => r.state === 'missing').length;
    writeLine(
      io.stderr,
      missing === 0
        ? `every image is at ${formatRelocateTarget(report.target)}`
        : `${missing} of ${rows.length} images missing at ${formatRelocateTarget(report.target)}`,
    );
  } else {
    await printRecords(
      io,
      format,
      rows.map(({ slot, destination, state }) => ({
        file: slot.file,
        line: slot.line,
        column: slot.column,
        path: slot.path,
        image: slot.image,
        destination,
        state,
      })),
    );
  }
  return rows.some((r) => r.state === 'missing') ? 1 : 0;
}

async function finish(
  io: Io,
  flags: RelocateFlags,
  resolveMode: string,
  report: RelocateReport,
  format: 'text' | 'json' | 'yaml',
): Promise<number> {
  await writeRewrite(io, {
    files: report.files,
    resolutions: report.resolutions,
    resolveMode,
    write: flags.write === true,
    lock: flags.lock,
    format,
    verb: 'relocated',
  });
  return 0;
}
