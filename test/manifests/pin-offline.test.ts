// `kimg pin` without a registry: replays from a lock, --config, flags that shape what is pinned,
// and the configuration errors that exit 2.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../cli/run-cli.ts';
import { makeTempDir, type TempDir } from '../harness/index.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

const MANIFESTS = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: roll}
spec:
  template:
    spec:
      containers:
      - name: app
        image: redis:7   # cache
---
apiVersion: v1
kind: Pod
metadata: {name: pod}
spec:
  containers:
  - name: a
    image: 'nginx:1.25'
  - name: mine
    image: internal.example.com/tool:1
sidecarImage: nginx:1.25
`;

describe('kimg pin offline (--from-lock)', () => {
  let tmp: TempDir;
  let lock: string;
  let manifests: string;
  const file = async (name: string, text: string) => {
    const path = join(tmp.path, name);
    await writeFile(path, text);
    return path;
  };
  const env = () => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg'),
    DOCKER_CONFIG: join(tmp.path, 'none'),
    KIMG_STORE: '',
  });
  const kimg = (args: string[], stdin?: string) => runCli(args, { env: env(), ...(stdin !== undefined && { stdin }) });

  before(async () => {
    tmp = await makeTempDir('kimg-pin-offline-');
    lock = await file(
      'images.lock',
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages:\n  - ref: docker.io/library/nginx:1.25\n    digest: ${D1}\n  - ref: redis:7\n    digest: ${D2}\n`,
    );
    manifests = await file('app.yaml', MANIFESTS);
  });
  after(() => tmp?.remove());

  test('replays a lock: normalized lock entries match familiar spellings; kinds, skip prefixes and extra paths apply', async () => {
    const { status, stdout, stderr } = await kimg([
      'pin',
      '--from-lock',
      lock,
      '-f',
      manifests,
      '--pod-spec-path',
      'argoproj.io/Rollout=spec.template.spec',
      '--skip-prefix',
      'internal.example.com/',
      '--extra-path',
      'sidecarImage',
    ]);
    assert.equal(status, 0, stderr);
    assert.equal(stderr, '');
    assert.equal(
      stdout,
      MANIFESTS.replace('redis:7   #', `redis:7@${D2}   #`)
        .replace("'nginx:1.25'", `'nginx:1.25@${D1}'`)
        .replace('sidecarImage: nginx:1.25', `sidecarImage: nginx:1.25@${D1}`),
    );
    assert.equal(await readFile(manifests, 'utf8'), MANIFESTS);
  });

  test('--config: mutate settings (output format, custom kinds, skip prefixes), flags override', async () => {
    const config = await file(
      'config.yaml',
      `mutate:\n  outputFormat: canonical\n  skipPrefixes: [internal.example.com/]\n  extraPodSpecPaths:\n    argoproj.io/Rollout: [spec.template.spec]\n`,
    );
    const canonical = await kimg(['pin', '--config', config, '--from-lock', lock, '-f', manifests]);
    assert.equal(canonical.status, 0, canonical.stderr);
    assert.match(canonical.stdout, new RegExp(`image: docker\\.io/library/redis:7@${D2}   # cache`));
    assert.match(canonical.stdout, new RegExp(`image: 'docker\\.io/library/nginx:1\\.25@${D1}'`));
    const overridden = await kimg([
      'pin',
      '--config',
      config,
      '--output-format',
      'digest-only',
      '--from-lock',
      lock,
      '-f',
      manifests,
    ]);
    assert.match(overridden.stdout, new RegExp(`image: docker\\.io/library/redis@${D2}   # cache`));
  });

  test('--lock next to --from-lock writes the references as written in this run', async () => {
    const out = join(tmp.path, 'again.lock');
    const { status, stderr } = await kimg([
      'pin',
      '--from-lock',
      lock,
      '--lock',
      out,
      '--skip-prefix',
      'internal.example.com/',
      '-f',
      manifests,
    ]);
    assert.equal(status, 0, stderr);
    assert.equal(
      await readFile(out, 'utf8'),
      `apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages:\n  - ref: nginx:1.25\n    digest: ${D1}\n`,
    );
  });

  test('standard input, and a bare Kind in --pod-spec-path meaning the core group', async () => {
    const { status, stdout, stderr } = await kimg(
      ['pin', '--from-lock', lock, '-f', '-', '--pod-spec-path', 'Pod=spec.extra'],
      'apiVersion: v1\nkind: Pod\nspec:\n  extra:\n    containers: [{name: x, image: redis:7}]\n',
    );
    assert.equal(status, 0, stderr);
    assert.equal(
      stdout,
      `apiVersion: v1\nkind: Pod\nspec:\n  extra:\n    containers: [{name: x, image: redis:7@${D2}}]\n`,
    );
  });

  test('configuration errors exit 2 and name the key or file', async () => {
    const unknownKey = await file('bad-config.yaml', 'mutate:\n  outputFormt: canonical\n');
    const badLock = await file(
      'bad.lock',
      'apiVersion: kimg.dev/v1alpha1\nkind: ImageLock\nresolve: index\nimages: [{ref: x, digest: nope}]\n',
    );
    const cases: [string[], RegExp][] = [
      [['pin', '--config', unknownKey, '-f', manifests], /mutate\.outputFormt: unknown key/],
      [['pin', '--config', join(tmp.path, 'absent.yaml'), '-f', manifests], /absent\.yaml/],
      [['pin', '--from-lock', badLock, '-f', manifests], /bad\.lock: not a kimg image lock: images\[0\]\.digest/],
      [['pin', '--pod-spec-path', 'argoproj.io/Rollout=spec..x', '-f', manifests], /--pod-spec-path/],
      [['lint', '--policy', join(tmp.path, 'absent-policy.yaml'), '-f', manifests], /absent-policy\.yaml/],
    ];
    for (const [args, message] of cases) {
      const { status, stdout, stderr } = await kimg(args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
      assert.equal(stdout, '');
    }
  });

  test('lint reads the validate section of --config, or a whole configuration given as --policy', async () => {
    const config = await file('validate.yaml', 'validate:\n  allowedRepositories: ["docker.io/library/*"]\n');
    for (const flag of ['--config', '--policy']) {
      const { status, stdout } = await kimg(['lint', flag, config, '-f', manifests]);
      assert.equal(status, 1, flag);
      assert.equal(
        stdout,
        `${manifests}:19:12: spec.containers[1].image: registry-not-allowed: internal.example.com/tool:1\n`,
      );
    }
  });
});
