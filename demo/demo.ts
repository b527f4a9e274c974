// `npm run demo`: kimg's four parts end to end, offline — references and pulls, the kubelet's
// image manager, pinning manifests (pin, lint), the admission webhook. Each step runs the real CLI in-process;
// the registry is a real CNCF Distribution registry on a loopback port, started and stopped here.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  WebhookServer,
  createAdmissionRuntime,
  generateWebhookCertificates,
  parseAdmissionConfig,
} from '../src/admission/index.ts';
import { main, type Io } from '../src/cli/index.ts';
import { formatEvents } from '../src/cli/commands/ensure-describe.ts';
import { ImageManager, StoreImageService, type KubeletEvent } from '../src/kubelet/index.ts';
import { ManualClock } from '../src/kubelet/testing/index.ts';
import { openStore } from '../src/store/index.ts';
import { RegistryServer } from '../src/server/index.ts';
import {
  Containerd,
  buildImage,
  copyImage,
  inspectRaw,
  pushImage,
  startRegistry,
  which,
  type RunningRegistry,
} from '../test/harness/index.ts';

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
  await step('Image references, normalized as Kubernetes and containerd read them', [
    'ref',
    ...realWorldNames.slice(0, 2),
  ]);
  await step('The same as JSON lines, one per input (batch mode: `kimg ref -` reads standard input)', [
    'ref',
    '-o',
    'json',
    ...realWorldNames.slice(2),
  ]);
  await step('Invalid names get a precise, typed error and exit status 1; the valid ones are still printed', [
    'ref',
    'Nginx:1.25',
    'nginx:',
    'docker.io/library/busybox:latest',
  ]);
}

async function pulling(registry: RunningRegistry, store: string): Promise<void> {
  console.log(
    `\n${bold('== A local registry')}: Distribution at ${registry.url}, a generated image pushed with skopeo`,
  );
  const app = await buildImage({ layers: [4 << 20, 1 << 20, 64 << 10], content: 'text', seed: 'demo-app' });
  await pushImage(app, registry, 'team/app:v1');
  const multi = await buildImage({
    layers: [256 << 10],
    seed: 'demo-multi',
    platforms: ['linux/amd64', 'linux/arm64/v8'],
  });
  await pushImage(multi, registry, 'team/tool:2.0');
  const image = `${registry.host}/team/app:v1`;
  const s = ['--store', store];

  await step('Resolve a tag to its digest (one HEAD request, nothing downloaded)', [...s, 'resolve', image]);
  await step('Pull it: every layer hashed while it streams, verified, fsynced, then moved into the store', [
    ...s,
    'pull',
    '--progress=plain',
    image,
  ]);
  await step('Pull again: the image is complete, so one manifest request and no blob', [...s, 'pull', image]);
  await step('A multi-platform image: the platform asked for is chosen from the index', [
    ...s,
    'pull',
    '-q',
    '--platform',
    'linux/arm64',
    `${registry.host}/team/tool:2.0`,
  ]);
  await step('A platform the image lacks is an error that lists what is there', [
    ...s,
    'pull',
    '--platform',
    'linux/s390x',
    `${registry.host}/team/tool:2.0`,
  ]);
  await step('A tag that does not exist', [...s, 'pull', `${registry.host}/team/app:v9`]);
  await step('The store (an OCI image layout that skopeo and umoci read too)', [...s, 'images']);
  await step('Inspect an image', [...s, 'inspect', image]);
  await step('Verify every blob against its digest', [...s, 'fsck']);
  await step('Remove an image, then collect its blobs', [...s, 'rmi', `${registry.host}/team/tool:2.0`]);
  await step('Collect the blobs no image uses any more', [...s, 'gc']);
}

// The store served as a registry on the node: skopeo reads and copies from it, and containerd
// (when installed) pulls through it with the hosts.toml `kimg registry hosts-toml` writes.
async function serving(registry: RunningRegistry, store: string, work: string): Promise<void> {
  const server = await RegistryServer.start({
    store: await openStore(store),
    port: 0,
    // Names without ?ns= (skopeo's) are the demo registry's: `<mirror>/team/app:v1`.
    defaultUpstream: registry.host,
    accessLog: (line) => console.log(`  [kimg registry] ${line}`),
  });
  try {
    console.log(
      `\n${bold('== The store as a registry')}: kimg registry serve --store … --listen 127.0.0.1:0 --default-upstream ${registry.host} → ${server.url}`,
    );
    const mirror = `127.0.0.1:${server.port}`;
    await mkdir(work, { recursive: true });
    console.log(`$ skopeo inspect --raw docker://${mirror}/team/app:v1`);
    console.log((await inspectRaw(`${mirror}/team/app:v1`)).toString('utf8').slice(0, 160) + '…');
    console.log(`$ skopeo copy docker://${mirror}/team/app:v1 oci:${join(work, 'copy')}:v1`);
    await copyImage(`docker://${mirror}/team/app:v1`, `oci:${join(work, 'copy')}:v1`, { preserveDigests: true });
    const hostsDir = join(work, 'certs.d');
    await step("containerd's hosts.toml pointing at the mirror", [
      'registry',
      'hosts-toml',
      '--mirror',
      server.url,
      '--for',
      registry.host,
      '--dir',
      hostsDir,
    ]);
    if (!which('containerd') || !which('ctr')) {
      console.log('(containerd is not installed: the ctr step is skipped)');
      return;
    }
    const containerd = await Containerd.start(join(work, 'containerd'), 'demo');
    try {
      console.log(
        `$ ctr content fetch --hosts-dir ${hostsDir} ${registry.host}/team/app:v1   (containerd asks kimg, ?ns=${registry.host})`,
      );
      await containerd.ctr(['content', 'fetch', '--hosts-dir', hostsDir, `${registry.host}/team/app:v1`]);
      console.log((await containerd.ctr(['images', 'ls'])).trim());
    } finally {
      await containerd.stop();
    }
  } finally {
    await server.close();
  }
}

async function run(): Promise<void> {
  await references();
  const work = await mkdtemp(join(tmpdir(), 'kimg-demo-'));
  const registry = await startRegistry();
  try {
    await pulling(registry, join(work, 'store'));
    await copying(registry, join(work, 'store'), join(work, 'copy'));
    await serving(registry, join(work, 'store'), join(work, 'serve'));
    await kubelet(registry, join(work, 'kubelet'));
    await pinning(registry, join(work, 'pin'));
    await webhook(registry, join(work, 'webhook'));
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

// Writing images: push the pulled image to a second registry, copy registry to registry (mounts
// within one registry, nothing to do when the destination has it), round-trip an archive.
async function copying(registry: RunningRegistry, store: string, work: string): Promise<void> {
  const second = await startRegistry();
  try {
    console.log(`\n${bold('== A second registry')} at ${second.url}`);
    const image = `${registry.host}/team/app:v1`;
    const s = ['--store', store];
    await step('Push the stored image to the second registry (blobs, then the manifest, the tag last)', [
      ...s,
      'push',
      image,
      `${second.host}/team/app:v1`,
    ]);
    await step('Copy it again: the destination already points at the digest, one HEAD and nothing else', [
      ...s,
      'copy',
      `docker://${image}`,
      `docker://${second.host}/team/app:v1`,
    ]);
    await step('Copy within one registry: every blob is mounted, no byte uploaded', [
      ...s,
      'copy',
      `docker://${image}`,
      `docker://${registry.host}/mirror/app:v1`,
    ]);
    await mkdir(work, { recursive: true });
    const archive = join(work, 'app.tar');
    await step('Write an OCI archive (skopeo, ctr images import and docker load read it)', [
      ...s,
      'copy',
      image,
      `oci-archive:${archive}`,
    ]);
    await step('And copy the archive back to a registry', [
      ...s,
      'copy',
      `oci-archive:${archive}:v1`,
      `docker://${second.host}/from-archive/app:v1`,
    ]);
    await relocating(registry, second, work);
  } finally {
    await second.stop();
  }
}

// Relocating a manifest: every image it references copied into the second registry under a
// prefix, the manifest rewritten to the new names pinned by digest, every other byte kept.
async function relocating(registry: RunningRegistry, second: RunningRegistry, work: string): Promise<void> {
  const deploy = join(work, 'web.yaml');
  await writeFile(
    deploy,
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: tool
          image: ${registry.host}/team/tool:2.0
      containers:
        - name: app
          image: "${registry.host}/team/app:v1"   # the app
`,
  );
  const to = `${second.host}/mirror`;
  await step('Relocate a manifest: what would be copied into the private registry? (exit status 1: missing)', [
    'relocate',
    '--check',
    '-f',
    deploy,
    '--to',
    to,
  ]);
  await step('Copy every image it references there and rewrite it in place, pinned by digest', [
    'relocate',
    '-w',
    '-f',
    deploy,
    '--to',
    to,
  ]);
  for (const line of (await readFile(deploy, 'utf8')).split('\n')) if (line.includes('image:')) console.log(line);
  await step('Relocate the rewritten file again: its images are under the target, nothing changes', [
    'relocate',
    '--check',
    '-f',
    deploy,
    '--to',
    to,
  ]);
}

// The kubelet image manager: the three pull policies, a wrong tag under the back-off (on a manual
// clock, pulls for real), and the preflight that finds a missing imagePullSecret.
async function kubelet(registry: RunningRegistry, work: string): Promise<void> {
  const alice = { user: 'alice', password: 's3cret' };
  const privateRegistry = await startRegistry({ htpasswd: [alice] });
  try {
    console.log(
      `\n${bold('== The kubelet image manager')}: a second registry at ${privateRegistry.url} requires a login`,
    );
    const web = await buildImage({ layers: [256 << 10], seed: 'demo-web' });
    await pushImage(web, registry, 'team/web:v1');
    const old = await buildImage({ layers: [1200 << 10], seed: 'demo-old' });
    await pushImage(old, registry, 'team/old:v1');
    await pushImage(web, privateRegistry, 'team/private:v1', { creds: `${alice.user}:${alice.password}` });
    await mkdir(work, { recursive: true });
    const node = ['--store', join(work, 'store')];
    const kubeletFlags = ['--root-dir', join(work, 'root'), '--no-node-credentials'];
    const file = async (name: string, text: string) => {
      await writeFile(join(work, name), text);
      return join(work, name);
    };
    const policies = await file(
      'policies.yaml',
      `apiVersion: v1
kind: Pod
metadata: {name: policies}
spec:
  containers:
  - {name: always, image: ${registry.host}/team/web:v1, imagePullPolicy: Always}
  - {name: if-not-present, image: ${registry.host}/team/web:v1, imagePullPolicy: IfNotPresent}
  - {name: never, image: ${registry.host}/team/web:v2, imagePullPolicy: Never}
`,
    );
    const privatePod = await file(
      'private.yaml',
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      imagePullSecrets: [{name: regcred}]
      containers: [{name: api, image: ${privateRegistry.host}/team/private:v1}]
`,
    );
    const secret = await file(
      'secret.yaml',
      `apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"${privateRegistry.host}": {"username": "${alice.user}", "password": "${alice.password}"}}}'
`,
    );

    await step('A node with an old image no pod uses any more', [
      ...node,
      'pull',
      '-q',
      `${registry.host}/team/old:v1`,
    ]);
    await step(
      'The three pull policies: Always pulls (resolving the tag), IfNotPresent finds it present, Never refuses an absent image',
      [...node, 'ensure', ...kubeletFlags, '-f', policies],
    );

    const image = `${registry.host}/team/web:v9`;
    console.log(
      `\n${bold('== A wrong tag under the back-off')}: 10 s doubling to 5 min, on a manual clock; every pull is real`,
    );
    const clock = new ManualClock(Date.now());
    const events: KubeletEvent[] = [];
    const manager = new ImageManager({
      imageService: new StoreImageService({ store: await openStore(join(work, 'store')) }),
      clock,
      recorder: (e) => events.push(e),
      config: { registryPullQPS: 0 },
    });
    const pod = { uid: 'demo-pod', namespace: 'default', name: 'web' };
    const start = clock.now();
    for (const at of [0, 5, 10, 15, 30, 45, 70, 110, 150, 200, 310, 400, 610]) {
      clock.set(start + at * 1000);
      const result = await manager.ensureImageExists({ pod, image, pullPolicy: 'IfNotPresent' });
      const window = manager.backOff.state(`${pod.uid}_${image}`);
      const next = `next pull at +${((window?.retryAt ?? start) - start) / 1000}s`;
      const message = result.message.length > 100 ? `${result.message.slice(0, 99)}…` : result.message;
      console.log(`  ${`+${at}s`.padEnd(6)} ${(result.reason ?? '').padEnd(17)} ${next.padEnd(20)} ${message}`);
    }
    console.log(formatEvents(events, clock.now()).join('\n'));

    await step(
      'Preflight: resolve every image with the credentials the kubelet would use, download nothing — the Secret is missing',
      [...node, 'ensure', '--dry-run', ...kubeletFlags, '-f', privatePod],
    );
    await step('With the Secret the preflight passes', [
      ...node,
      'ensure',
      '--dry-run',
      ...kubeletFlags,
      '-f',
      privatePod,
      '-f',
      secret,
    ]);
    await step('And the kubelet pulls with it', [...node, 'ensure', ...kubeletFlags, '-f', privatePod, '-f', secret]);
    await step(
      'Image GC as the kubelet does it: above the high threshold, least recently used first, none in use (a what-if disk)',
      [
        ...node,
        'gc',
        '--thresholds',
        '--dry-run',
        '--root-dir',
        join(work, 'root'),
        '--minimum-image-gc-age',
        '0s',
        '--capacity',
        '10M',
        '--available',
        '1M',
        '--in-use',
        `${privateRegistry.host}/team/private:v1`,
      ],
    );
  } finally {
    await privateRegistry.stop();
  }
}

// Pinning manifests to digests offline (pin, pin --check, a lock file) and the image policy (lint).
async function pinning(registry: RunningRegistry, work: string): Promise<void> {
  console.log(`\n${bold('== Pinning manifests')}: tags become digests, byte for byte nothing else changes`);
  await mkdir(work, { recursive: true });
  const deploy = join(work, 'deploy.yaml');
  await writeFile(
    deploy,
    `# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web  # keep this comment
spec:
  template:
    spec:
      initContainers:
        - name: tool
          image: "${registry.host}/team/tool:2.0"
      containers:
        - name: app
          image: ${registry.host}/team/app:v1   # pinned by kimg
`,
  );
  const lock = join(work, 'images.lock');
  await step('Which images are not pinned (file:LINE:COLUMN, as compilers print it; exit status 1)', [
    'pin',
    '--check',
    '-f',
    deploy,
  ]);
  await step('Pin them: the manifest with each tag resolved to its digest, every other byte as it was', [
    'pin',
    '-f',
    deploy,
  ]);
  await step('Rewrite the file in place and record the resolutions in a lock file', [
    'pin',
    '-w',
    '--lock',
    lock,
    '-f',
    deploy,
  ]);
  console.log((await readFile(lock, 'utf8')).trimEnd());
  await step('Now every image is pinned', ['pin', '--check', '-f', deploy]);
  const latest = join(work, 'latest.yaml');
  await writeFile(
    latest,
    `apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
  - {name: shell, image: busybox}
  - {name: app, image: "${registry.host}/team/app:latest"}
`,
  );
  await step('Lint against the image policy offline (default: no latest tag, written or implied)', [
    'lint',
    '-f',
    latest,
  ]);
}

// The admission webhook: served over HTTPS with certificates made by openssl, asked as the
// apiserver asks (an AdmissionReview), answering with a JSON patch that pins the pod's image.
async function webhook(registry: RunningRegistry, work: string): Promise<void> {
  console.log(
    `\n${bold('== The admission webhook')}: the same pinning at admission, over HTTPS, as the apiserver calls it`,
  );
  const dir = join(work, 'certs');
  const { caPem } = await generateWebhookCertificates({ service: 'kimg-webhook', namespace: 'kimg-system', dir });
  const config = parseAdmissionConfig({}, { env: {} });
  const runtime = await createAdmissionRuntime(config, { env: {} });
  const server = await WebhookServer.start({
    handler: runtime.handler,
    metrics: runtime.metrics,
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    host: '127.0.0.1',
    port: 0,
  });
  try {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'team' },
      spec: { containers: [{ name: 'app', image: `${registry.host}/team/app:v1` }] },
    };
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: randomUUID(),
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        requestKind: { group: '', version: 'v1', kind: 'Pod' },
        name: 'web',
        namespace: 'team',
        operation: 'CREATE',
        userInfo: { username: 'alice' },
        object: pod,
        dryRun: false,
      },
    };
    console.log(`POST https://kimg-webhook.kimg-system.svc/mutate (listening on 127.0.0.1:${server.port})`);
    console.log(`  a Pod in namespace team with image ${pod.spec.containers[0]?.image}`);
    const answer = JSON.parse(await post(server.port, caPem, '/mutate?timeout=10s', JSON.stringify(review))) as {
      response: { allowed: boolean; patch?: string; warnings?: string[] };
    };
    console.log(`  allowed: ${answer.response.allowed}`);
    if (answer.response.patch !== undefined)
      console.log(`  patch:   ${Buffer.from(answer.response.patch, 'base64').toString('utf8')}`);
    for (const warning of answer.response.warnings ?? []) console.log(`  warning: ${warning}`);

    // The manifests to deploy it: only the kinds are shown here.
    const captured = new PassThrough();
    let yaml = '';
    captured.setEncoding('utf8').on('data', (chunk: string) => (yaml += chunk));
    const args = ['webhook', 'manifests', '--image', 'registry.example.com/kimg@sha256:' + '0'.repeat(64)];
    console.log(`\n${bold('== Deploying it')}\n$ kimg ${args.join(' ')} | grep '^kind:'`);
    await main(args, { ...io, stdout: captured });
    for (const line of yaml.split('\n')) if (line.startsWith('kind:')) console.log(line);
  } finally {
    await server.close(1000);
    await runtime.close();
  }
}

/** An HTTPS POST as the apiserver sends it, trusting only the webhook's CA. */
function post(port: number, caPem: string, path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca: caPem,
        servername: 'kimg-webhook.kimg-system.svc',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

await run();
