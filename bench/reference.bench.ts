// Reference parsing speed (docs/semantics.md references §8, §9): kimg's parseNormalizedNamed against
// @swimlane/docker-reference's parseFamiliarName on realistic Kubernetes image names, kimg's
// non-throwing form on typos, and kimg on hostile inputs of growing size (time must grow linearly).
// Run alone with `node --import tsx bench/reference.bench.ts`, or through `npm run bench`.
import { parseFamiliarName } from '@swimlane/docker-reference';
import { pathToFileURL } from 'node:url';
import { parseNormalizedNamed, tryParse, tryParseNormalizedNamed } from '../src/reference/index.ts';

const SHA = 'sha256:4ff0b3a5f1e3d8c0f6e6a0b6dd8a1c9e9b6c2b3a1d4e5f60718293a4b5c6d7e8';

/** Image names as they appear in Kubernetes manifests; all valid for both parsers. */
const REALISTIC = [
  'registry.k8s.io/pause:3.9',
  'registry.k8s.io/kube-apiserver:v1.30.2',
  'registry.k8s.io/kube-controller-manager:v1.30.2',
  'registry.k8s.io/kube-scheduler:v1.30.2',
  'registry.k8s.io/kube-proxy:v1.30.2',
  'registry.k8s.io/etcd:3.5.12-0',
  'registry.k8s.io/coredns/coredns:v1.11.1',
  'registry.k8s.io/ingress-nginx/controller:v1.10.1',
  `registry.k8s.io/ingress-nginx/controller:v1.10.1@${SHA}`,
  'registry.k8s.io/metrics-server/metrics-server:v0.7.1',
  'registry.k8s.io/sig-storage/csi-provisioner:v4.0.1',
  'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.10.1',
  'registry.k8s.io/autoscaling/cluster-autoscaler:v1.30.0',
  'quay.io/prometheus/prometheus:v2.52.0',
  'quay.io/prometheus/node-exporter:v1.8.1',
  'quay.io/prometheus/alertmanager:v0.27.0',
  'quay.io/prometheus-operator/prometheus-config-reloader:v0.74.0',
  'quay.io/jetstack/cert-manager-controller:v1.14.5',
  'quay.io/cilium/cilium:v1.15.5',
  `quay.io/cilium/cilium@${SHA}`,
  'quay.io/argoproj/argocd:v2.11.2',
  'gcr.io/distroless/static-debian12:nonroot',
  'gcr.io/distroless/base-debian12',
  'gcr.io/k8s-staging-test-infra/krte:v20240515-17c6d50e24-master',
  'gcr.io/google-samples/hello-app:1.0',
  'us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0',
  'europe-west1-docker.pkg.dev/my-project/team/api-server:2024.05.31',
  'ghcr.io/fluxcd/source-controller:v1.3.0',
  'ghcr.io/fluxcd/kustomize-controller:v1.3.0',
  'ghcr.io/external-secrets/external-secrets:v0.9.19',
  `ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector:0.102.0@${SHA}`,
  'public.ecr.aws/eks-distro/kubernetes/pause:3.9',
  '123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/backend:1.42.0',
  'myregistry.azurecr.io/samples/nginx:latest',
  'nginx',
  'nginx:1.27-alpine',
  'busybox:1.36',
  `busybox@${SHA}`,
  'redis:7.2',
  'postgres:16.3-bookworm',
  'alpine:3.20',
  'ubuntu:22.04',
  'bitnami/kafka:3.7.0',
  'grafana/grafana:11.0.0',
  'hashicorp/vault:1.16',
  'docker.io/library/python:3.12-slim',
  'docker.io/curlimages/curl:8.8.0',
  'index.docker.io/library/node:20-alpine',
  'localhost:5000/dev/app:feature-x',
  'localhost/my-app:dev',
  '10.0.0.12:5000/team/service:0.1.0',
  'registry.internal.example.com:8443/platform/gateway:3.2.1',
];

/** Typos and mistakes a webhook sees: each invalid. */
const INVALID = [
  'nginx:',
  'Nginx:1.27',
  'registry.k8s.io//pause:3.9',
  'registry.k8s.io/pause:3.9:',
  'quay.io/app@sha256:abc',
  'ubuntu:.22.04',
  'my image:latest',
  'registry.example.com:5000/Team/app:1',
  '-nginx',
  'ghcr.io/org/app:v1.0.0@sha256:',
  'registry.k8s.io/pause:3.9 ',
  'docker.io/library/redis:7.2!',
];

/**
 * Nanoseconds per call of each candidate over `inputs`, the median of several rounds (or the
 * best, which is steadier when only growth matters). Rounds alternate between the candidates,
 * so load from other processes on a shared machine hits them alike.
 */
function compare(
  inputs: readonly string[],
  candidates: readonly ((s: string) => unknown)[],
  { roundMs = 100, rounds = 9, pick = 'median' }: { roundMs?: number; rounds?: number; pick?: 'median' | 'best' } = {},
): number[] {
  let sink = 0;
  const round = (fn: (s: string) => unknown): number => {
    let calls = 0;
    const start = process.hrtime.bigint();
    const until = performance.now() + roundMs;
    while (performance.now() < until) {
      for (const s of inputs) if (fn(s) !== undefined) sink++;
      calls += inputs.length;
    }
    return Number(process.hrtime.bigint() - start) / calls;
  };
  for (const fn of candidates) round(fn); // warm-up: let V8 optimize each
  const samples = candidates.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) candidates.forEach((fn, i) => samples[i]?.push(round(fn)));
  if (sink < 0) console.log(sink); // keeps the results observable
  return samples.map((times) => times.sort((a, b) => a - b)[pick === 'best' ? 0 : Math.floor(times.length / 2)] ?? NaN);
}

function measure(
  inputs: readonly string[],
  fn: (s: string) => unknown,
  options?: Parameters<typeof compare>[2],
): number {
  return compare(inputs, [fn], options)[0] ?? NaN;
}

/** One call's duration in milliseconds, best of `times` (for slow inputs). */
function timeOnce(fn: () => unknown, times = 1): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const start = process.hrtime.bigint();
    try {
      fn();
    } catch {
      // failures are what these inputs produce
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return best;
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}

const us = (ns: number): string => (ns / 1000).toFixed(3);
const opsPerSecond = (ns: number): string => Math.round(1e9 / ns).toLocaleString('en-US');

export async function runReferenceBench(): Promise<void> {
  for (const s of REALISTIC) {
    if (parseNormalizedNamed(s).toString() !== parseFamiliarName(s).toString()) {
      throw new Error(`parsers disagree on ${s}`);
    }
  }
  for (const s of INVALID) if (tryParseNormalizedNamed(s).ok) throw new Error(`${s} should be invalid`);

  const [kimg = NaN, swimlane = NaN, kimgParse = NaN] = compare(REALISTIC, [
    (s) => parseNormalizedNamed(s),
    (s) => parseFamiliarName(s),
    (s) => tryParse(s),
  ]);
  const invalidTry = measure(INVALID, (s) => tryParseNormalizedNamed(s));
  const invalidThrow = measure(INVALID, (s) => {
    try {
      return parseNormalizedNamed(s);
    } catch (err) {
      return err;
    }
  });

  console.log(`\nrealistic references (${REALISTIC.length} Kubernetes image names, all valid; target ≤ 0.5 µs)`);
  table(
    ['implementation', 'ops/s', 'µs/op', 'vs swimlane'],
    [
      ['kimg parseNormalizedNamed', opsPerSecond(kimg), us(kimg), `${(swimlane / kimg).toFixed(2)}× faster`],
      ['swimlane parseFamiliarName', opsPerSecond(swimlane), us(swimlane), '1.00×'],
      ['kimg tryParse (no normalization)', opsPerSecond(kimgParse), us(kimgParse), ''],
    ],
  );

  console.log(`\ninvalid references (${INVALID.length} typos; target ≤ 1 µs for the non-throwing form)`);
  table(
    ['implementation', 'ops/s', 'µs/op'],
    [
      ['kimg tryParseNormalizedNamed', opsPerSecond(invalidTry), us(invalidTry)],
      ['kimg parseNormalizedNamed (throws)', opsPerSecond(invalidThrow), us(invalidThrow)],
    ],
  );

  // Hostile inputs (docs/semantics.md references §8): time per parse at 1, 4, 16, 64 KiB; ×4 input should cost ≲ ×5 time.
  const shapes: [label: string, make: (bytes: number) => string][] = [
    ['"a-"… + "!"', (n) => `${'a-'.repeat(n / 2)}!`],
    ['"a."… + ":"', (n) => `${'a.'.repeat(n / 2)}:`],
    ['"a/"… + "!"', (n) => `${'a/'.repeat(n / 2)}!`],
    ['"0"…', (n) => '0'.repeat(n)],
    ['"[" + ":"…', (n) => `[${':'.repeat(n - 1)}`],
    ['"x:" + "T"… + "!" (lowercase retry)', (n) => `x:${'T'.repeat(n - 3)}!`],
  ];
  const sizes = [1024, 4096, 16384, 65536];
  const rows: string[][] = [];
  let worst64 = 0;
  for (const [label, make] of shapes) {
    const times = sizes.map((size) => {
      const input = make(size);
      return measure([input], (s) => tryParseNormalizedNamed(s), { roundMs: 50, rounds: 9, pick: 'best' }) / 1e6;
    });
    worst64 = Math.max(worst64, times[3] ?? 0);
    const growth = times.slice(1).map((t, i) => (t / (times[i] ?? t)).toFixed(1));
    rows.push([label, ...times.map((t) => t.toFixed(4)), growth.join(' / ')]);
  }
  console.log(
    '\nhostile inputs, kimg tryParseNormalizedNamed (ms per parse, best of 9 rounds; target ≤ 5 ms at 64 KiB, growth ≲ ×5)',
  );
  table(['input', '1 KiB', '4 KiB', '16 KiB', '64 KiB', 'growth per ×4'], rows);
  console.log(`worst 64 KiB parse: ${worst64.toFixed(3)} ms`);

  // swimlane's separator `[-]*` backtracks exponentially; one short typo shows it. Kept tiny on
  // purpose: every extra character roughly doubles the time, and 16 characters take seconds.
  const short = `${'a'.repeat(10)}:`;
  const longer = `${'a'.repeat(12)}:`;
  const blowUp = [
    [`swimlane parseFamiliarName("a"×10 + ":"), once`, timeOnce(() => parseFamiliarName(short))],
    [`swimlane parseFamiliarName("a"×12 + ":"), once`, timeOnce(() => parseFamiliarName(longer))],
    [
      `kimg tryParseNormalizedNamed("a"×12 + ":")`,
      measure([longer], (s) => tryParseNormalizedNamed(s), { roundMs: 40, rounds: 5 }) / 1e6,
    ],
  ] as const;
  console.log('\nbacktracking on an 11–13 character typo');
  table(
    ['call', 'ms'],
    blowUp.map(([label, ms]) => [label, ms.toFixed(4)]),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runReferenceBench();
}
