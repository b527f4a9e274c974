// The admission webhook under load (docs/semantics.md admission §6): requests per second and p50/p99 latency
// for a 10-container Pod at 50 concurrent requests over HTTPS with keep-alive, next to a bare
// Node HTTPS server that reads the body and returns a fixed AdmissionReview, measured in the
// same run on the same client. Rows:
//   bare       node:https, JSON.parse of the body, a fixed response (the ceiling)
//   warm       `kimg webhook serve`'s server, digest cache warm: 10 cache hits per request
//   cache off  cacheTtlSeconds 0: every request looks its 10 images up in the real registry
//              (concurrent identical lookups still merge)
// Each server runs in its own process (this file, KIMG_BENCH_ROLE=…), the load generator here.
// Targets: warm p99 < 20 ms and ≥ 0.5 × the bare server's throughput; cache off p99 < 250 ms.
// Run alone with `node --import tsx bench/webhook.bench.ts`, or through `npm run bench webhook`;
// KIMG_BENCH_SERVER_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the servers.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import {
  buildImage,
  createCertificateAuthority,
  ensureTools,
  issueCertificate,
  makeTempDir,
  pushImage,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../test/harness/index.ts';
import { cpuSecondsOf, fmtRatio, median, table } from './measure.ts';

const QUICK = process.env.KIMG_BENCH_QUICK === '1';
const CONCURRENCY = 50;
const CONTAINERS = 10;
const WARMUP_MS = QUICK ? 300 : 1000;
const MEASURE_MS = QUICK ? 1500 : 4000;
const ROUNDS = QUICK ? 1 : 3;
const SERVICE = 'kimg-webhook.kimg-system.svc';
const LOGICAL = 'bench.kimg.test';

// ------------------------------------------------------------------ server processes

/** Handler time per request (from a parsed review to its decision), between `reset` and `stats` messages. */
const handlerMs: number[] = [];
let recording = false;

function answerStats(): void {
  process.on('message', (message: unknown) => {
    if (message === 'reset') {
      handlerMs.length = 0;
      recording = true;
    } else if (message === 'stats') {
      recording = false;
      const sorted = [...handlerMs].sort((a, b) => a - b);
      process.send?.({ count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) });
    }
  });
}

/** Child role: a server on port 0; prints `PORT <n>` and runs until killed. */
async function serve(role: string): Promise<void> {
  process.once('SIGTERM', () => process.exit(0));
  answerStats();
  const cert = process.env.KIMG_BENCH_CERT ?? '';
  const key = process.env.KIMG_BENCH_KEY ?? '';
  if (role === 'bare') {
    const fixed = Buffer.from(
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: 'fixed', allowed: true },
      }),
    );
    const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const started = performance.now();
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (recording) handlerMs.push(performance.now() - started);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': fixed.length });
        res.end(fixed);
      });
    });
    server.keepAliveTimeout = 65_000;
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      process.stdout.write(`PORT ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
    });
    return;
  }
  // The built code, as `kimg webhook serve` runs it (see useBuiltAdmission).
  const admission = (await import(
    process.env.KIMG_BENCH_ADMISSION ?? '../src/admission/index.ts'
  )) as typeof import('../src/admission/index.ts');
  const { WebhookServer, createAdmissionRuntime, parseAdmissionConfig } = admission;
  const config = parseAdmissionConfig(JSON.parse(process.env.KIMG_BENCH_CONFIG ?? '{}'), { env: {} });
  const runtime = await createAdmissionRuntime(config, { env: {} });
  const handler = runtime.handler;
  const mutate = handler.mutate.bind(handler);
  handler.mutate = async (request, options) => {
    const started = performance.now();
    try {
      return await mutate(request, options);
    } finally {
      if (recording) handlerMs.push(performance.now() - started);
    }
  };
  const server = await WebhookServer.start({
    handler: runtime.handler,
    metrics: runtime.metrics,
    certFile: cert,
    keyFile: key,
    host: '127.0.0.1',
    port: 0,
  });
  process.stdout.write(`PORT ${server.port}\n`);
}

interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  stop(): Promise<void>;
}

function startServer(role: string, env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...(process.env.KIMG_BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean),
      fileURLToPath(import.meta.url),
    ],
    {
      env: { ...process.env, ...env, KIMG_BENCH_ROLE: role },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        resolve({
          child,
          port: Number(m[1]),
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              // SIGTERM first: a server run with KIMG_BENCH_SERVER_ARGS=--cpu-prof writes its profile on exit.
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 3000).unref();
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`bench server ${role} exited (${code}) before listening`)));
  });
}

// ------------------------------------------------------------------ load

interface HandlerStats {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
}

function handlerStats(server: ServerProcess): Promise<HandlerStats> {
  return new Promise((resolve) => {
    server.child.once('message', (message) => resolve(message as HandlerStats));
    server.child.send('stats');
  });
}

interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Server CPU seconds per 1000 requests. */
  readonly cpuPerThousand: number;
  readonly patched: boolean;
  /** Server-side: time in the handler (the bare server: its JSON.parse). */
  readonly handler: HandlerStats;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function load(server: ServerProcess, caPem: string, body: string): Promise<LoadResult> {
  const pool = new Pool(`https://127.0.0.1:${server.port}`, {
    connections: CONCURRENCY,
    pipelining: 1,
    connect: { ca: caPem, servername: SERVICE },
  });
  const latencies: number[] = [];
  let errors = 0;
  let patched = false;
  let measuring = false;
  let stop = false;
  const one = async () => {
    // Only requests sent while measuring count (not the warm-up's stragglers).
    const counted = measuring;
    const started = performance.now();
    try {
      const res = await pool.request({
        path: '/mutate?timeout=10s',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) errors++;
      else if (!patched && text.includes('"patchType":"JSONPatch"')) patched = true;
    } catch {
      errors++;
    }
    if (counted && measuring) latencies.push(performance.now() - started);
  };
  // One request first: the warm row's cache is filled before the load starts.
  await one();
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) await one();
  });
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  server.child.send('reset');
  const cpuBefore = cpuSecondsOf(server.child.pid ?? 0);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  measuring = false;
  const elapsed = performance.now() - started;
  const handler = await handlerStats(server);
  const cpu = cpuSecondsOf(server.child.pid ?? 0) - cpuBefore;
  const requests = latencies.length;
  stop = true;
  await Promise.all(workers);
  await pool.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests,
    errors,
    rps: requests / (elapsed / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    cpuPerThousand: (cpu / requests) * 1000,
    patched,
    handler,
  };
}

/** Per figure, the median over the rounds. */
function medianResult(results: readonly LoadResult[]): LoadResult {
  const m = (pick: (r: LoadResult) => number) => median(results.map(pick));
  return {
    requests: m((r) => r.requests),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    rps: m((r) => r.rps),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    max: m((r) => r.max),
    cpuPerThousand: m((r) => r.cpuPerThousand),
    patched: results.every((r) => r.patched),
    handler: { count: m((r) => r.handler.count), p50: m((r) => r.handler.p50), p99: m((r) => r.handler.p99) },
  };
}

function reviewBody(images: readonly string[]): string {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench', namespace: 'team', labels: { app: 'bench' } },
    spec: {
      containers: images.map((image, i) => ({
        name: `c${i}`,
        image,
        ports: [{ containerPort: 8080 + i }],
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      })),
      restartPolicy: 'Always',
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      name: 'bench',
      namespace: 'team',
      operation: 'CREATE',
      userInfo: { username: 'bench' },
      object: pod,
      dryRun: false,
    },
  });
}

// ------------------------------------------------------------------ the suite

/** Builds `dist/` so the servers run the code `kimg webhook serve` runs (not tsx's transform of
 * the sources); falls back to the sources, saying so, when the build fails. */
function useBuiltAdmission(): void {
  if (process.env.KIMG_BENCH_ADMISSION !== undefined) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  try {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')],
      { stdio: 'inherit' },
    );
    process.env.KIMG_BENCH_ADMISSION = join(root, 'dist', 'admission', 'index.js');
  } catch {
    console.log('(the build failed: the servers run the TypeScript sources under tsx)');
  }
}

export async function runWebhookBench(): Promise<void> {
  ensureTools(['docker-registry', 'skopeo', 'openssl']);
  useBuiltAdmission();
  let temp: TempDir | undefined;
  let registry: RunningRegistry | undefined;
  const built: BuiltImage[] = [];
  const servers: ServerProcess[] = [];
  try {
    temp = await makeTempDir('kimg-bench-webhook-');
    registry = await startRegistry({ logLevel: 'error' });
    const images: string[] = [];
    for (let i = 0; i < CONTAINERS; i++) {
      const image = await buildImage({
        layers: [512],
        seed: `bench-webhook-${i}`,
        platforms: i % 2 === 0 ? ['linux/amd64', 'linux/arm64'] : ['linux/amd64'],
      });
      built.push(image);
      await pushImage(image, registry, `team/svc-${i}:v1`);
      images.push(`${LOGICAL}/team/svc-${i}:v1`);
    }
    const ca = await createCertificateAuthority(join(temp.path, 'tls'));
    const leaf = await issueCertificate(ca, { name: 'tls', sans: [SERVICE] });
    const env = (config: unknown) => ({
      KIMG_BENCH_CERT: leaf.certFile,
      KIMG_BENCH_KEY: leaf.keyFile,
      KIMG_BENCH_CONFIG: JSON.stringify(config),
    });
    const base = {
      resolver: {
        registryHosts: { [LOGICAL]: registry.url },
        secretSource: 'none',
        dockerConfig: join(temp.path, 'none.json'),
      },
    };
    const body = reviewBody(images);
    console.log(
      `${CONTAINERS}-container Pod (${body.length} bytes), ${CONCURRENCY} concurrent requests, HTTPS keep-alive, ${MEASURE_MS / 1000} s per run after ${WARMUP_MS / 1000} s warm-up, ` +
        `median of ${ROUNDS} alternating rounds; registry ${registry.url}; kimg from ${process.env.KIMG_BENCH_ADMISSION === undefined ? 'the sources (tsx)' : 'the build (dist/)'}${QUICK ? '; QUICK' : ''}`,
    );

    const plans = [
      ['bare Node HTTPS (fixed review)', 'bare', {}],
      ['kimg webhook, warm cache', 'webhook', base],
      ['kimg webhook, cache off (TTL 0)', 'webhook', { ...base, resolver: { ...base.resolver, cacheTtlSeconds: 0 } }],
    ] as const;
    // Rounds alternate the servers, so a burst of other load on the machine hits them alike.
    const runs: LoadResult[][] = plans.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [, role, config]] of plans.entries()) {
        const server = await startServer(role, env(config));
        servers.push(server);
        runs[i]?.push(await load(server, ca.certPem, body));
        await server.stop();
      }
    }
    const rows: [string, LoadResult][] = plans.map(([name], i) => [name, medianResult(runs[i] ?? [])]);
    const bare = rows[0]?.[1];
    table(
      [
        'server',
        'req/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'handler p50 / p99 ms',
        'server CPU s / 1000 req',
        'vs bare',
        'errors',
        'patched',
      ],
      rows.map(([name, r]) => [
        name,
        r.rps.toFixed(0),
        r.p50.toFixed(2),
        r.p99.toFixed(2),
        r.max.toFixed(1),
        `${r.handler.p50.toFixed(3)} / ${r.handler.p99.toFixed(3)}`,
        r.cpuPerThousand.toFixed(3),
        bare === undefined ? '-' : fmtRatio(r.rps / bare.rps),
        String(r.errors),
        name.startsWith('bare') ? '-' : String(r.patched),
      ]),
    );
    const warm = rows[1]?.[1];
    const cold = rows[2]?.[1];
    if (warm !== undefined && bare !== undefined) {
      console.log(
        `targets: warm p99 added handler latency < 20 ms (docs/semantics.md admission §6): in the handler ${warm.handler.p99.toFixed(3)} ms ${warm.handler.p99 < 20 ? 'met' : 'MISSED'}, ` +
          `end to end over the bare server's ${bare.p99.toFixed(2)} ms ${(warm.p99 - bare.p99).toFixed(2)} ms ${warm.p99 - bare.p99 < 20 ? 'met' : 'MISSED'} ` +
          `(end to end ${warm.p99.toFixed(2)} ms, ${warm.p99 < 20 ? 'also' : 'not'} under 20 ms); ` +
          `≥ 0.5 × bare throughput: ${fmtRatio(warm.rps / bare.rps)} ${warm.rps >= 0.5 * bare.rps ? 'met' : 'MISSED'}` +
          (cold === undefined
            ? ''
            : `; cache off p99 < 250 ms: ${cold.p99.toFixed(1)} ms ${cold.p99 < 250 ? 'met' : 'MISSED'}`),
      );
      console.log(
        `load average while measuring: ${loadavg()
          .map((l) => l.toFixed(2))
          .join(
            ' ',
          )} on ${availableParallelism()} CPUs (end-to-end tails grow with other load; the bare row shows the floor)`,
      );
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await registry?.stop();
    await Promise.all(built.map((b) => b.remove()));
    await temp?.remove();
  }
}

const role = process.env.KIMG_BENCH_ROLE;
if (role !== undefined && role !== '') {
  await serve(role);
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runWebhookBench();
}
