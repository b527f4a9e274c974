import type { Command } from 'commander';
import {
  checkSlots,
  findImageSlots,
  makeImageLock,
  formatImageLock,
  parseFieldPath,
  pinManifests,
  readResourceList,
  slotResult,
  withResults,
  ManifestSource,
  type KrmResult,
  type PinReport,
  type SlotOptions,
} from '../../manifests/index.ts';
import { escapeControls } from '../format.ts';
import { formatError, writeLine, type Io } from '../io.ts';
import { addRegistryFlags } from '../registry-options.ts';
import {
  addSlotFlags,
  collect,
  createPinEngine,
  loadConfig,
  mutateFromFlags,
  parseTimeout,
  resolveModeOf,
  type PinFlags,
} from './pin-engine.ts';
import { readAll, readManifests, UsageError } from './pin-input.ts';
import { writeFilesAtomically, writeRewrite } from './pin-output.ts';
import { failWith, outputFormat, printFindings, where } from './pin-report.ts';

export function registerPin(program: Command, io: Io, setExit: (code: number) => void): void {
  addRegistryFlags(
    addSlotFlags(program.command('pin'), 'pin')
      .description('pin the images of Kubernetes manifests to digests, changing no other byte of the files')
      .option(
        '-f, --filename <file...>',
        'manifest files or directories (YAML or JSON, multi-document); - reads standard input',
      )
      .option('-w, --write', 'rewrite the files in place (atomically) instead of printing them')
      .option('--lock <file>', "write this run's resolutions (reference → digest) to a lock file")
      .option('--from-lock <file>', 'take every digest from a lock file: no network; a reference not in it fails')
      .option('--check', 'write nothing: list images that are not pinned (or not valid) and exit 1 if any')
      .option(
        '-o, --output <format>',
        'text (the pinned manifests; with --check its findings), or json (one record per pinned image or finding per line) or yaml',
        'text',
      )
      .option(
        '--output-format <format>',
        'preserve (nginx:1.25@sha256:…, the default), canonical (docker.io/library/nginx:1.25@sha256:…) or digest-only (docker.io/library/nginx@sha256:…)',
      )
      .option('--form <form>', 'the same as --output-format, as tag+digest, canonical or digest')
      .option(
        '--platform <os/arch[/variant]>',
        "pin this platform's manifest digest instead of the multi-platform index digest",
      )
      .option(
        '--existing-digest <mode>',
        'images that already have a digest: keep (default, no lookup), verify-warn or verify-deny (check it against the tag)',
      )
      .option('--on-mismatch <mode>', 'the same as --existing-digest, as keep, warn or deny')
      .option('--skip-prefix <prefix>', 'leave images starting with this (as written) alone (repeatable)', collect)
      .option('--timeout <duration>', 'how long one image lookup may take (30s, 500ms, 2m)', '30s')
      .option(
        '--config <file>',
        'admission configuration (YAML or JSON): its mutate and resolver sections; flags override',
      )
      .option(
        '--krm',
        'run as a KRM function: a ResourceList on standard input, the same on standard output (kpt fn eval --exec)',
      ),
  ).action(async (flags: PinFlags, command: Command) => {
    setExit(await runPin({ ...command.optsWithGlobals(), ...flags } as PinFlags, io));
  });
}

function checkUsage(flags: PinFlags): void {
  const files = flags.filename ?? [];
  if (flags.krm === true && (files.length > 0 || flags.write === true)) {
    throw new UsageError(
      '--krm reads a ResourceList from standard input and writes it to standard output: no -f or -w',
    );
  }
  if (flags.check === true && (flags.write === true || flags.lock !== undefined || flags.fromLock !== undefined)) {
    throw new UsageError('--check writes nothing and resolves nothing: no -w, --lock or --from-lock');
  }
  if (flags.write === true && files.includes('-'))
    throw new UsageError('-w rewrites files: standard input (-f -) cannot be rewritten');
}

/** `kimg pin`; returns the exit status. */
export async function runPin(flags: PinFlags, io: Io): Promise<number> {
  try {
    checkUsage(flags);
    const format = outputFormat(flags.output);
    const config = await loadConfig(flags.config, io);
    const mutate = mutateFromFlags(config.mutate, flags);
    parseTimeout(flags.timeout);
    const slotOptions: SlotOptions = { extraPodSpecPaths: mutate.extraPodSpecPaths, extraPaths: flags.extraPath ?? [] };
    for (const path of slotOptions.extraPaths ?? []) parseFieldPath(path, '--extra-path');

    const krm = flags.krm === true;
    const sources = krm
      ? [readResourceList((await readAll(io.stdin)).toString('utf8'))]
      : await readManifests(flags.filename ?? [], io);
    const slots = sources.flatMap((source) => findImageSlots(source, slotOptions));

    if (flags.check === true) {
      const findings = checkSlots(slots, { skipPrefixes: mutate.skipPrefixes });
      if (krm)
        io.stdout.write(
          withResults(
            sources[0]?.text ?? '',
            findings.map((f) => slotResult(f.slot, f.message, 'error', f.rule)),
          ),
        );
      else await printFindings(io, findings, format);
      return findings.length > 0 ? 1 : 0;
    }

    let engine;
    try {
      engine = await createPinEngine(flags, config, mutate, slots, io);
    } catch (err) {
      // Setting up the resolver fails only on what the user gave (flags, files, config): exit 2.
      io.stderr.write(`${formatError(err)}\n`);
      return 2;
    }
    let report: PinReport;
    try {
      report = await pinManifests(sources, engine.pinner, slotOptions);
    } finally {
      await engine.close();
    }
    const resolveMode = resolveModeOf(mutate);
    return krm
      ? await finishKrm(io, flags, resolveMode, report, sources[0] as ManifestSource)
      : await finish(io, flags, resolveMode, report);
  } catch (err) {
    return failWith(io, err);
  }
}

async function finish(io: Io, flags: PinFlags, resolveMode: string, report: PinReport): Promise<number> {
  for (const { slot, message } of report.warnings) writeLine(io.stderr, `${where(slot)}: warning: ${message}`);
  if (report.failures.length > 0) {
    for (const { slot, cause } of report.failures)
      writeLine(io.stderr, `${where(slot)}: ${escapeControls(slot.image)}: ${cause}`);
    return 1;
  }
  await writeRewrite(io, {
    files: report.files,
    resolutions: report.resolutions,
    resolveMode,
    write: flags.write === true,
    lock: flags.lock,
    format: outputFormat(flags.output),
    verb: 'pinned',
  });
  return 0;
}

async function finishKrm(
  io: Io,
  flags: PinFlags,
  resolveMode: string,
  report: PinReport,
  source: ManifestSource,
): Promise<number> {
  const results: KrmResult[] = report.warnings.map(({ slot, message }) => slotResult(slot, message, 'warning'));
  if (report.failures.length > 0) {
    results.unshift(...report.failures.map(({ slot, cause }) => slotResult(slot, `${slot.image}: ${cause}`, 'error')));
    io.stdout.write(withResults(source.text, results));
    return 1;
  }
  const [file] = report.files;
  for (const { slot, image } of file?.changes ?? [])
    results.push(slotResult(slot, `pinned ${slot.image} as ${image}`, 'info'));
  if (flags.lock !== undefined) {
    await writeFilesAtomically([
      { path: flags.lock, text: formatImageLock(makeImageLock(resolveMode, report.resolutions)) },
    ]);
  }
  io.stdout.write(withResults(file?.text ?? source.text, results));
  return 0;
}
