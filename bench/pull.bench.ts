// Pull speed and cost: kimg's Puller against skopeo and containerd on a local Distribution
// registry (loopback, no proxy), measured in the same run, alternating the tools, each run into a
// fresh store with fsync on. Registries serve HTTPS, so the first tables are over TLS with a
// verified certificate (every tool trusts the registry's CA); the same storage is also served over
// plain HTTP by a second registry process for the second table.
//   1. 1 GiB (8 × 128 MiB) and 200 MiB (4 × 50 MiB) images: kimg, skopeo, `ctr content fetch`, and
//      curl fetching every layer in parallel to /dev/null (the ceiling of this registry); TLS,
//      then plain HTTP
//   2. 200 layers of 64 KiB: kimg and skopeo, over TLS
//   3. re-pull of a stored image: HTTP requests seen by a counting proxy (tag and digest)
//   4. peak resident memory of the built CLI pulling a 2 GiB single-layer image, over TLS
//   5. where the time goes: sha256, disk, store ingest, raw HTTP, registry client, full pull
// Figures vary by ±40 % between runs on a shared machine: compare the ratios, measured here in
// the same run. KIMG_BENCH_QUICK=1 runs 1/8 of the sizes as a smoke test; KIMG_BENCH_PULL_PARTS
// (a comma list of peers, repull, memory, breakdown) runs only those parts.
// Run alone with `node --import tsx bench/pull.bench.ts`, or through `npm run bench pull`.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { Puller, type PullEvent } from '../src/pull/index.ts';
import { RegistryClient, type BlobSink } from '../src/registry/index.ts';
import { openStore } from '../src/store/index.ts';
import {
  buildImage,
  ensureTools,
  onExit,
  pushImage,
  startFaultProxy,
  startRegistry,
  which,
  type BuiltImage,
  type RunningRegistry,
} from '../test/harness/index.ts';
import {
  CLI,
  GiB,
  MiB,
  best,
  buildCli,
  childrenCpuSeconds,
  cpuSecondsOf,
  fmtBytes,
  fmtRate,
  fmtRatio,
  fmtSeconds,
  inPool,
  mainThreadSeconds,
  mbps,
  median,
  ownCpuSeconds,
  runChild,
  table,
  timed,
} from './measure.ts';
import { Containerd, skopeoPull } from './pull-peers.ts';

const QUICK = process.env.KIMG_BENCH_QUICK === '1';
const PARTS = new Set((process.env.KIMG_BENCH_PULL_PARTS ?? 'peers,repull,memory,breakdown').split(','));
const SCALE = QUICK ? 1 / 8 : 1;
const ROUNDS = 3;
const TAG = 'v1';
/** kimg's default; the figures below are for it unless a row says otherwise. */
const CONCURRENCY = 3;

interface ImagePlan {
  readonly key: string;
  readonly title: string;
  readonly layers: readonly number[];
}

const PLANS = {
  big: {
    key: 'big',
    title: `${fmtBytes(1 * GiB * SCALE)} (8 × ${fmtBytes(128 * MiB * SCALE)})`,
    layers: Array<number>(8).fill(128 * MiB * SCALE),
  },
  mid: {
    key: 'mid',
    title: `${fmtBytes(200 * MiB * SCALE)} (4 × ${fmtBytes(50 * MiB * SCALE)})`,
    layers: Array<number>(4).fill(50 * MiB * SCALE),
  },
  many: { key: 'many', title: `${200 * SCALE} layers × 64 KiB`, layers: Array<number>(200 * SCALE).fill(64 * 1024) },
  huge: { key: 'huge', title: `${fmtBytes(2 * GiB * SCALE)}, one layer`, layers: [2 * GiB * SCALE] },
} as const satisfies Record<string, ImagePlan>;

interface PushedBench {
  readonly plan: ImagePlan;
  readonly built: BuiltImage;
  /** `HOST/bench/KEY:v1` on the registry. */
  readonly ref: string;
  readonly repo: string;
  /** Layer blobs, what the transfer is made of. */
  readonly layers: readonly { mediaType: string; digest: string; size: number }[];
  /** Bytes of every blob and manifest a pull downloads. */
  readonly bytes: number;
}

interface Sample {
  readonly ms: number;
  /** CPU seconds of the tool (kimg's process, skopeo, ctr + containerd). */
  readonly cpu: number;
  /** CPU seconds of the registry serving it. */
  readonly registryCpu: number;
  /** CPU seconds of this process's main thread (meaningful for in-process work). */
  readonly mainCpu: number;
}

interface Tool {
  readonly name: string;
  /** Downloads `image` into `dir` (which does not exist yet). */
  run(image: PushedBench, dir: string): Promise<void>;
  cpu(): number;
  /** Undoes what `run` kept outside `dir`. */
  clean?(): Promise<void>;
}

/** One way of reaching the bench's images. */
interface Transport {
  readonly label: 'TLS' | 'plain HTTP';
  readonly registry: RunningRegistry;
  /** (TLS) The registry's CA: a PEM for kimg, a file for ctr and curl, a dir for skopeo. */
  readonly caPem?: string;
  readonly caFile?: string;
  readonly certDir?: string;
}

let work = '';
/** The registry the images are pushed to, serving TLS. */
let registry: RunningRegistry | undefined;
/** A second registry process serving the same storage over plain HTTP. */
let plainRegistry: RunningRegistry | undefined;
/** Where the tools pull from in the current part. */
let current: Transport | undefined;

function tlsTransport(reg: RunningRegistry): Transport {
  return { label: 'TLS', registry: reg, caPem: reg.caPem, caFile: reg.caFile, certDir: reg.certDir };
}

/** `HOST/REPO:TAG` of an image on the current transport's registry. */
function refOn(image: PushedBench): string {
  if (current === undefined) throw new Error('no transport');
  return `${current.registry.host}/${image.repo}:${TAG}`;
}
let runCounter = 0;
const freshDir = (what: string): string => join(work, 'runs', `${what}-${++runCounter}`);

async function kimgPull(
  ref: string,
  store: string,
  onEvent?: (event: PullEvent) => void,
  concurrency = CONCURRENCY,
): Promise<void> {
  const caPem = current?.caPem;
  const puller = new Puller({ store, concurrency, ...(caPem !== undefined && { caPems: [caPem] }) });
  try {
    await puller.pull(ref, onEvent === undefined ? {} : { onEvent });
  } finally {
    await puller.close();
  }
}

const kimgTool: Tool = {
  name: 'kimg',
  run: (image, dir) => kimgPull(refOn(image), dir),
  cpu: ownCpuSeconds,
};

const skopeoTool: Tool = {
  name: 'skopeo',
  run: (image, dir) => skopeoPull(refOn(image), dir, TAG, current?.certDir),
  cpu: childrenCpuSeconds,
};

function ctrTool(daemon: Containerd): Tool {
  return {
    name: 'ctr',
    run: (image) => daemon.fetch(refOn(image), current?.caFile === undefined ? {} : { caFile: current.caFile }),
    cpu: () => cpuSecondsOf(daemon.pid) + childrenCpuSeconds(),
    clean: () => daemon.clean(),
  };
}

/** curl downloading every layer at once to /dev/null: what this registry can serve at most. */
const curlTool: Tool = {
  name: 'curl ceiling',
  run: (image) => {
    if (current === undefined) throw new Error('no transport');
    const base = `${current.registry.url}/v2/${image.repo}/blobs/`;
    const args = ['-sS', '-f', '-Z', '--parallel-max', String(image.layers.length)];
    if (current.caFile !== undefined) args.push('--cacert', current.caFile);
    for (const layer of image.layers) args.push('-o', '/dev/null', `${base}${layer.digest}`);
    return new Promise<void>((resolve, reject) => {
      const child = spawn('curl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited with ${code}: ${err}`))));
    });
  },
  cpu: childrenCpuSeconds,
};

/** Builds (once, into the run's temp dir) and pushes an image; the layout stays for part 5. */
async function prepare(plan: ImagePlan): Promise<PushedBench> {
  if (registry === undefined) throw new Error('no registry');
  const built = await buildImage({
    layers: plan.layers,
    seed: `bench-${plan.key}`,
    tag: TAG,
    layout: join(work, 'layouts', plan.key),
  });
  const repo = `bench/${plan.key}`;
  const pushed = await pushImage(built, registry, `${repo}:${TAG}`);
  if (pushed.digest !== built.digest) throw new Error(`${repo}: pushed ${pushed.digest}, built ${built.digest}`);
  const image = built.images[0];
  if (image === undefined) throw new Error(`${repo}: no image built`);
  const bytes = image.layers.reduce((sum, l) => sum + l.size, image.config.size + image.manifest.size);
  return { plan, built, ref: pushed.ref, repo, layers: image.layers, bytes };
}

/** Waits for the page cache's dirty data (the last run's store, its deletion) to reach the disk,
 * so that no run pays for the writeback of the one before it. */
function settleDisk(): void {
  execFileSync('sync');
}

/** Each tool `rounds` times, alternating (the order rotates every round). */
async function compare(image: PushedBench, tools: readonly Tool[], rounds: number): Promise<Map<string, Sample[]>> {
  const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  const registryPid = current?.registry.pid ?? -1;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < tools.length; i++) {
      const tool = tools[(round + i) % tools.length] as Tool;
      const dir = freshDir(tool.name);
      const registryCpu0 = cpuSecondsOf(registryPid);
      const main0 = mainThreadSeconds();
      const { ms, cpu } = await timed(
        () => tool.run(image, dir),
        () => tool.cpu(),
      );
      samples.get(tool.name)?.push({
        ms,
        cpu,
        registryCpu: cpuSecondsOf(registryPid) - registryCpu0,
        mainCpu: mainThreadSeconds() - main0,
      });
      await rm(dir, { recursive: true, force: true });
      await tool.clean?.();
      settleDisk();
    }
  }
  return samples;
}

function printComparison(image: PushedBench, samples: Map<string, Sample[]>): void {
  const kimg = samples.get('kimg') ?? [];
  const rows: string[][] = [];
  for (const [name, list] of samples) {
    const times = list.map((s) => s.ms);
    // Same-round pairs ran back to back, so load from elsewhere on the machine hits both alike.
    const paired = name === 'kimg' ? [] : list.map((s, i) => s.ms / (kimg[i]?.ms ?? NaN));
    rows.push([
      name,
      times.map((ms) => fmtRate(image.bytes, ms)).join(' '),
      fmtRate(image.bytes, best(times)),
      fmtRate(image.bytes, median(times)),
      name === 'kimg' ? '' : fmtRatio(best(times) / best(kimg.map((s) => s.ms))),
      name === 'kimg' ? '' : fmtRatio(median(times) / median(kimg.map((s) => s.ms))),
      name === 'kimg' ? '' : fmtRatio(median(paired)),
      perGiB(median(list.map((s) => s.cpu))),
      name === 'kimg' ? perGiB(median(list.map((s) => s.mainCpu))) : '',
      perGiB(median(list.map((s) => s.registryCpu))),
    ]);
  }
  console.log(
    `\n${image.plan.title} over ${current?.label}: ${fmtBytes(image.bytes)} from ${refOn(image)}; MB/s = 10^6 bytes/s`,
  );
  table(
    [
      'tool',
      'MB/s per run',
      'best',
      'median',
      'kimg ÷ tool (best)',
      '(median)',
      '(same-round pairs)',
      'CPU s/GiB',
      'main thread s/GiB',
      'registry CPU s/GiB',
    ],
    rows,
  );

  function perGiB(seconds: number): string {
    return (seconds / (image.bytes / GiB)).toFixed(2);
  }
}

function ratioOf(samples: Map<string, Sample[]>, peer: string): { best: number; median: number; paired: number } {
  const kimg = (samples.get('kimg') ?? []).map((s) => s.ms);
  const other = (samples.get(peer) ?? []).map((s) => s.ms);
  return {
    best: best(other) / best(kimg),
    median: median(other) / median(kimg),
    paired: median(other.map((ms, i) => ms / (kimg[i] ?? NaN))),
  };
}

function verdict(label: string, ratio: { best: number; median: number; paired: number }, target: number): void {
  const met = ratio.median >= target ? 'met' : ratio.best >= target ? 'met at best, not at median' : 'NOT met';
  console.log(
    `${label}: ${fmtRatio(ratio.best)} best, ${fmtRatio(ratio.median)} median, ${fmtRatio(ratio.paired)} same-round (target ≥ ${target}×): ${met}`,
  );
}

// ---------------------------------------------------------------- 1 and 2: against the peers

async function partPeers(
  big: PushedBench,
  mid: PushedBench,
  many: PushedBench,
  transports: readonly Transport[],
): Promise<void> {
  console.log('\n## 1. Pull into a layout (fresh store each run, fsync on), against skopeo and containerd');
  let daemon: Containerd | undefined;
  try {
    try {
      daemon = await Containerd.start(join(work, 'containerd'));
    } catch (err) {
      console.log(`containerd skipped: ${(err as Error).message}`);
    }
    const tools = [kimgTool, skopeoTool, ...(daemon ? [ctrTool(daemon)] : []), ...(which('curl') ? [curlTool] : [])];
    for (const transport of transports) {
      current = transport;
      // kimg runs in this process: one untimed pull compiles its code first, as in a long-lived
      // process (skopeo and ctr are compiled programs).
      const warmUp = freshDir('warm-up');
      await kimgPull(refOn(mid), warmUp);
      await rm(warmUp, { recursive: true, force: true });
      settleDisk();
      console.log(
        `\n### Over ${transport.label}${transport.caPem === undefined ? '' : ' (certificate verified against the registry’s CA by every tool)'}` +
          `\n(${ROUNDS} rounds, tools alternating; kimg warmed up by one untimed pull of the ${mid.plan.title} image;` +
          ' the curl ceiling downloads the layers only, all at once, to /dev/null)',
      );
      const bigSamples = await compare(big, tools, ROUNDS);
      printComparison(big, bigSamples);
      const midSamples = await compare(mid, tools, ROUNDS);
      printComparison(mid, midSamples);
      console.log('');
      const tls = transport.label === 'TLS';
      const over = `${big.plan.title}, ${transport.label}`;
      verdict(`kimg ÷ skopeo, ${over}`, ratioOf(bigSamples, 'skopeo'), tls ? 1.3 : 1.5);
      if (daemon) verdict(`kimg ÷ ctr content fetch, ${over}`, ratioOf(bigSamples, 'ctr'), 2.5);
      if (bigSamples.has(curlTool.name)) {
        verdict(`kimg ÷ the curl ceiling, ${over}`, ratioOf(bigSamples, curlTool.name), tls ? 0.8 : 0);
      }
    }
  } finally {
    await daemon?.stop();
  }

  current = transports[0];
  console.log(`\n## 2. Many small layers: ${many.plan.title}, over ${current?.label}`);
  // As in part 1: one untimed pull first, so that kimg's small-blob path is compiled, as in a
  // long-lived process.
  const warmUp = freshDir('warm-up');
  await kimgPull(refOn(many), warmUp);
  await rm(warmUp, { recursive: true, force: true });
  settleDisk();
  const manySamples = await compare(many, [kimgTool, skopeoTool], 3);
  const rows = [...manySamples].map(([name, list]) => {
    const times = list.map((s) => s.ms);
    return [
      name,
      times.map(fmtSeconds).join(' '),
      fmtSeconds(best(times)),
      fmtSeconds(median(times)),
      median(list.map((s) => s.cpu)).toFixed(2),
    ];
  });
  table(['tool', 's per run', 'best s', 'median s', 'CPU s'], rows);
  const kimgMedian = median((manySamples.get('kimg') ?? []).map((s) => s.ms));
  const skopeoRatio = ratioOf(manySamples, 'skopeo').median;
  console.log(
    `kimg ${fmtSeconds(kimgMedian)} s median (target < 3 s${QUICK ? ' for 200 layers' : ''}); skopeo ÷ kimg ${fmtRatio(skopeoRatio)} (target ≥ 1×: ${skopeoRatio >= 1 ? 'met' : 'NOT met'})`,
  );
}

// ---------------------------------------------------------------- 3: requests of a re-pull

async function partRepull(many: PushedBench): Promise<void> {
  if (plainRegistry === undefined) return;
  current = { label: 'plain HTTP', registry: plainRegistry };
  console.log(
    `\n## 3. Re-pull of a stored image (${many.plan.title}), HTTP requests counted by a proxy in front` +
      ' (plain HTTP, so that the proxy reads them; TLS sends the same requests)',
  );
  const proxy = await startFaultProxy({ upstream: plainRegistry.url });
  try {
    const store = freshDir('repull');
    const byTag = `${proxy.host}/${many.repo}:${TAG}`;
    const byDigest = `${proxy.host}/${many.repo}@${many.built.digest}`;
    await kimgPull(byTag, store);
    const first = proxy.requests.length;
    const count = async (ref: string): Promise<string[]> => {
      proxy.reset();
      await kimgPull(ref, store); // a new Puller each time, as a new `kimg pull` process would be
      return proxy.requests.map((r) => `${r.method} ${r.path}`);
    };
    const tag = await count(byTag);
    const digest = await count(byDigest);
    const blobs = (list: string[]) => list.filter((r) => r.includes('/blobs/')).length;
    table(
      ['pull', 'requests', 'blob requests', 'target', 'what was sent'],
      [
        ['first pull, by tag', String(first), '', '', `${many.layers.length + 1} blobs + manifest`],
        [
          'again, by tag',
          String(tag.length),
          String(blobs(tag)),
          tag.length === 1 && blobs(tag) === 0 ? '1: met' : '1: NOT met',
          tag.join(', ') || '-',
        ],
        [
          'again, by digest',
          String(digest.length),
          String(blobs(digest)),
          digest.length === 0 ? '0: met' : '0: NOT met',
          digest.join(', ') || '-',
        ],
      ],
    );
    await rm(store, { recursive: true, force: true });
  } finally {
    await proxy.stop();
  }
}

// ---------------------------------------------------------------- 4: peak memory

async function partMemory(huge: PushedBench): Promise<void> {
  current = registry === undefined ? undefined : tlsTransport(registry);
  console.log(
    `\n## 4. Peak resident memory of the built CLI (\`bin/kimg.js pull\`) pulling ${huge.plan.title} (${fmtBytes(huge.bytes)}), over ${current?.label}`,
  );
  buildCli();
  const trust = current?.caFile === undefined ? [] : ['--tls-verify-loopback', '--ca-file', current.caFile];
  const rows: string[][] = [];
  for (let round = 0; round < 3; round++) {
    const store = freshDir('rss');
    const run = await runChild(process.execPath, [CLI, 'pull', '-q', ...trust, refOn(huge)], { KIMG_STORE: store });
    await rm(store, { recursive: true, force: true });
    settleDisk();
    rows.push([
      String(round + 1),
      (run.peakRss / 1e6).toFixed(0),
      fmtRate(huge.bytes, run.ms),
      run.peakRss < 150e6 ? '< 150 MB: met' : '< 150 MB: NOT met',
    ]);
  }
  const idle = await runChild(process.execPath, [CLI, '--version']);
  table(['run', 'peak RSS, VmHWM (MB)', 'MB/s', 'target'], rows);
  console.log(`the CLI at rest (\`--version\`): ${(idle.peakRss / 1e6).toFixed(0)} MB`);
}

// ---------------------------------------------------------------- 5: where the time goes

interface Stage {
  readonly name: string;
  readonly run: () => Promise<void>;
  /** CPU seconds of whoever does the work. */
  readonly cpu: () => number;
  /** Work per run in bytes (default the image's layers). */
  readonly bytes?: number;
  /** Runs in this process (its main thread's time is shown). */
  readonly inProcess?: boolean;
  /** Extra details printed after the table. */
  readonly note?: () => string;
}

/** Wall time during which blobs were being committed (verify, fsync, rename) and none downloading. */
function commitOnlyMs(events: readonly { t: number; event: PullEvent }[]): number {
  const downloading = new Set<string>();
  const committing = new Set<string>();
  let last = 0;
  let total = 0;
  for (const { t, event } of events) {
    if (downloading.size === 0 && committing.size > 0) total += t - last;
    last = t;
    if (event.type === 'blob-progress') downloading.add(event.digest);
    else if (event.type === 'blob-verifying') {
      downloading.delete(event.digest);
      committing.add(event.digest);
    } else if (event.type === 'blob-done') committing.delete(event.digest);
  }
  return total;
}

async function partBreakdown(big: PushedBench): Promise<void> {
  if (plainRegistry === undefined) return;
  const reg = plainRegistry;
  current = { label: 'plain HTTP', registry: reg };
  const layers = big.layers;
  const layerBytes = layers.reduce((sum, l) => sum + l.size, 0);
  console.log(
    `\n## 5. Where the time goes: ${big.plan.title}, ${layers.length} layer blobs, ${CONCURRENCY} at a time unless said, plain HTTP`,
  );

  const blobUrl = (digest: string) => `${reg.url}/v2/${big.repo}/blobs/${digest}`;
  const contents = await Promise.all(layers.map((l) => readFile(big.built.blobPath(l.digest))));
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const client = new RegistryClient({ endpoints: () => [{ baseUrl: reg.url, insecure: true }] });
  const repo = { registry: reg.host, path: big.repo };
  await client.resolve(repo, TAG);
  const discardSink = (): BlobSink => {
    let held = 0;
    return {
      get offset() {
        return held;
      },
      write: async (chunk) => {
        held += chunk.byteLength;
      },
      reset: async () => {
        held = 0;
      },
    };
  };
  const undiciGet = async (digest: string): Promise<void> => {
    const res = await request(blobUrl(digest), { dispatcher: agent });
    if (res.statusCode !== 200) throw new Error(`GET ${digest}: ${res.statusCode}`);
    for await (const _chunk of res.body) {
      // discarded
    }
  };
  const curl = (url: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('curl', ['-sS', '-f', '-o', '/dev/null', url], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited with ${code}`))));
    });
  const first = layers[0];
  if (first === undefined) return;
  const chunk = randomFillSync(Buffer.alloc(64 * 1024));
  let pullEvents: { t: number; event: PullEvent }[] = [];
  const commitOnly: number[] = [];

  const stages: Stage[] = [
    {
      name: 'sha256 alone, 64 KiB updates, one core',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: async () => {
        const hash = createHash('sha256');
        for (let done = 0; done < layerBytes; done += chunk.length) hash.update(chunk);
        hash.digest();
      },
    },
    {
      name: 'disk alone: 1 MiB writes + fdatasync per file',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: async () => {
        const dir = freshDir('disk');
        await mkdir(dir, { recursive: true });
        const block = Buffer.alloc(MiB, 1);
        await inPool(layers, CONCURRENCY, async (l) => {
          const handle = await open(join(dir, l.digest.slice(7)), 'w');
          try {
            for (let at = 0; at < l.size; at += MiB) await handle.write(block, 0, Math.min(MiB, l.size - at), at);
            await handle.datasync();
          } finally {
            await handle.close();
          }
        });
        await rm(dir, { recursive: true, force: true });
      },
    },
    {
      name: 'store ingest alone: hash + write + fsync + rename, 64 KiB chunks from memory',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: async () => {
        const dir = freshDir('ingest');
        const store = await openStore(dir);
        await inPool(
          layers.map((l, i) => [l, contents[i] as Buffer] as const),
          CONCURRENCY,
          async ([layer, data]) => {
            const ingest = await store.openIngest(layer);
            for (let at = 0; at < data.length; at += 64 * 1024) await ingest.write(data.subarray(at, at + 64 * 1024));
            await ingest.commit();
          },
        );
        await rm(dir, { recursive: true, force: true });
      },
    },
    ...(which('curl')
      ? [
          {
            name: 'curl, one blob → /dev/null',
            bytes: first.size,
            cpu: childrenCpuSeconds,
            run: () => curl(blobUrl(first.digest)),
          },
          {
            name: 'curl, all blobs → /dev/null',
            cpu: childrenCpuSeconds,
            run: () => inPool(layers, CONCURRENCY, (l) => curl(blobUrl(l.digest))),
          },
        ]
      : []),
    {
      name: 'undici request, one blob → discard',
      bytes: first.size,
      cpu: ownCpuSeconds,
      inProcess: true,
      run: () => undiciGet(first.digest),
    },
    {
      name: 'undici request, all blobs → discard',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: () => inPool(layers, CONCURRENCY, (l) => undiciGet(l.digest)),
    },
    {
      name: 'RegistryClient.fetchBlob (verify: false) → discard',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: () =>
        inPool(layers, CONCURRENCY, async (l) => {
          await client.fetchBlob(repo, l, discardSink(), { verify: false });
        }),
    },
    {
      name: 'RegistryClient.fetchBlob (verify: true) → discard',
      cpu: ownCpuSeconds,
      inProcess: true,
      run: () =>
        inPool(layers, CONCURRENCY, async (l) => {
          await client.fetchBlob(repo, l, discardSink());
        }),
    },
    {
      name: 'full kimg pull (fresh store, fsync)',
      bytes: big.bytes,
      cpu: ownCpuSeconds,
      inProcess: true,
      run: async () => {
        const store = freshDir('pull');
        pullEvents = [];
        await kimgPull(refOn(big), store, (event) => pullEvents.push({ t: performance.now(), event }));
        commitOnly.push(commitOnlyMs(pullEvents));
        await rm(store, { recursive: true, force: true });
        settleDisk();
      },
      note: () =>
        `full pull: ${fmtSeconds(median(commitOnly))} s (median) of its wall time had blobs committing (hash check, fdatasync, rename) and none downloading`,
    },
    ...[2, 4, 8]
      .filter((c) => c !== CONCURRENCY)
      .map((concurrency): Stage => ({
        name: `full kimg pull, ${concurrency} blobs at a time`,
        bytes: big.bytes,
        cpu: ownCpuSeconds,
        inProcess: true,
        run: async () => {
          const store = freshDir('pull');
          await kimgPull(refOn(big), store, undefined, concurrency);
          await rm(store, { recursive: true, force: true });
          settleDisk();
        },
      })),
  ];

  const results = new Map<Stage, Sample[]>(stages.map((s) => [s, []]));
  try {
    for (let round = 0; round < 2; round++) {
      for (const stage of stages) {
        const registryCpu0 = cpuSecondsOf(reg.pid);
        const main0 = mainThreadSeconds();
        const { ms, cpu } = await timed(stage.run, stage.cpu);
        results
          .get(stage)
          ?.push({ ms, cpu, registryCpu: cpuSecondsOf(reg.pid) - registryCpu0, mainCpu: mainThreadSeconds() - main0 });
      }
    }
  } finally {
    await agent.close();
    await client.close();
  }
  const rows = stages.map((stage) => {
    const list = results.get(stage) ?? [];
    const bytes = stage.bytes ?? layerBytes;
    const fastest = list.reduce<Sample | undefined>((a, b) => (a === undefined || b.ms < a.ms ? b : a), undefined);
    if (fastest === undefined) return [stage.name];
    // Every figure scaled to the whole image, to line the stages up.
    const scale = layerBytes / bytes;
    return [
      stage.name,
      fmtRate(bytes, fastest.ms),
      fmtSeconds(fastest.ms * scale),
      (fastest.cpu * scale).toFixed(2),
      stage.inProcess ? (fastest.mainCpu * scale).toFixed(2) : '',
      (fastest.registryCpu * scale).toFixed(2),
    ];
  });
  console.log(
    '(each figure from the faster of 2 runs, scaled to the whole image; CPU s = all threads of whoever does the work)',
  );
  table(['stage', 'MB/s', `s per ${fmtBytes(layerBytes)}`, 'CPU s', 'main thread s', 'registry CPU s'], rows);
  for (const stage of stages) if (stage.note) console.log(stage.note());
  const sha = results.get(stages[0] as Stage) ?? [];
  console.log(
    `sha256 at ${(mbps(layerBytes, best(sha.map((s) => s.ms))) / 1e3).toFixed(2)} GB/s (target ≥ 1 GiB/s = 1.07 GB/s: never the bottleneck)`,
  );
}

// ---------------------------------------------------------------- the suite

export async function runPullBench(): Promise<void> {
  const started = performance.now();
  ensureTools(['docker-registry', 'skopeo']);
  work = await mkdtemp(join(tmpdir(), 'kimg-bench-pull-'));
  const forget = onExit(() => rmSync(work, { recursive: true, force: true }));
  try {
    registry = await startRegistry({ logLevel: 'error', tls: true });
    console.log(`registry ${registry.url} (pid ${registry.pid}); work dir ${work}${QUICK ? '; QUICK: sizes ÷ 8' : ''}`);
    const images: PushedBench[] = [];
    for (const plan of [PLANS.big, PLANS.mid, PLANS.many, ...(PARTS.has('memory') ? [PLANS.huge] : [])]) {
      const { ms } = await timed(async () => images.push(await prepare(plan)));
      console.log(`built and pushed ${plan.title} in ${fmtSeconds(ms)} s`);
    }
    const [big, mid, many, huge] = images as [PushedBench, PushedBench, PushedBench, PushedBench | undefined];
    plainRegistry = await startRegistry({
      logLevel: 'error',
      env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: registry.storageDir },
    });
    console.log(`the same storage over plain HTTP: ${plainRegistry.url} (pid ${plainRegistry.pid})`);
    settleDisk();
    if (PARTS.has('peers')) {
      await partPeers(big, mid, many, [tlsTransport(registry), { label: 'plain HTTP', registry: plainRegistry }]);
    }
    if (PARTS.has('repull')) await partRepull(many);
    if (huge !== undefined) await partMemory(huge);
    if (PARTS.has('breakdown')) await partBreakdown(big);
  } finally {
    await plainRegistry?.stop();
    plainRegistry = undefined;
    await registry?.stop();
    registry = undefined;
    await rm(work, { recursive: true, force: true });
    forget();
  }
  console.log(`\npull bench: ${fmtSeconds(performance.now() - started)} s in all`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runPullBench();
}
