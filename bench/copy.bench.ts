// Copy and push figures next to skopeo in the same run, each tool in a process of its own (the
// built kimg CLI, as users run it): over TLS with verified certificates first, then plain HTTP.
// Rounds alternate the tools, each into an empty registry (skopeo's blob-info cache would
// otherwise mount what an earlier round uploaded, and kimg would find it with HEAD). Then: the
// same copy within one registry (mounts), copying again when the destination has it (requests
// counted by a pass-through proxy), and the peak resident memory of the CLI copying one 2 GiB
// layer registry to registry. KIMG_BENCH_ROUNDS sets the rounds (default 3).
import { join } from 'node:path';
import {
  buildImage,
  makeTempDir,
  pushImage,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
} from '../test/harness/index.ts';
import { CLI, GiB, buildCli, fmtRatio, fmtRate, median, mbps, runChild, table, type ChildRun } from './measure.ts';

const ROUNDS = Math.max(1, Number(process.env.KIMG_BENCH_ROUNDS ?? '3') || 3);

/** One transport's view of a registry: kimg and skopeo flags that trust it. */
function trust(registries: readonly RunningRegistry[]) {
  const tls = registries.every((r) => r.scheme === 'https');
  return {
    label: tls ? 'TLS, verified' : 'plain HTTP',
    kimg: tls ? ['--tls-verify-loopback', ...registries.flatMap((r) => ['--ca-file', r.caFile as string])] : [],
    skopeo: (side: 'src' | 'dest', r: RunningRegistry) =>
      tls ? [`--${side}-tls-verify=true`, `--${side}-cert-dir`, r.certDir as string] : [`--${side}-tls-verify=false`],
  };
}

interface Pair {
  kimg: ChildRun[];
  skopeo: ChildRun[];
}

/** Rounds of kimg and skopeo alternating, each into a fresh registry. */
async function alternate(
  tls: boolean,
  kimg: (dest: RunningRegistry) => Promise<ChildRun>,
  skopeo: (dest: RunningRegistry) => Promise<ChildRun>,
): Promise<Pair> {
  const pair: Pair = { kimg: [], skopeo: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // Who goes first alternates too: the page cache and the machine's load favour neither.
    const order = round % 2 === 0 ? (['skopeo', 'kimg'] as const) : (['kimg', 'skopeo'] as const);
    for (const tool of order) {
      const dest = await startRegistry({ tls });
      try {
        pair[tool].push(await (tool === 'kimg' ? kimg(dest) : skopeo(dest)));
      } finally {
        await dest.stop();
      }
    }
  }
  return pair;
}

function rows(what: string, peer: string, bytes: number, pair: Pair): string[][] {
  const rate = (runs: ChildRun[]) => runs.map((r) => mbps(bytes, r.ms));
  const cpu = (runs: ChildRun[]) => (median(runs.map((r) => r.cpu)) / (bytes / GiB)).toFixed(2);
  const range = (runs: ChildRun[]) => {
    const r = rate(runs);
    return `${Math.min(...r).toFixed(0)}–${Math.max(...r).toFixed(0)}`;
  };
  const ratios = pair.kimg.map((k, i) => (pair.skopeo[i]?.ms ?? NaN) / k.ms);
  return [
    [what, range(pair.kimg), cpu(pair.kimg), fmtRatio(median(ratios)), fmtRatio(Math.max(...ratios))],
    [peer, range(pair.skopeo), cpu(pair.skopeo), '1.00×', ''],
  ];
}

export async function runCopyBench(): Promise<void> {
  buildCli();
  const tmp = await makeTempDir('kimg-copy-bench-');
  let image: BuiltImage | undefined;
  try {
    image = await buildImage({ layers: Array.from({ length: 8 }, () => GiB / 8), seed: 'copy-bench', gzipLevel: 0 });
    const bytes = image.images[0]?.layers.reduce((n, l) => n + l.size, 0) ?? GiB;
    for (const tls of [true, false]) await transportRounds(tls, image, bytes, tmp.path);
    await image.remove();
    image = undefined;
    await memory();
  } finally {
    await image?.remove();
    await tmp.remove();
  }
}

async function transportRounds(tls: boolean, image: BuiltImage, bytes: number, tmp: string): Promise<void> {
  const source = await startRegistry({ tls });
  const store = join(tmp, tls ? 'store-tls' : 'store-plain');
  try {
    const src = await pushImage(image, source, 'bench/src:v1');
    const t = trust([source]);
    console.log(
      `\n## copy and push, ${t.label}: 1 GiB in 8 layers, ${ROUNDS} rounds, each tool into an empty registry`,
    );
    const copy = await alternate(
      tls,
      (dest) =>
        runChild(process.execPath, [
          CLI,
          'copy',
          '-q',
          ...trust([source, dest]).kimg,
          `docker://${src.ref}`,
          `docker://${dest.host}/kimg/app:v1`,
        ]),
      (dest) =>
        runChild('skopeo', [
          '--insecure-policy',
          'copy',
          '--quiet',
          ...t.skopeo('src', source),
          ...trust([dest]).skopeo('dest', dest),
          `docker://${src.ref}`,
          `docker://${dest.host}/skopeo/app:v1`,
        ]),
    );

    // The stored image: what `kimg push` sends and skopeo reads as an OCI layout.
    await runChild(process.execPath, [CLI, 'pull', '-q', ...t.kimg, src.ref], { KIMG_STORE: store });
    const push = await alternate(
      tls,
      (dest) =>
        runChild(process.execPath, [CLI, 'push', '-q', ...trust([dest]).kimg, src.ref, `${dest.host}/kimg/app:v1`], {
          KIMG_STORE: store,
        }),
      (dest) =>
        runChild('skopeo', [
          '--insecure-policy',
          'copy',
          '--quiet',
          ...trust([dest]).skopeo('dest', dest),
          `oci:${store}:${src.ref}`,
          `docker://${dest.host}/skopeo/app:v1`,
        ]),
    );
    table(
      [`${t.label}, 1 GiB / 8 layers`, 'MB/s (min–max)', 'CPU s/GiB (median)', 'vs skopeo (median)', 'best'],
      [
        ...rows('kimg copy docker:// → docker://', 'skopeo copy docker:// → docker://', bytes, copy),
        ...rows('kimg push (from the store)', 'skopeo copy oci:STORE → docker://', bytes, push),
      ],
    );

    // Within one registry: every blob mounted from the source repository.
    const mount = await runChild(process.execPath, [
      CLI,
      'copy',
      '-o',
      'json',
      ...t.kimg,
      `docker://${src.ref}`,
      `docker://${source.host}/mounted/app:v1`,
    ]);
    const mounted = JSON.parse(mount.stdout) as { mounted: number; pushed: number; ms: number };
    console.log(
      `copy within one registry: ${mounted.mounted} mounted, ${mounted.pushed} pushed, ${(mounted.ms / 1000).toFixed(2)} s in the copy (${(mount.ms / 1000).toFixed(2)} s with the CLI's start; target < 1 s)`,
    );

    // Copying again when the destination has it, through a proxy that counts what arrives.
    const proxy = await startFaultProxy({ upstream: source.url, ...(tls && { ca: source.caPem }) });
    try {
      const again = await runChild(process.execPath, [
        CLI,
        'copy',
        '-o',
        'json',
        ...t.kimg,
        '--insecure-registry',
        proxy.host,
        `docker://${src.ref}`,
        `docker://${proxy.host}/mounted/app:v1`,
      ]);
      const result = JSON.parse(again.stdout) as { upToDate: boolean };
      const methods = proxy.requests.map((r) => r.method);
      const uploads = proxy.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length;
      const ok = result.upToDate && proxy.requests.length === 1 && uploads === 0;
      console.log(
        `copy again, destination up to date: ${proxy.requests.length} request(s) to the destination (${methods.join(', ')}), ${uploads} uploads or PUTs, up to date: ${result.upToDate} (target: 1 manifest request, none: ${ok ? 'met' : 'NOT met'})`,
      );
    } finally {
      await proxy.stop();
    }
  } finally {
    await source.stop();
  }
}

/** Peak RSS of the CLI copying one 2 GiB layer registry to registry, over TLS. */
async function memory(): Promise<void> {
  const image = await buildImage({ layers: [2 * GiB], seed: 'copy-rss', gzipLevel: 0 });
  const [source, dest] = await Promise.all([startRegistry({ tls: true }), startRegistry({ tls: true })]);
  try {
    const src = await pushImage(image, source, 'bench/huge:v1');
    await image.remove();
    const run = await runChild(process.execPath, [
      CLI,
      'copy',
      '-q',
      ...trust([source, dest]).kimg,
      `docker://${src.ref}`,
      `docker://${dest.host}/huge/app:v1`,
    ]);
    const idle = await runChild(process.execPath, [CLI, '--version']);
    console.log(`\n## peak memory, TLS, verified: one 2 GiB layer registry → registry (built CLI)`);
    table(
      ['peak RSS, VmHWM (MB)', 'CLI at rest, --version (MB)', 'MB/s', 'target'],
      [
        [
          (run.peakRss / 1e6).toFixed(0),
          (idle.peakRss / 1e6).toFixed(0),
          fmtRate(2 * GiB, run.ms),
          run.peakRss < 150e6 ? '< 150 MB: met' : '< 150 MB: NOT met',
        ],
      ],
    );
  } finally {
    await Promise.all([source.stop(), dest.stop(), image.remove().catch(() => undefined)]);
  }
}
