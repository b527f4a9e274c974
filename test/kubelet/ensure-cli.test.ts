// `kimg ensure` and `kimg gc --thresholds` against real registries (the preflight as a child
// process, the rest in-process to keep the suite fast): a private registry needing an
// imagePullSecret (with and without it, and the preflight finding the missing secret), the
// describe output and exit status, JSON output, --watch under the back-off, and the kubelet's
// image GC over the store.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { runCli, type CliResult } from '../cli/run-cli.ts';
import { main } from '../../src/cli/index.ts';

/** The CLI in this process (no interpreter start-up), with its own output streams. */
async function runInProcess(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({ write: (chunk: Buffer, _enc, done) => (append(chunk.toString('utf8')), done()) });
  const io = { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), stdin: Readable.from([]), env };
  const status = await main(args, io);
  return { status, stdout, stderr };
}

const skip = requireTools(['docker-registry', 'skopeo']);
const alice = { user: 'alice', password: 's3cret' };

describe('kimg ensure and kimg gc --thresholds', { skip }, () => {
  let registry: RunningRegistry;
  let privateRegistry: RunningRegistry;
  let tmp: TempDir;
  let app: BuiltImage;
  let n = 0;
  let files: { pod: string; secret: string; wrong: string; never: string };

  const env = () => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    XDG_STATE_HOME: join(tmp.path, 'xdg-state'),
    KIMG_STORE: '',
    KIMG_KUBELET_ROOT_DIR: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
  });
  /** A fresh node (store and kubelet root dir) per call unless one is given; `spawn` runs the real binary. */
  const kimg = (args: readonly string[], node = `node-${n++}`, spawn = false): Promise<CliResult> => {
    const argv = [
      '--store',
      join(tmp.path, node, 'store'),
      ...args,
      ...(args[0] === 'ensure' || args[0] === 'gc' ? ['--root-dir', join(tmp.path, node, 'root')] : []),
    ];
    return spawn ? runCli(argv, { env: env() }) : runInProcess(argv, { ...process.env, ...env() });
  };

  before(async () => {
    tmp = await makeTempDir('kimg-ensure-cli-');
    [registry, privateRegistry] = await Promise.all([startRegistry(), startRegistry({ htpasswd: [alice] })]);
    app = await buildImage({ layers: [2_000], seed: 'ensure-cli' });
    await Promise.all([
      pushImage(app, registry, 'team/app:v1'),
      pushImage(app, privateRegistry, 'team/private:v1', { creds: `${alice.user}:${alice.password}` }),
    ]);
    files = {
      pod: join(tmp.path, 'pod.yaml'),
      secret: join(tmp.path, 'secret.yaml'),
      wrong: join(tmp.path, 'wrong.yaml'),
      never: join(tmp.path, 'never.yaml'),
    };
    await writeFile(
      files.pod,
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      imagePullSecrets: [{name: regcred}]
      initContainers: [{name: init, image: ${registry.host}/team/app:v1}]
      containers: [{name: app, image: ${privateRegistry.host}/team/private:v1}]
`,
    );
    await writeFile(
      files.secret,
      `apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"${privateRegistry.host}": {"username": "${alice.user}", "password": "${alice.password}"}}}'
`,
    );
    await writeFile(
      files.wrong,
      `kind: Pod\nmetadata: {name: wrong}\nspec:\n  containers: [{name: app, image: ${registry.host}/team/app:wrong}]\n`,
    );
    await writeFile(
      files.never,
      `kind: Pod\nmetadata: {name: never}\nspec:\n  containers: [{name: app, image: ${registry.host}/team/app:v1, imagePullPolicy: Never}]\n`,
    );
  });

  after(async () => {
    await Promise.all([registry?.stop(), privateRegistry?.stop()]);
    await Promise.all([app?.remove(), tmp?.remove()]);
  });

  test('pulls every image with the imagePullSecret and exits 0, describing the pod', async () => {
    const result = await kimg(['ensure', '-f', files.pod, '-f', files.secret, '--no-node-credentials']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^Name:\s+deployment\/web$/m);
    assert.match(result.stdout, /^Init Containers:\n {2}init:\n/m);
    assert.match(
      result.stdout,
      new RegExp(
        `Normal\\s+Pulled\\s+\\d+s\\s+kubelet\\s+Successfully pulled image "${privateRegistry.host}/team/private:v1" in \\S+ \\(\\S+ including waiting\\)\\. Image size: \\d+ bytes\\.`,
      ),
    );
    assert.equal((result.stdout.match(/Image Ready:\s+True/g) ?? []).length, 2);
  });

  test('without the secret: FailedToRetrieveImagePullSecret, ErrImagePull with the registry text, exit 1', async () => {
    const result = await kimg(['ensure', '-f', files.pod, '--no-node-credentials']);
    assert.equal(result.status, 1);
    assert.match(
      result.stdout,
      /Warning\s+FailedToRetrieveImagePullSecret\s+\d+s\s+kubelet\s+Unable to retrieve some image pull secrets \(regcred\); attempting to pull the image may not succeed\./,
    );
    assert.match(
      result.stdout,
      new RegExp(
        `Warning\\s+Failed\\s+\\d+s\\s+kubelet\\s+Failed to pull image "${privateRegistry.host}/team/private:v1": resolve ${privateRegistry.host}/team/private:v1: authentication required or refused at ${privateRegistry.host} \\(HTTP 401\\)`,
      ),
    );
    assert.match(result.stdout, /Warning\s+Failed\s+\d+s\s+kubelet\s+Error: ErrImagePull/);
    assert.match(result.stdout, /^\s+Reason:\s+ErrImagePull$/m);
  });

  test('--dry-run finds the missing imagePullSecret and says how to fix it, pulling nothing', async () => {
    const node = `dry-${n++}`;
    const result = await kimg(['ensure', '--dry-run', '-f', files.pod, '--no-node-credentials'], node, true);
    assert.equal(result.status, 1);
    assert.match(result.stdout, /Deployment default\/web: 1 of 2 containers would fail/);
    assert.match(result.stdout, /container app: .* would FAIL: ErrImagePull/);
    assert.match(result.stdout, /problem: missing-secret/);
    assert.match(
      result.stdout,
      new RegExp(
        `fix:\\s+the pod lists imagePullSecrets regcred but no such Secret exists in namespace default: create it \\(kubectl create secret docker-registry regcred --docker-server=${privateRegistry.host}`,
      ),
    );
    const images = await kimg(['images', '-o', 'json'], node);
    assert.equal(images.stdout, '', 'a preflight stores nothing (images -o json is JSON Lines: none)');

    const ok = await kimg([
      'ensure',
      '--dry-run',
      '-o',
      'json',
      '-f',
      files.pod,
      '-f',
      files.secret,
      '--no-node-credentials',
    ]);
    assert.equal(ok.status, 0, ok.stdout);
    const report = JSON.parse(ok.stdout) as {
      ok: boolean;
      pods: { containers: { action: string; resolved?: { credential: string } }[] }[];
    };
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.pods[0]?.containers.map((c) => `${c.action} ${c.resolved?.credential}`),
      ['pull anonymous', 'pull secret default/regcred'],
    );
  });

  test('Never with an absent image, and JSON output', async () => {
    const result = await kimg(['ensure', '-o', 'json', '-f', files.never]);
    assert.equal(result.status, 1);
    const out = JSON.parse(result.stdout) as {
      ready: boolean;
      pods: {
        containers: { waiting?: { reason: string; message: string } }[];
        events: { reason: string; count: number }[];
      }[];
    };
    assert.equal(out.ready, false);
    assert.deepEqual(out.pods[0]?.containers[0]?.waiting, {
      reason: 'ErrImageNeverPull',
      message: `Container image "${registry.host}/team/app:v1" is not present with pull policy of Never`,
    });
    assert.deepEqual(
      out.pods[0]?.events.map((e) => e.reason),
      ['ErrImageNeverPull', 'Failed'],
    );
  });

  test('--watch shows the back-off window and the next sync, and stops at --watch-timeout', async () => {
    const result = await kimg(['ensure', '--watch', '--watch-timeout', '2s', '-f', files.wrong]);
    assert.equal(result.status, 1);
    assert.match(
      result.stdout,
      /Warning\s+Failed\s+spec\.containers\{app\}\s+Failed to pull image ".*team\/app:wrong": resolve .* manifest unknown/,
    );
    assert.match(result.stdout, /app: back-off 10s, next pull allowed at \d\d:\d\d:\d\d \(in [\d.]+s\)/);
    assert.match(result.stdout, /next sync at \d\d:\d\d:\d\d \(in 1\d(\.\d+)?s\)/);
    assert.match(result.stdout, /stopped watching before every image was ready/);
  });

  test('gc --thresholds removes least recently used images down to the low threshold, never one in use', async () => {
    const node = `gc-${n++}`;
    assert.equal(
      (await kimg(['ensure', '-f', files.pod, '-f', files.secret, '--no-node-credentials'], node)).status,
      0,
    );
    const common = [
      'gc',
      '--thresholds',
      '--minimum-image-gc-age',
      '0s',
      '--capacity',
      '1000000',
      '--available',
      '100000',
    ];
    const inUse = await kimg([...common, '--dry-run', '--in-use', `${registry.host}/team/app:v1`], node);
    assert.equal(inUse.status, 1, 'both names share one imageRef, which is in use: nothing can be freed');
    assert.match(
      inUse.stdout,
      /Image filesystem: 900kB of 1.00MB used \(90%\); thresholds: high 85%, low 80%; would free 100kB/,
    );
    assert.match(inUse.stdout, /KEEP\s+in-use\s+sha256:/);
    assert.match(
      inUse.stdout,
      /FreeDiskSpaceFailed: Failed to garbage collect required amount of images\. Attempted to free 100000 bytes, but only found 0 bytes eligible to free\./,
    );
    const removed = await kimg(common, node);
    assert.match(removed.stdout, /REMOVED\s+space\s+sha256:/);
    assert.match(removed.stdout, /Removed \d+ blobs/);
    const images = await kimg(['images', '-o', 'json'], node);
    assert.equal(images.stdout, '', 'no image left (JSON Lines: none)');
  });
});
