// `npm run demo`: kimg's main job end to end, offline. Each step runs the real CLI in-process.
import { main } from '../src/cli/index.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function step(title: string, argv: string[]): Promise<number> {
  console.log(`\n${bold(`== ${title}`)}`);
  console.log(`$ kimg ${argv.map((a) => (/[\s"'$]/.test(a) ? `'${a}'` : a)).join(' ')}`);
  return main(argv);
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

async function run(): Promise<void> {
  await step('Image references, normalized as Kubernetes and containerd read them', ['ref', ...realWorldNames.slice(0, 3)]);
  await step('The same as JSON lines, one per input (batch mode: `kimg ref -` reads standard input)', ['ref', '-o', 'json', ...realWorldNames.slice(3)]);
  const status = await step('Invalid names get a precise, typed error and exit status 1; the valid ones are still printed', [
    'ref', 'Nginx:1.25', 'nginx:', 'docker.io/library/busybox:latest',
  ]);
  console.log(`(exit status ${status})`);
}

await run();
