// `kimg pin` and `kimg lint` run as a user runs them (a child process) against a real
// Distribution registry behind a recording proxy: byte-exact rewrites to stdout and in place,
// index and platform digests, output forms, idempotence without requests, lock files and
// offline replay, --check, failures that write nothing, lint policies and exit statuses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { runCli, type CliResult } from '../cli/run-cli.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  which,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

describe('kimg pin and kimg lint against a real registry', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let app: BuiltImage;
  let multi: BuiltImage;
  let host: string;
  let fileCount = 0;
  const env = () => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
  });
  const kimg = (args: readonly string[], stdin?: string): Promise<CliResult> =>
    runCli(args, { env: env(), ...(stdin !== undefined && { stdin }) });
  /** A fresh file in the temp dir with this text. */
  const fixture = async (text: string, ext = 'yaml'): Promise<string> => {
    const path = join(tmp.path, `m${++fileCount}.${ext}`);
    await writeFile(path, text);
    return path;
  };
  const manifestRequests = () => proxy.requests.filter((r) => r.path.includes('/manifests/'));

  before(async () => {
    tmp = await makeTempDir('kimg-pin-');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    host = proxy.host;
    [app, multi] = await Promise.all([
      buildImage({ layers: [2_000], seed: 'pin-app' }),
      buildImage({ layers: [1_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'pin-multi' }),
    ]);
    await Promise.all([
      pushImage(app, registry, 'team/app:v1'),
      pushImage(app, registry, 'library/busybox:latest'),
      pushImage(multi, registry, 'team/multi:2'),
    ]);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([app?.remove(), multi?.remove()]);
    await tmp?.remove();
  });

  const deployment = (image: string, comment = '# the app') => `# Deployment of the app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web  # keep
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "${host}/team/multi:2"
      containers:
        - name: web
          image: ${image} ${comment}
          ports: [{containerPort: 80}]
`;

  test('prints the manifest with only the image values changed; the file stays as it was', async () => {
    const input = deployment(`${host}/team/app:v1`);
    const path = await fixture(input);
    const { status, stdout, stderr } = await kimg(['pin', '-f', path]);
    assert.equal(status, 0, stderr);
    assert.equal(stderr, '');
    assert.equal(
      stdout,
      input
        .replace(`"${host}/team/multi:2"`, `"${host}/team/multi:2@${multi.digest}"`)
        .replace(`${host}/team/app:v1 #`, `${host}/team/app:v1@${app.digest} #`),
    );
    assert.equal(await readFile(path, 'utf8'), input);
  });

  test('-w rewrites in place; a second run changes nothing and makes no registry request', async () => {
    const input = deployment(`'${host}/team/app:v1'`).replaceAll('\n', '\r\n');
    const path = await fixture(input);
    const first = await kimg(['pin', '-w', '-f', path]);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout, '');
    assert.match(first.stderr, /pinned 2 images/);
    const pinned = await readFile(path, 'utf8');
    assert.equal(
      pinned,
      input
        .replace(`"${host}/team/multi:2"`, `"${host}/team/multi:2@${multi.digest}"`)
        .replace(`'${host}/team/app:v1'`, `'${host}/team/app:v1@${app.digest}'`),
    );
    assert.deepEqual(
      (await readdir(tmp.path)).filter((f) => f.includes('.kimg-')),
      [],
      'a temporary file was left behind',
    );

    proxy.reset();
    const second = await kimg(['pin', '-w', '-f', path]);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stderr, '');
    assert.equal(await readFile(path, 'utf8'), pinned);
    assert.deepEqual(proxy.requests, []);
    const check = await kimg(['pin', '--check', '-f', path]);
    assert.equal(check.status, 0, check.stdout);
  });

  test('--platform pins the platform manifest; the index digest by default', async () => {
    const path = await fixture(
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: ${host}/team/multi:2}\n`,
    );
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64');
    assert.ok(arm);
    const { status, stdout, stderr } = await kimg(['pin', '--platform', 'linux/arm64', '-f', path]);
    assert.equal(status, 0, stderr);
    assert.match(stdout, new RegExp(`image: ${host}/team/multi:2@${arm.manifest.digest}}`));
    const missing = await kimg(['pin', '--platform', 'linux/riscv64', '-f', path]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stdout, '');
    assert.match(
      missing.stderr,
      /:\d+:\d+: spec\.containers\[0\]\.image: .*team\/multi:2: platform not found .*linux\/riscv64/,
    );
  });

  test('output forms: canonical and digest-only (and their --form aliases)', async () => {
    const path = await fixture(
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: ${host}/team/app:v1}\n`,
    );
    const canonical = await kimg(['pin', '--output-format', 'canonical', '-f', path]);
    assert.match(canonical.stdout, new RegExp(`image: ${host}/team/app:v1@${app.digest}}`));
    const digest = await kimg(['pin', '--form', 'digest', '-f', path]);
    assert.equal(digest.status, 0, digest.stderr);
    assert.match(digest.stdout, new RegExp(`image: ${host}/team/app@${app.digest}}`));
    const conflict = await kimg(['pin', '--form', 'digest', '--output-format', 'preserve', '-f', path]);
    assert.equal(conflict.status, 2);
    assert.match(conflict.stderr, /disagree/);
  });

  test('an image without a tag is pinned at latest, with a warning on stderr', async () => {
    const path = await fixture(
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: ${host}/library/busybox}\n`,
    );
    const { status, stdout, stderr } = await kimg(['pin', '-f', path]);
    assert.equal(status, 0, stderr);
    assert.match(stdout, new RegExp(`image: ${host}/library/busybox@${app.digest}}`));
    assert.match(stderr, /:\d+:\d+: spec\.containers\[0\]\.image: warning: .*busybox.*implicit.*latest/);
  });

  test('--lock writes the resolutions; --from-lock replays them with no request', async () => {
    const input = deployment(`${host}/team/app:v1`);
    const path = await fixture(input);
    const lock = join(tmp.path, 'images.lock');
    const locked = await kimg(['pin', '--lock', lock, '-f', path]);
    assert.equal(locked.status, 0, locked.stderr);
    assert.deepEqual(parse(await readFile(lock, 'utf8')), {
      apiVersion: 'kimg.dev/v1alpha1',
      kind: 'ImageLock',
      resolve: 'index',
      images: [
        { ref: `${host}/team/app:v1`, digest: app.digest },
        { ref: `${host}/team/multi:2`, digest: multi.digest },
      ].sort((a, b) => (a.ref < b.ref ? -1 : 1)),
    });

    proxy.reset();
    const replay = await kimg(['pin', '--from-lock', lock, '-f', path]);
    assert.equal(replay.status, 0, replay.stderr);
    assert.equal(replay.stdout, locked.stdout);
    assert.deepEqual(proxy.requests, []);

    const other = await fixture(deployment(`${host}/team/app:v2`));
    const missing = await kimg(['pin', '--from-lock', lock, '-f', other]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stdout, '');
    assert.match(
      missing.stderr,
      new RegExp(`:14:18: spec\\.template\\.spec\\.containers\\[0\\]\\.image: ${host}/team/app:v2: not in lock`),
    );
    assert.deepEqual(proxy.requests, []);

    const mismatch = await kimg(['pin', '--from-lock', lock, '--platform', 'linux/amd64', '-f', path]);
    assert.equal(mismatch.status, 2);
    assert.match(mismatch.stderr, /resolve: index/);
  });

  test('a failed image fails the run: exit 1, nothing on stdout, no file written, the cause named', async () => {
    const input = `${deployment(`${host}/team/app:v1`)}---\n${deployment(`${host}/team/nothing:v1`, '')}`;
    const path = await fixture(input);
    const { status, stdout, stderr } = await kimg(['pin', '-w', '-f', path]);
    assert.equal(status, 1);
    assert.equal(stdout, '');
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.ok(
      lines[0]?.startsWith(`${path}:30:18: spec.template.spec.containers[0].image: ${host}/team/nothing:v1: not found`),
      stderr,
    );
    assert.equal(await readFile(path, 'utf8'), input);
  });

  test('a registry that does not answer fails the image with "timeout"', async () => {
    const path = await fixture(
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: ${host}/team/app:v1}\n`,
    );
    proxy.setRule((request) => (request.path.includes('/manifests/') ? fault.hang() : undefined));
    try {
      const { status, stdout, stderr } = await kimg(['pin', '--timeout', '1s', '-f', path]);
      assert.equal(status, 1);
      assert.equal(stdout, '');
      assert.match(stderr, new RegExp(`:\\d+:\\d+: spec\\.containers\\[0\\]\\.image: ${host}/team/app:v1: timeout`));
    } finally {
      proxy.setRule(undefined);
      proxy.reset();
    }
  });

  test('--on-mismatch deny refuses a digest its tag no longer points at', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const path = await fixture(
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: "${host}/team/app:v1@${wrong}"}\n`,
    );
    const kept = await kimg(['pin', '-f', path]);
    assert.equal(kept.status, 0, kept.stderr);
    assert.equal(kept.stdout, await readFile(path, 'utf8'));
    const denied = await kimg(['pin', '--on-mismatch', 'deny', '-f', path]);
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /does not match/);
    const warned = await kimg(['pin', '--existing-digest', 'verify-warn', '-f', path]);
    assert.equal(warned.status, 0);
    assert.match(warned.stderr, new RegExp(`warning: .*${app.digest}`));
  });

  test('JSON manifests, standard input, and several files on one stream', async () => {
    const json = `{\n  "apiVersion": "batch/v1",\n  "kind": "CronJob",\n  "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "${host}/team/app:v1"}]}}}}}\n}`;
    const jsonPath = await fixture(json, 'json');
    const yamlPath = await fixture(`# cm\napiVersion: v1\nkind: ConfigMap\ndata: {image: ${host}/team/app:v1}\n`);
    const { status, stdout, stderr } = await kimg(
      ['pin', '-f', jsonPath, '-f', '-', '-f', yamlPath],
      `apiVersion: v1\nkind: Pod\nspec: {containers: [{name: b, image: ${host}/team/app:v1}]}\n`,
    );
    assert.equal(status, 0, stderr);
    assert.equal(
      stdout,
      `${json.replace(`app:v1"`, `app:v1@${app.digest}"`)}\n---\napiVersion: v1\nkind: Pod\nspec: {containers: [{name: b, image: ${host}/team/app:v1@${app.digest}}]}\n---\n# cm\napiVersion: v1\nkind: ConfigMap\ndata: {image: ${host}/team/app:v1}\n`,
    );
  });

  test(
    'a kubectl-generated Deployment',
    { skip: which('kubectl') ? undefined : 'kubectl is not installed' },
    async () => {
      const generated = spawnSync(
        'kubectl',
        ['create', 'deployment', 'web', `--image=${host}/team/app:v1`, '--dry-run=client', '-o', 'yaml'],
        { encoding: 'utf8' },
      );
      assert.equal(generated.status, 0, generated.stderr);
      const path = await fixture(generated.stdout);
      const { status, stdout, stderr } = await kimg(['pin', '-f', path]);
      assert.equal(status, 0, stderr);
      assert.equal(
        stdout,
        generated.stdout.replace(`image: ${host}/team/app:v1\n`, `image: ${host}/team/app:v1@${app.digest}\n`),
      );
    },
  );

  test('--check lists unpinned and invalid images as <file>:<line>:<column>: <path>: <rule>: <image>, or JSON Lines; exit 1', async () => {
    const path = await fixture(
      `${deployment(`${host}/team/app:v1`)}---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: x, image: Bad/Image}\n  - {name: y, image: "a@sha256:${'a'.repeat(64)}"}\n`,
    );
    proxy.reset();
    const { status, stdout } = await kimg(['pin', '--check', '-f', path]);
    assert.equal(status, 1);
    assert.equal(
      stdout,
      `${path}:11:18: spec.template.spec.initContainers[0].image: missing-digest: ${host}/team/multi:2\n` +
        `${path}:14:18: spec.template.spec.containers[0].image: missing-digest: ${host}/team/app:v1\n` +
        `${path}:21:22: spec.containers[0].image: invalid-reference: Bad/Image\n`,
    );
    const json = await kimg(['pin', '--check', '-o', 'json', '-f', path]);
    // A list is JSON Lines: one finding per line.
    const records = json.stdout
      .trimEnd()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            file: string;
            doc: number;
            path: string;
            rule: string;
            container: string;
            line: number;
          },
      );
    assert.deepEqual(
      records.map((r) => [r.doc, r.rule, r.container, r.line]),
      [
        [0, 'missing-digest', 'init', 11],
        [0, 'missing-digest', 'web', 14],
        [1, 'invalid-reference', 'x', 21],
      ],
    );
    assert.deepEqual(proxy.requests, []);
  });

  test('custom pod-spec paths pin custom resources', async () => {
    const path = await fixture(
      `apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: ${host}/team/app:v1\n`,
    );
    const without = await kimg(['pin', '-f', path]);
    assert.equal(without.stdout, await readFile(path, 'utf8'));
    const { status, stdout, stderr } = await kimg([
      'pin',
      '--pod-spec-path',
      'argoproj.io/Rollout=spec.template.spec',
      '-f',
      path,
    ]);
    assert.equal(status, 0, stderr);
    assert.match(stdout, new RegExp(`image: ${host}/team/app:v1@${app.digest}\\n`));
  });

  test('lint applies the policy offline: violations, exit 1 under deny, 0 under warn', async () => {
    const path = await fixture(
      `${deployment(`${host}/team/app:latest`)}---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: b, image: nginx}\n  - {name: c, image: "quay.io/team/tool:1@sha256:${'b'.repeat(64)}"}\n`,
    );
    proxy.reset();
    const byDefault = await kimg(['lint', '-f', path]);
    assert.equal(byDefault.status, 1);
    assert.equal(
      byDefault.stdout,
      `${path}:14:18: spec.template.spec.containers[0].image: disallowed-tag: ${host}/team/app:latest\n${path}:21:22: spec.containers[0].image: implicit-latest: nginx\n`,
    );

    const policy = await fixture(
      `requireDigest: true\nallowedRepositories: ["${host}/team/*", "docker.io/library/nginx"]\n`,
    );
    const strict = await kimg(['lint', '--policy', policy, '-o', 'json', '-f', path]);
    assert.equal(strict.status, 1);
    const records = strict.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { doc: number; rule: string; container: string });
    assert.deepEqual(
      records.map((r) => [r.doc, r.container, r.rule]),
      [
        [0, 'init', 'missing-digest'],
        [0, 'web', 'missing-digest'],
        [1, 'b', 'missing-digest'],
        [1, 'c', 'registry-not-allowed'],
      ],
    );

    const warn = await fixture(`enforcement: warn\nrequireDigest: true\n`);
    const warned = await kimg(['lint', '--policy', warn, '-f', path]);
    assert.equal(warned.status, 0);
    assert.equal(warned.stdout.trimEnd().split('\n').length, 3);
    assert.deepEqual(proxy.requests, []);

    const bad = await fixture(`allowedRepositories: [nginx]\n`);
    const invalid = await kimg(['lint', '--policy', bad, '-f', path]);
    assert.equal(invalid.status, 2);
    assert.match(invalid.stderr, /allowedRepositories\[0\].*normalized/);
  });

  test('usage and input errors exit 2 and name the problem', async () => {
    const broken = await fixture('apiVersion: v1\nkind: Pod\n---\nspec:\n  containers: [\n');
    const cases: [string[], RegExp][] = [
      [['pin', '-f', broken], new RegExp(`${broken}:\\d+:\\d+: .* \\(document 1\\)`)],
      [['pin', '-f', join(tmp.path, 'absent.yaml')], /absent\.yaml: cannot read: no such file/],
      [['pin', '-w', '-f', '-'], /standard input/],
      [['pin', '--check', '-w', '-f', broken], /--check writes nothing/],
      [['pin'], /no input/],
      [['pin', '--extra-path', 'a..b', '-f', broken], /invalid --extra-path "a\.\.b"/],
      [['pin', '--platform', 'linux', '-f', broken], /--platform/],
      [['pin', '--timeout', 'soon', '-f', broken], /--timeout must be a duration/],
      [['pin', '--pod-spec-path', 'Rollout', '-f', broken], /--pod-spec-path must be/],
      [['lint', '-o', 'xml', '-f', broken], /-o\/--output must be one of text, json, yaml/],
    ];
    for (const [args, message] of cases) {
      const { status, stderr, stdout } = await kimg(args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message, args.join(' '));
      assert.equal(stdout, '');
    }
    assert.equal(manifestRequests().length, 0);
  });
});
