// `kimg pin --krm` and `kimg lint --krm` as KRM functions: a ResourceList in, the same out with
// `results`; run directly, and under kpt (`kpt fn eval DIR --exec …`) against a real registry.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, cp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { runCli } from '../cli/run-cli.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  which,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const D = `sha256:${'a'.repeat(64)}`;

const RESOURCE_LIST = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- # the app
  apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    annotations:
      config.kubernetes.io/index: '0'
      internal.config.kubernetes.io/path: 'app.yaml'
  spec:
    template:
      spec:
        containers:
        - name: web
          image: nginx:1.25 # server
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cfg}
  data: {image: nginx:1.25}
functionConfig:
  apiVersion: v1
  kind: ConfigMap
  data: {}
`;

interface Result {
  message: string;
  severity: string;
  resourceRef?: { kind: string; name: string };
  field?: { path: string };
  file?: { path: string; index?: number };
}

describe('KRM functions, run directly', () => {
  let tmp: TempDir;
  let lock: string;
  before(async () => {
    tmp = await makeTempDir('kimg-krm-');
    lock = join(tmp.path, 'images.lock');
    await writeFile(
      lock,
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages:\n  - ref: nginx:1.25\n    digest: ${D}\n`,
    );
  });
  after(() => tmp?.remove());

  test('pin --krm rewrites only the image scalar of the items and appends results', async () => {
    const { status, stdout, stderr } = await runCli(['pin', '--krm', '--from-lock', lock], { stdin: RESOURCE_LIST });
    assert.equal(status, 0, stderr);
    const [body, results] = stdout.split('results:\n');
    assert.equal(body, RESOURCE_LIST.replace('nginx:1.25 # server', `nginx:1.25@${D} # server`));
    const parsed = parse(`results:\n${results ?? ''}`) as { results: Result[] };
    assert.deepEqual(parsed.results, [
      {
        message: `pinned nginx:1.25 as nginx:1.25@${D}`,
        severity: 'info',
        resourceRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
        field: { path: 'spec.template.spec.containers[0].image' },
        file: { path: 'app.yaml', index: 0 },
      },
    ]);
  });

  test('a failure is an error result and exit 1; the items are returned unchanged', async () => {
    const empty = join(tmp.path, 'empty.lock');
    await writeFile(empty, 'apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages: []\n');
    const { status, stdout } = await runCli(['pin', '--krm', '--from-lock', empty], { stdin: RESOURCE_LIST });
    assert.equal(status, 1);
    const out = parse(stdout) as { items: unknown[]; results: Result[] };
    assert.deepEqual(out.items, (parse(RESOURCE_LIST) as { items: unknown[] }).items);
    assert.equal(out.results.length, 1);
    assert.equal(out.results[0]?.severity, 'error');
    assert.match(out.results[0]?.message ?? '', /^nginx:1\.25: not in lock/);
  });

  test('pin --krm --check reports unpinned images as errors without resolving', async () => {
    const { status, stdout } = await runCli(['pin', '--krm', '--check'], { stdin: RESOURCE_LIST });
    assert.equal(status, 1);
    const out = parse(stdout) as { results: Result[] };
    assert.deepEqual(
      out.results.map((r) => [r.severity, r.field?.path]),
      [['error', 'spec.template.spec.containers[0].image']],
    );
  });

  test('lint --krm: error results under deny (exit 1), warnings under warn (exit 0)', async () => {
    const latest = RESOURCE_LIST.replace('nginx:1.25 # server', 'nginx:latest # server');
    const denied = await runCli(['lint', '--krm'], { stdin: latest });
    assert.equal(denied.status, 1);
    const results = (parse(denied.stdout) as { results: Result[] }).results;
    assert.deepEqual(
      results.map((r) => [r.severity, r.resourceRef?.name, r.field?.path]),
      [['error', 'web', 'spec.template.spec.containers[0].image']],
    );
    assert.match(results[0]?.message ?? '', /nginx:latest: disallowed-tag/);

    const policy = join(tmp.path, 'warn.yaml');
    await writeFile(policy, 'enforcement: warn\ndisallowedTags: [latest]\n');
    const warned = await runCli(['lint', '--krm', '--policy', policy], { stdin: latest });
    assert.equal(warned.status, 0);
    assert.equal((parse(warned.stdout) as { results: Result[] }).results[0]?.severity, 'warning');

    const clean = await runCli(['lint', '--krm'], { stdin: RESOURCE_LIST });
    assert.equal(clean.status, 0);
    assert.equal(clean.stdout, RESOURCE_LIST);
  });

  test('anything but a ResourceList on stdin is exit 2', async () => {
    const { status, stderr } = await runCli(['pin', '--krm'], { stdin: 'apiVersion: v1\nkind: Pod\n' });
    assert.equal(status, 2);
    assert.match(stderr, /ResourceList/);
  });
});

const kptSkip = which('kpt')
  ? requireTools(['docker-registry', 'skopeo'])
  : 'kpt is not installed (kpt fn eval --exec is what this test runs)';

describe('kpt fn eval --exec kimg', { skip: kptSkip }, () => {
  let tmp: TempDir;
  let registry: RunningRegistry;
  let image: BuiltImage;
  let wrapper: string;
  const APP = (host: string) => `# the app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # its name
spec:
  template:
    spec:
      containers:
        - name: web
          image: "${host}/team/app:v1" # server
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  image: ${host}/team/app:v1
`;

  before(async () => {
    tmp = await makeTempDir('kimg-kpt-');
    registry = await startRegistry();
    image = await buildImage({ layers: [1_000], seed: 'kpt-app' });
    await pushImage(image, registry, 'team/app:v1');
    // kpt runs an executable: a wrapper that runs kimg from source, in an environment of its own.
    wrapper = join(tmp.path, 'kimg');
    await writeFile(
      wrapper,
      `#!/bin/sh\nexport HOME='${tmp.path}' DOCKER_CONFIG='${tmp.path}/none' REGISTRY_AUTH_FILE='${tmp.path}/none.json'\ncd '${ROOT}' && exec '${process.execPath}' --import tsx src/cli/bin.ts "$@" --store '${tmp.path}/store'\n`,
    );
    await chmod(wrapper, 0o755);
  });
  after(async () => {
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  const kpt = (dir: string, exec: string) =>
    spawnSync('kpt', ['fn', 'eval', dir, '--exec', exec], { encoding: 'utf8', cwd: tmp.path });

  test('pins the Deployment in the package, keeps the ConfigMap and the comments; exit 0', async () => {
    const dir = join(tmp.path, 'pkg');
    await mkdir(dir);
    await writeFile(join(dir, 'app.yaml'), APP(registry.host));
    const run = kpt(dir, `${wrapper} pin --krm`);
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      await readFile(join(dir, 'app.yaml'), 'utf8'),
      APP(registry.host).replace(`app:v1" # server`, `app:v1@${image.digest}" # server`),
    );
    assert.match(run.stderr + run.stdout, /\[info\].*Deployment\/web.*pinned/);

    const again = await cp(dir, join(tmp.path, 'pkg-again'), { recursive: true }).then(() =>
      kpt(join(tmp.path, 'pkg-again'), `${wrapper} pin --krm --check`),
    );
    assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
  });

  test('a lint violation fails the function with its result', async () => {
    const dir = join(tmp.path, 'pkg-lint');
    await mkdir(dir);
    await writeFile(join(dir, 'app.yaml'), APP(registry.host).replace('app:v1" # server', 'app:latest" # server'));
    const run = kpt(dir, `${wrapper} lint --krm`);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr + run.stdout, /\[error\].*Deployment\/web.*disallowed-tag/);
  });

  test('an image the registry lacks fails the function, naming it and the cause; files unchanged', async () => {
    const dir = join(tmp.path, 'pkg-missing');
    await mkdir(dir);
    const text = APP(registry.host).replace('app:v1" # server', 'missing:v1" # server');
    await writeFile(join(dir, 'app.yaml'), text);
    const run = kpt(dir, `${wrapper} pin --krm`);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr + run.stdout, /\[error\].*team\/missing:v1: not found/);
    assert.equal(await readFile(join(dir, 'app.yaml'), 'utf8'), text);
  });
});
