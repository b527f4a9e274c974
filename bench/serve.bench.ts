// `kimg registry serve` against the Distribution registry (2.8), both as separate processes on
// loopback, measured in the same run, alternating:
//   1. skopeo copying a stored 1 GiB image (8 × 128 MiB) out of each, over plain HTTP and TLS
//      (Distribution serves the same image from its own storage; kimg from its store)
//   2. the first pull of an uncached image through kimg's pull-through vs directly from the
//      upstream Distribution registry, and through Distribution's proxy mode (skopeo as the
//      client, a new empty mirror each round)
//   3. manifest HEAD by tag from 200 concurrent keep-alive clients: latency percentiles
//   4. peak RSS of the server while 20 clients download 128 MiB blobs at once
// Part 3's clients run in a process of their own. KIMG_BENCH_QUICK=1 runs 1/8 of the sizes. Run
// alone with `node --import tsx bench/serve.bench.ts` or through `npm run bench serve`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { MANIFEST_ACCEPT } from '../src/oci/index.ts';
import { openStore } from '../src/store/index.ts';
import {
  buildImage,
  copyImage,
  ensureTools,
  makeServerCertificates,
  onExit,
  pushImage,
  run,
  startRegistry,
  stopChild,
  trackChild,
  type BuiltImage,
  type RunningRegistry,
} from '../test/harness/index.ts';
import { seedStore } from '../test/server/helpers.ts';
import {
  GiB,
  MiB,
  best,
  cpuSecondsOf,
  fmtBytes,
  fmtRate,
  fmtRatio,
  fmtSeconds,
  median,
  peakRss,
  table,
  timed,
} from './measure.ts';

const QUICK = process.env.KIMG_BENCH_QUICK === '1';
const SCALE = QUICK ? 1 / 8 : 1;
/** Rounds per comparison: the serving figures sit within a few per cent of each other, and two
 * rounds made the median a coin toss. */
const ROUNDS = 4;
/** Rounds of part 2: a first pull takes ≈ 2 s, and skopeo's own CPU per pull moves by ± 15 %
 * from one to the next on a 2-core machine. */
const MIRROR_ROUNDS = QUICK ? 2 : 6;
/** Part 3: each client's pause between requests, and how many each sends. */
const PACE_MS = 250;
const EACH = 40;
const WARM_UP_EACH = 4;
/** A pause after the disk is synced, for what the kernel still does after a part. */
const SETTLE_MS = 2000;
/** The argument that makes this file a HEAD storm's client process (see headStormInChild). */
const HEAD_STORM = '--head-storm';
/** As containerd sends it (Distribution answers 404 to a HEAD without it for an OCI manifest). */
const ACCEPT = { accept: MANIFEST_ACCEPT };
const BIN = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));

interface Served {
  readonly url: string;
  readonly host: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The command that runs kimg: the build (`dist/`, as installed) when it builds, else the sources under tsx. */
let kimgCommand: string[] = ['--import', 'tsx', BIN];

function useBuiltKimg(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  try {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')],
      { stdio: 'inherit' },
    );
    kimgCommand = [join(root, 'bin', 'kimg.js')];
    console.log('kimg runs from the build (dist/)');
  } catch {
    console.log('(the build failed: kimg runs the TypeScript sources under tsx)');
  }
}

/** `kimg registry serve` as a child process, as a node runs it; resolves with the URL it prints. */
async function kimgServe(args: readonly string[]): Promise<Served> {
  const child: ChildProcess = spawn(
    process.execPath,
    [...kimgCommand, 'registry', 'serve', '--listen', '127.0.0.1:0', '--no-access-log', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  trackChild(child);
  const url = await new Promise<string>((resolve, reject) => {
    if (child.stdout === null) throw new Error('no stdout');
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`kimg registry serve exited with ${code}`)));
  });
  return { url, host: new URL(url).host, pid: child.pid ?? -1, stop: () => stopChild(child, 5000) };
}

/** skopeo copy of `ref` into a fresh layout; wall milliseconds. */
async function skopeoCopy(ref: string, dir: string, certDir: string | undefined): Promise<number> {
  const { ms } = await timed(() =>
    copyImage(`docker://${ref}`, `oci:${dir}:x`, {
      src: certDir === undefined ? { tlsVerify: false } : { tlsVerify: true, certDir },
      timeoutMs: 600_000,
    }),
  );
  await rm(dir, { recursive: true, force: true });
  return ms;
}

function sizeOf(image: BuiltImage): number {
  const platform = image.images[0];
  if (platform === undefined) return 0;
  return platform.layers.reduce((sum, l) => sum + l.size, platform.config.size + platform.manifest.size);
}

function verdict(label: string, value: number, target: string, met: boolean): void {
  console.log(`${label}: ${value.toFixed(2)} (target ${target}): ${met ? 'met' : 'NOT met'}`);
}

export async function runServeBench(): Promise<void> {
  const started = performance.now();
  ensureTools(['docker-registry', 'skopeo']);
  useBuiltKimg();
  const work = await mkdtemp(join(tmpdir(), 'kimg-bench-serve-'));
  const forget = onExit(() => rmSync(work, { recursive: true, force: true }));
  const stops: (() => Promise<void>)[] = [];
  try {
    const big = await buildImage({
      layers: Array<number>(8).fill(128 * MiB * SCALE),
      seed: 'bench-serve-big',
      compression: 'none',
      layout: join(work, 'layouts', 'big'),
    });
    const mid = await buildImage({
      layers: Array<number>(4).fill(50 * MiB * SCALE),
      seed: 'bench-serve-mid',
      compression: 'none',
      layout: join(work, 'layouts', 'mid'),
    });
    // What a running mirror has already served before the measured image: layers large enough
    // to take the same path (the ingest's partial file, clients following it) as the 50 MiB ones.
    const warm = await buildImage({
      layers: [8 * MiB, 8 * MiB],
      seed: 'bench-serve-warm',
      compression: 'none',
      layout: join(work, 'layouts', 'warm'),
    });
    const tlsRegistry = await startRegistry({ logLevel: 'error', tls: true });
    stops.push(() => tlsRegistry.stop());
    const plainRegistry: RunningRegistry = await startRegistry({
      logLevel: 'error',
      env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: tlsRegistry.storageDir },
    });
    stops.push(() => plainRegistry.stop());
    await pushImage(big, tlsRegistry, 'bench/big:v1');
    await pushImage(mid, tlsRegistry, 'bench/mid:v1');
    await pushImage(warm, tlsRegistry, 'bench/warm:v1');
    const storeDir = join(work, 'store');
    const store = await openStore(storeDir);
    await seedStore(store, big, 'docker.io/bench/big:v1');
    const certs = await makeServerCertificates(join(work, 'certs'));
    const plain = await kimgServe(['--store', storeDir]);
    stops.push(() => plain.stop());
    const tls = await kimgServe(['--store', storeDir, '--tls-cert', certs.certFile, '--tls-key', certs.keyFile]);
    stops.push(() => tls.stop());
    const bigBytes = sizeOf(big);
    console.log(`kimg ${plain.url} and ${tls.url}; Distribution ${plainRegistry.url} and ${tlsRegistry.url}`);

    // 1. Serving a stored image to skopeo.
    console.log(
      `\n## 1. skopeo copy of ${fmtBytes(bigBytes)} (8 layers) from each server (${ROUNDS} rounds, alternating)`,
    );
    const ratios: Record<string, number> = {};
    for (const transport of ['plain HTTP', 'TLS'] as const) {
      const peers = [
        {
          name: 'kimg',
          host: transport === 'TLS' ? tls.host : plain.host,
          pid: transport === 'TLS' ? tls.pid : plain.pid,
          certDir: transport === 'TLS' ? certs.certDir : undefined,
        },
        {
          name: 'Distribution',
          host: transport === 'TLS' ? tlsRegistry.host : plainRegistry.host,
          pid: transport === 'TLS' ? tlsRegistry.pid : plainRegistry.pid,
          certDir: transport === 'TLS' ? tlsRegistry.certDir : undefined,
        },
      ];
      const samples = new Map<string, number[]>(peers.map((p) => [p.name, []]));
      /** The server's CPU seconds per GiB served, per run: steadier than wall time on a shared machine. */
      const cpu = new Map<string, number[]>(peers.map((p) => [p.name, []]));
      // One untimed copy from each first (kimg's server compiles its code on first use).
      for (const peer of peers) await skopeoCopy(`${peer.host}/bench/big:v1`, join(work, 'warm-up'), peer.certDir);
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < peers.length; i++) {
          const peer = peers[(round + i) % peers.length];
          if (peer === undefined) continue;
          const cpu0 = cpuSecondsOf(peer.pid);
          samples
            .get(peer.name)
            ?.push(await skopeoCopy(`${peer.host}/bench/big:v1`, join(work, `out-${peer.name}`), peer.certDir));
          cpu.get(peer.name)?.push((cpuSecondsOf(peer.pid) - cpu0) / (bigBytes / GiB));
        }
      }
      table(
        ['server', `MB/s per run (${transport})`, 'best', 'median', 'server CPU s/GiB (median)'],
        [...samples].map(([name, times]) => [
          name,
          times.map((ms) => fmtRate(bigBytes, ms)).join(' '),
          fmtRate(bigBytes, best(times)),
          fmtRate(bigBytes, median(times)),
          median(cpu.get(name) ?? []).toFixed(2),
        ]),
      );
      const ratio = median(samples.get('Distribution') ?? []) / median(samples.get('kimg') ?? []);
      ratios[transport] = ratio;
      verdict(`Distribution time ÷ kimg time, ${transport}`, ratio, '≥ 1.0', ratio >= 1);
    }

    // 2. First pull through the mirror vs direct, and through Distribution's own pull-through
    // (proxy mode), the tool that does this job today.
    const midBytes = sizeOf(mid);
    console.log(
      `\n## 2. First pull of ${fmtBytes(midBytes)} (4 layers) by skopeo: directly, through kimg --pull-through and through Distribution's proxy mode, each mirror new and empty (${MIRROR_ROUNDS} rounds, order rotated; plain HTTP)`,
    );
    /** A new, empty mirror of the upstream; its warm-up is pulled before the measured image. */
    const mirrors: Record<'kimg' | 'Distribution', (store: string) => Promise<Served>> = {
      kimg: (store) => kimgServe(['--store', store, '--pull-through', '--default-upstream', plainRegistry.host]),
      Distribution: async (store) => {
        const proxy = await startRegistry({
          logLevel: 'error',
          dir: store,
          proxy: { remoteUrl: plainRegistry.url },
        });
        return { url: proxy.url, host: proxy.host, pid: proxy.pid, stop: () => proxy.stop() };
      },
    };
    const pulls = { direct: [] as number[], kimg: [] as number[], Distribution: [] as number[] };
    const mirrorCpu = { kimg: [] as number[], Distribution: [] as number[] };
    const paths = ['direct', 'kimg', 'Distribution'] as const;
    for (let round = 0; round < MIRROR_ROUNDS; round++) {
      for (let i = 0; i < paths.length; i++) {
        const path = paths[(round + i) % paths.length] ?? 'direct';
        if (path === 'direct') {
          pulls.direct.push(
            await skopeoCopy(`${plainRegistry.host}/bench/mid:v1`, join(work, 'out-direct'), undefined),
          );
          continue;
        }
        const mirrorStore = join(work, `mirror-${path}-${round}`);
        const mirror = await mirrors[path](mirrorStore);
        try {
          // Untimed: another image through the new process first, so that the pull-through's code
          // is compiled, as in a mirror that has been running (a 100 KB image left the large-blob
          // path to be compiled during the measured pull: ≈ 10 % of the mirror's CPU in a profile).
          await skopeoCopy(`${mirror.host}/bench/warm:v1`, join(work, 'warm-up'), undefined);
          const cpu0 = cpuSecondsOf(mirror.pid);
          pulls[path].push(await skopeoCopy(`${mirror.host}/bench/mid:v1`, join(work, 'out-through'), undefined));
          mirrorCpu[path].push((cpuSecondsOf(mirror.pid) - cpu0) / (midBytes / GiB));
        } finally {
          await mirror.stop();
          await rm(mirrorStore, { recursive: true, force: true });
        }
      }
    }
    const pullRows: [string, number[], string][] = [
      ['direct from Distribution', pulls.direct, '—'],
      ['through kimg (uncached)', pulls.kimg, median(mirrorCpu.kimg).toFixed(2)],
      ["through Distribution's proxy (uncached)", pulls.Distribution, median(mirrorCpu.Distribution).toFixed(2)],
    ];
    table(
      ['path', 's per run', 'median s', '÷ direct', "mirror's CPU s/GiB (median)"],
      pullRows.map(([name, times, cpu]) => [
        name,
        times.map(fmtSeconds).join(' '),
        fmtSeconds(median(times)),
        fmtRatio(median(times) / median(pulls.direct)),
        cpu,
      ]),
    );
    const firstPull = median(pulls.kimg) / median(pulls.direct);
    verdict('through kimg ÷ direct', firstPull, '≤ 1.25', firstPull <= 1.25);

    // 3. Manifest HEAD by tag, 200 keep-alive clients.
    // Part 2 leaves its mirrors' writes to the disk and its stores to free: they go before the
    // latencies are measured, not during.
    execFileSync('sync');
    await sleep(SETTLE_MS);
    console.log(
      `\n## 3. Manifest HEAD by tag, 200 concurrent keep-alive clients, each sending one every ${PACE_MS} ms (≈ ${Math.round((200 * 1000) / PACE_MS)} requests/s), ${EACH} each after ${WARM_UP_EACH} untimed (plain HTTP)`,
    );
    const latencyRows: string[][] = [];
    let kimgP99 = Number.NaN;
    for (const [name, base] of [
      ['kimg', plain.url],
      ['Distribution', plainRegistry.url],
    ] as const) {
      // Untimed first, for both servers: 200 connections opened and the HEAD path compiled, so
      // that the percentiles are a server's steady state (as after a load tool's warm-up run).
      await headStormInChild(base, '/v2/bench/big/manifests/v1', 200, WARM_UP_EACH);
      const latencies = await headStormInChild(base, '/v2/bench/big/manifests/v1', 200, EACH);
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
      if (name === 'kimg') kimgP99 = at(0.99);
      latencyRows.push([
        name,
        String(latencies.length),
        at(0.5).toFixed(2),
        at(0.9).toFixed(2),
        at(0.99).toFixed(2),
        at(1).toFixed(2),
      ]);
    }
    table(['server', 'requests', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], latencyRows);
    verdict('kimg p99 ms', kimgP99, '< 5', kimgP99 < 5);

    // 4. RSS while serving 20 concurrent 128 MiB downloads.
    console.log(`\n## 4. Peak RSS while 20 clients download ${fmtBytes(128 * MiB * SCALE)} blobs at once (plain HTTP)`);
    const layers = big.images[0]?.layers ?? [];
    const rssRows: string[][] = [];
    let kimgRss = Number.NaN;
    // A fresh kimg process, so that its peak RSS is this part's alone.
    const fresh = await kimgServe(['--store', storeDir]);
    stops.push(() => fresh.stop());
    for (const [name, base, pid] of [
      ['kimg', fresh.url, fresh.pid],
      ['Distribution', plainRegistry.url, plainRegistry.pid],
    ] as const) {
      const before = peakRss(pid) ?? Number.NaN;
      const { ms } = await timed(() =>
        Promise.all(
          Array.from({ length: 20 }, async (_, i) => {
            const layer = layers[i % layers.length];
            if (layer === undefined) return;
            const res = await request(`${base}/v2/bench/big/blobs/${layer.digest}`);
            for await (const chunk of res.body) void chunk;
          }),
        ),
      );
      const after = peakRss(pid) ?? Number.NaN;
      if (name === 'kimg') kimgRss = after;
      rssRows.push([name, fmtBytes(before), fmtBytes(after), fmtRate(20 * 128 * MiB * SCALE, ms)]);
    }
    table(['server', 'peak RSS before', 'peak RSS after (peak of its whole life)', 'MB/s in all'], rssRows);
    verdict('kimg peak RSS MB', kimgRss / 1e6, '< 150', kimgRss / 1e6 < 150);
    const cpuInfo = (await readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/^processor/gm)?.length ?? 0;
    console.log(
      `\n(${cpuInfo} CPUs; ratios ${JSON.stringify(Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, fmtRatio(v)])))})`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    forget();
  }
  console.log(`\nserve bench: ${fmtSeconds(performance.now() - started)} s in all`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * {@link headStorm} in a process of its own, as a load tool (wrk, hey) is one: the bench process
 * has started registries and skopeo and gathered their output by then, and its own collector and
 * timers must not be in the latencies measured.
 */
async function headStormInChild(base: string, path: string, clients: number, each: number): Promise<number[]> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), HEAD_STORM, base, path, String(clients), String(each)],
    { timeoutMs: 600_000 },
  );
  return JSON.parse(stdout.toString('utf8')) as number[];
}

/**
 * `clients` keep-alive connections, each sending `each` HEADs at a pace; every latency in ms.
 * Each client is a raw socket that writes the request's bytes and takes the answer's blank line
 * as its end (a HEAD answer has no body), as wrk does: Node's HTTP client cost ≈ 300 µs of CPU
 * per request on a machine of this kind, more than the server it measures, and its queueing
 * showed in the latencies (a bare node:http server answering a fixed HEAD measured a p99 of
 * 6.3–6.7 ms through it, 3.4–4.2 ms through this). Not undici either: it closes the connection
 * after every HEAD (undici lib/dispatcher/client-h1.js, nodejs/undici#258).
 */
async function headStorm(base: string, path: string, clients: number, each: number): Promise<number[]> {
  const url = new URL(base);
  const request = Buffer.from(
    `HEAD ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: ${ACCEPT.accept}\r\n\r\n`,
    'latin1',
  );
  const latencies: number[] = [];
  const sockets: Socket[] = [];
  const client = async (): Promise<void> => {
    const socket = connect(Number(url.port), url.hostname);
    sockets.push(socket);
    socket.setNoDelay(true);
    let answered: ((status: number) => void) | undefined;
    let failed: ((err: Error) => void) | undefined;
    let received = '';
    socket.on('data', (data: Buffer) => {
      received += data.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(received.slice(9, 12));
      received = received.slice(end + 4);
      answered?.(status);
    });
    const closed = (err?: Error) => failed?.(err ?? new Error(`${base} closed the connection`));
    socket.once('error', closed);
    socket.once('close', () => closed());
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      failed = reject;
    });
    const head = (): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        answered = resolve;
        failed = reject;
        socket.write(request);
      });
    // One request per connection first, so that connecting is not measured.
    await head();
    // Spread the clients' starts over one pace, then each waits PACE_MS between requests.
    await sleep(Math.random() * PACE_MS);
    for (let i = 0; i < each; i++) {
      if (i > 0) await sleep(PACE_MS);
      const t0 = performance.now();
      const status = await head();
      if (status !== 200) throw new Error(`HEAD ${path}: ${status}`);
      latencies.push(performance.now() - t0);
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    for (const socket of sockets) socket.destroy();
  }
  return latencies;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, base, path, clients, each] = process.argv.slice(2);
  if (mode === HEAD_STORM && base !== undefined && path !== undefined) {
    process.stdout.write(JSON.stringify(await headStorm(base, path, Number(clients), Number(each))));
  } else {
    await runServeBench();
  }
}
