// `npm run demo`: kimg's main job end to end, offline. Each step runs the real CLI in-process;
// the registry is a real CNCF Distribution registry on a loopback port, started and stopped here.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../src/cli/index.ts';
import { buildImage, pushImage, startRegistry, type RunningRegistry } from '../test/harness/index.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
// Errors are shown in line with the output they belong to.
const io: Io = { stdout: process.stdout, stderr: process.stdout, stdin: process.stdin, env: process.env };

async function step(title: string, argv: string[]): Promise<number> {
  console.log(`\n${bold(`== ${title}`)}`);
  console.log(`$ kimg ${argv.map((a) => (/[\s"'$]/.test(a) ? `'${a}'` : a)).join(' ')}`);
  const status = await main(argv, io);
  if (status !== 0) console.log(`(exit status ${status})`);
  return status;
}

const realWorldNames = [
  'busybox',
  'nginx:1.25',
  'registry.k8s.io/pause:3.9',
  'quay.io/prometheus/prometheus:v2.51.0',
  'ghcr.io/fluxcd/source-controller:v1.2.4',
  'localhost:5000/team/app',
  'index.docker.io/bitnami/redis:latest',
  'gcr.io/distroless/static@sha256:8dd8d3ca2cf283383304fd45a5c9c74d5f2cd9da8d3b077d720e264880077c65',
  'nginx:1.25@sha256:0a399eb16751829e1af26fea27b20c3ec28d7ab1fb72182879dcae1cca21206a',
];

async function references(): Promise<void> {
  await step('Image references, normalized as Kubernetes and containerd read them', ['ref', ...realWorldNames.slice(0, 2)]);
  await step('The same as JSON lines, one per input (batch mode: `kimg ref -` reads standard input)', ['ref', '-o', 'json', ...realWorldNames.slice(2)]);
  await step('Invalid names get a precise, typed error and exit status 1; the valid ones are still printed', [
    'ref', 'Nginx:1.25', 'nginx:', 'docker.io/library/busybox:latest',
  ]);
}

async function pulling(registry: RunningRegistry, store: string): Promise<void> {
  console.log(`\n${bold('== A local registry')}: Distribution at ${registry.url}, a generated image pushed with skopeo`);
  const app = await buildImage({ layers: [4 << 20, 1 << 20, 64 << 10], content: 'text', seed: 'demo-app' });
  await pushImage(app, registry, 'team/app:v1');
  const multi = await buildImage({ layers: [256 << 10], seed: 'demo-multi', platforms: ['linux/amd64', 'linux/arm64/v8'] });
  await pushImage(multi, registry, 'team/tool:2.0');
  const image = `${registry.host}/team/app:v1`;
  const s = ['--store', store];

  await step('Resolve a tag to its digest (one HEAD request, nothing downloaded)', [...s, 'resolve', image]);
  await step('Pull it: every layer hashed while it streams, verified, fsynced, then moved into the store', [...s, 'pull', '--progress=plain', image]);
  await step('Pull again: the image is complete, so one manifest request and no blob', [...s, 'pull', image]);
  await step('A multi-platform image: the platform asked for is chosen from the index', [...s, 'pull', '-q', '--platform', 'linux/arm64', `${registry.host}/team/tool:2.0`]);
  await step('A platform the image lacks is an error that lists what is there', [...s, 'pull', '--platform', 'linux/s390x', `${registry.host}/team/tool:2.0`]);
  await step('A tag that does not exist', [...s, 'pull', `${registry.host}/team/app:v9`]);
  await step('The store (an OCI image layout that skopeo and umoci read too)', [...s, 'images']);
  await step('Inspect an image', [...s, 'inspect', image]);
  await step('Verify every blob against its digest', [...s, 'fsck']);
  await step('Remove an image, then collect its blobs', [...s, 'rmi', `${registry.host}/team/tool:2.0`]);
  await step('Collect the blobs no image uses any more', [...s, 'gc']);
}

async function run(): Promise<void> {
  await references();
  const work = await mkdtemp(join(tmpdir(), 'kimg-demo-'));
  const registry = await startRegistry();
  try {
    await pulling(registry, join(work, 'store'));
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await run();
