/**
 * `kimg gc --thresholds`: the kubelet's image garbage collection over the store (docs/semantics.md kubelet §11)
 * — images not in use nor pinned, least recently used first, freed from the high threshold down
 * to the low one, none younger than the minimum age — then the blobs they leave behind. The
 * first-seen and last-used times persist under the kubelet root dir (`kimg ensure` updates them).
 */
import { readFile, statfs } from 'node:fs/promises';
import type { Command } from 'commander';
import { KimgError } from '../../errors/index.ts';
import {
  FsPullRecords,
  ImageGarbageCollector,
  ImagePullManager,
  StoreImageService,
  applyDefaultImageTag,
  humanDuration,
  systemClock,
  type GcRoundResult,
  type KubeletEvent,
} from '../../kubelet/index.ts';
import { formatBytes } from '../format.ts';
import type { Io } from '../io.ts';
import type { Store } from '../../store/index.ts';
import {
  defaultKubeletRootDir,
  kubeletConfigFrom,
  readGcState,
  writeGcState,
  type KubeletFlags,
} from './ensure-node.ts';
import { requirePath } from '../registry-options.ts';
import { collectManifests } from './ensure-workloads.ts';

export interface ThresholdGcFlags extends KubeletFlags {
  readonly dryRun?: boolean;
  readonly capacity?: string;
  readonly available?: string;
  readonly inUse?: string[];
  readonly pinnedImage?: string[];
  readonly filename?: string[];
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds the threshold mode's flags to `kimg gc` (the kubelet's flag names). */
export function addThresholdGcFlags(command: Command): Command {
  return command
    .option(
      '--thresholds',
      "first remove images as the kubelet's image GC would (thresholds, minimum age, least recently used first)",
    )
    .option('--image-gc-high-threshold <percent>', 'disk usage at which image GC runs (kubelet default 85)')
    .option('--image-gc-low-threshold <percent>', 'disk usage image GC frees down to (kubelet default 80)')
    .option(
      '--minimum-image-gc-age <duration>',
      'never remove an image first seen less than this long ago (kubelet default 2m)',
    )
    .option('--maximum-image-gc-age <duration>', 'remove images unused for longer than this (kubelet default 0: off)')
    .option('--config <file>', 'KubeletConfiguration file with the image GC settings')
    .option('--root-dir <dir>', 'kubelet root directory with the image GC state and pull records (as for kimg ensure)')
    .option('--in-use <image>', 'an image a container uses: never removed (repeatable)', collect)
    .option('-f, --filename <file>', 'manifests whose images are in use (repeatable)', collect)
    .option('--pinned-image <image>', 'a pinned image (e.g. the sandbox image): never removed (repeatable)', collect)
    .option('--capacity <bytes>', 'image filesystem capacity to assume instead of the real one (with --available)')
    .option('--available <bytes>', 'available bytes to assume instead of the real ones (with --capacity)');
}

function bytesFlag(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kKMGT]i?)?B?$/.exec(value.trim());
  if (match === null)
    throw new KimgError('ErrInvalidFlag', `${flag}: ${JSON.stringify(value)} is not a size (e.g. 10G, 500Mi, 1048576)`);
  const unit = match[2] ?? '';
  const scale: Record<string, number> = {
    '': 1,
    k: 1e3,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    ki: 2 ** 10,
  };
  return Math.trunc(Number(match[1]) * (scale[unit] ?? 1));
}

export async function runThresholdGc(
  flags: ThresholdGcFlags,
  io: Io,
  store: Store,
): Promise<{ result: GcRoundResult; lines: string[] }> {
  const config = await kubeletConfigFrom(flags);
  const rootDir = flags.rootDir ?? defaultKubeletRootDir(io.env);
  const clock = systemClock;
  const service = new StoreImageService({
    store,
    ...(flags.pinnedImage !== undefined && { pinned: flags.pinnedImage }),
  });
  const events: KubeletEvent[] = [];
  const gc = new ImageGarbageCollector({
    imageService: service,
    policy: {
      highThresholdPercent: config.imageGCHighThresholdPercent,
      lowThresholdPercent: config.imageGCLowThresholdPercent,
      minAgeMs: config.imageMinimumGCAgeMs,
      maxAgeMs: config.imageMaximumGCAgeMs,
    },
    clock,
    recorder: (e) => events.push(e),
    ...(await readGcState(rootDir).then((state) => (state === undefined ? {} : { state }))),
  });

  const inUseNames = [...(flags.inUse ?? [])];
  if (flags.filename !== undefined) {
    for (const file of flags.filename) await requirePath('-f', file, 'file');
    const files = await Promise.all(flags.filename.map(async (file) => ({ file, text: await readFile(file, 'utf8') })));
    for (const pod of collectManifests(files, 'default').pods)
      for (const c of [...pod.initContainers, ...pod.containers]) inUseNames.push(c.image);
  }
  const inUse = new Set<string>();
  for (const name of inUseNames) {
    const tagged = applyDefaultImageTag(name);
    if (!tagged.ok) continue;
    const ref = await service.getImageRef(tagged.image);
    if (ref !== '') inUse.add(ref);
  }

  if ((flags.capacity === undefined) !== (flags.available === undefined))
    throw new KimgError('ErrInvalidFlag', '--capacity and --available go together');
  const fsStats = async () => {
    if (flags.capacity !== undefined && flags.available !== undefined)
      return {
        capacity: bytesFlag('--capacity', flags.capacity),
        available: bytesFlag('--available', flags.available),
      };
    const stats = await statfs(store.root);
    return { capacity: stats.blocks * stats.bsize, available: stats.bavail * stats.bsize };
  };

  const began = clock.now();
  const result = await gc.garbageCollect({ inUse, fsStats, dryRun: flags.dryRun === true });
  if (flags.dryRun !== true) {
    await writeGcState(rootDir, gc.exportState());
    const pullManager = new ImagePullManager({
      records: new FsPullRecords(rootDir),
      policy: config.imagePullCredentialsVerificationPolicy,
      clock,
    });
    await pullManager.pruneOrphanedRecords(new Set((await service.listImages()).map((i) => i.id)), began);
  }

  const lines: string[] = [];
  const verb = flags.dryRun === true ? 'would free' : 'free';
  lines.push(
    `Image filesystem: ${formatBytes(result.capacity - result.available)} of ${formatBytes(result.capacity)} used (${result.usagePercent}%); thresholds: high ${config.imageGCHighThresholdPercent}%, low ${config.imageGCLowThresholdPercent}%` +
      (result.amountToFree > 0 ? `; ${verb} ${formatBytes(result.amountToFree)}` : ''),
  );
  const now = clock.now();
  for (const d of result.decisions) {
    const used = d.lastUsed === 0 ? 'never used' : `last used ${humanDuration(now - d.lastUsed)} ago`;
    const action = d.action === 'remove' ? (flags.dryRun === true ? 'WOULD REMOVE' : 'REMOVED') : 'KEEP';
    lines.push(
      `${action.padEnd(12)} ${d.reason.padEnd(20)} ${d.id.slice(0, 19)}  ${formatBytes(d.size).padStart(8)}  ${used}, first seen ${humanDuration(now - d.firstDetected)} ago  ${d.repoTags.join(', ')}`,
    );
  }
  for (const e of events) lines.push(`${e.type} ${e.reason}: ${e.message}`);
  return { result, lines };
}
