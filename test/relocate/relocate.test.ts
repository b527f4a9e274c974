// kimg relocate against real parts: two Distribution registries over verified TLS (the source,
// and a destination behind htpasswd), a Deployment with an init container, a CronJob and a Pod
// List referencing images pushed to the source. The relocated manifests then pass `kimg ensure
// --dry-run` against the destination, as a node would pull them. The CLI runs in-process
// (no interpreter start-up per run) with its own output streams.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BasicCredential } from '../../src/credentials/index.ts';
import { ManifestSource, parseImageLock, relocate, type RelocateEvent } from '../../src/manifests/index.ts';
import { loadCredentialSource, openRegistry } from '../../src/pull/index.ts';
import { main } from '../../src/cli/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  fault,
  type BuiltImage,
  type FaultProxy,
  type PushedImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';

interface Result {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function kimgHere(args: readonly string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({ write: (chunk: Buffer, _enc, done) => (append(chunk.toString('utf8')), done()) });
  const io = {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
    env,
  };
  const status = await main(args, io);
  return { status, stdout, stderr };
}

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);

describe('kimg relocate', { skip }, () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let proxy: FaultProxy;
  let app: BuiltImage;
  let tool: BuiltImage;
  let pushedApp: PushedImage;
  let pushedTool: PushedImage;
  let tmp: TempDir;
  let flags: string[];
  let env: NodeJS.ProcessEnv;
  let files: { dir: string; deploy: string; jobs: string; secret: string };
  let originals: Map<string, string>;
  let relocated: string;
  const user = { user: 'mover', password: 'm0ve-pass' };

  const kimg = (...args: string[]) => kimgHere([...args, ...flags], env);
  const to = () => `${dst.host}/mirror`;

  before(async () => {
    [src, dst, app, tool, tmp] = await Promise.all([
      startRegistry({ tls: true }),
      // Relative upload locations, so that uploads through the fault proxy stay on the proxy.
      startRegistry({ tls: true, htpasswd: [user], relativeUrls: true }),
      buildImage({ layers: [30_000, 60_000], platforms: ['linux/amd64', 'linux/arm64'], seed: 'relocate-app' }),
      buildImage({ layers: [20_000], seed: 'relocate-tool' }),
      makeTempDir('kimg-relocate-test-'),
    ]);
    [pushedApp, pushedTool] = await Promise.all([
      pushImage(app, src, 'team/app:v1'),
      pushImage(tool, src, 'tools/busy:1.0'),
    ]);
    await pushImage(tool, src, 'other/app:v1');
    // The destination again, through a proxy that can fail requests (its certificate is the
    // destination's, valid for 127.0.0.1).
    const [certPem, keyPem] = await Promise.all([
      readFile(join(dst.dir, 'tls', 'server.crt'), 'utf8'),
      readFile(join(dst.dir, 'tls', 'server.key'), 'utf8'),
    ]);
    proxy = await startFaultProxy({ upstream: dst.url, ca: dst.caPem as string, tls: { certPem, keyPem } });
    const auth = Buffer.from(`${user.user}:${user.password}`).toString('base64');
    const config = join(tmp.path, 'config.json');
    await writeFile(config, JSON.stringify({ auths: { [dst.host]: { auth }, [proxy.host]: { auth } } }));
    env = {
      ...process.env,
      HOME: tmp.path,
      XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
      KIMG_STORE: '',
      KIMG_HOSTS_DIR: '',
      DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
      REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    };
    flags = ['--authfile', config, '--ca-file', src.caFile as string, '--ca-file', dst.caFile as string];
    flags.push('--tls-verify-loopback');

    const dir = join(tmp.path, 'manifests');
    await mkdir(dir);
    files = {
      dir,
      deploy: join(dir, 'deploy.yaml'),
      jobs: join(dir, 'jobs.yaml'),
      secret: join(tmp.path, 'secret.yaml'),
    };
    await writeFile(
      files.deploy,
      `# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep this comment
spec:
  template:
    spec:
      imagePullSecrets: [{name: regcred}]
      initContainers:
        - name: tool
          image: "${src.host}/tools/busy:1.0"
      containers:
        - name: app
          image: ${src.host}/team/app:v1   # relocated by kimg
`,
    );
    await writeFile(
      files.jobs,
      `apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          imagePullSecrets: [{name: regcred}]
          restartPolicy: Never
          containers: [{name: job, image: '${src.host}/team/app:v1'}]
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: debug}
  spec:
    imagePullSecrets: [{name: regcred}]
    containers:
    - name: shell
      image: ${src.host}/tools/busy@${pushedTool.digest}
`,
    );
    await writeFile(
      files.secret,
      `apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"${dst.host}": {"username": "${user.user}", "password": "${user.password}"}}}'
`,
    );
    originals = new Map([
      [files.deploy, await readFile(files.deploy, 'utf8')],
      [files.jobs, await readFile(files.jobs, 'utf8')],
    ]);
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop(), app?.remove(), tool?.remove(), tmp?.remove()]);
  });

  /** The two files as relocation must print them: only the image scalars' characters differ. */
  const expected = () => {
    const appAt = `${to()}/team/app:v1@${pushedApp.digest}`;
    const deploy = (originals.get(files.deploy) as string)
      .replace(`"${src.host}/tools/busy:1.0"`, `"${to()}/tools/busy:1.0@${pushedTool.digest}"`)
      .replace(`image: ${src.host}/team/app:v1 `, `image: ${appAt} `);
    const jobs = (originals.get(files.jobs) as string)
      .replace(`'${src.host}/team/app:v1'`, `'${appAt}'`)
      .replace(`${src.host}/tools/busy@`, `${to()}/tools/busy@`);
    return `${deploy}---\n${jobs}`;
  };

  test('a target that is not REGISTRY[/PREFIX] is a usage error naming it', async () => {
    const r = await kimg('relocate', '-f', files.dir, '--to', 'mirror');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--to "mirror": "mirror" is not a registry host/);
    const tagged = await kimg('relocate', '-f', files.dir, '--to', `${dst.host}/mirror:v1`);
    assert.equal(tagged.status, 2, tagged.stderr);
    assert.match(tagged.stderr, /--to ".*\/mirror:v1"/);
  });

  test('two sources landing in one repository: an error naming both, before anything is copied', async () => {
    const both = join(tmp.path, 'collide.yaml');
    await writeFile(
      both,
      `apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec:\n  containers:\n  - {name: a, image: ${src.host}/team/app:v1}\n  - {name: b, image: ${src.host}/other/app:v1}\n`,
    );
    const r = await kimg('relocate', '--flatten', '-v', '-f', both, '--to', `${dst.host}/flat`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `${src.host}/team/app and ${src.host}/other/app would both be copied to ${dst.host}/flat/app.*\\(ErrRelocateCollision\\)`,
      ),
    );
    assert.doesNotMatch(r.stderr, /GET|HEAD|POST|PUT/, 'no registry was asked');
  });

  test('--check before: every image missing, exit 1, nothing copied', async () => {
    const r = await kimg('relocate', '--check', '-f', files.dir, '--to', to());
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4, r.stdout);
    assert.match(
      lines[0] as string,
      new RegExp(
        `^${files.deploy}:12:18: spec\\.template\\.spec\\.initContainers\\[0\\]\\.image: ${src.host}/tools/busy:1\\.0 -> ${to()}/tools/busy:1\\.0@${pushedTool.digest}: missing$`,
      ),
    );
    for (const line of lines) assert.match(line, /: missing$/);
    assert.match(r.stderr, /4 of 4 images missing/);
  });

  test('relocates: copies every platform, prints the manifests with only the image scalars changed', async () => {
    const r = await kimg('relocate', '-f', files.dir, '--to', to());
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected());
    relocated = r.stdout;
    assert.match(
      r.stderr,
      new RegExp(`${src.host}/team/app:v1 -> ${to()}/team/app:v1@${pushedApp.digest}: \\d+ pushed`),
    );
    // The whole index went: each platform's manifest is at the destination.
    for (const p of app.images) {
      const at = await kimg('resolve', `${to()}/team/app@${p.manifest.digest}`);
      assert.equal(at.status, 0, at.stderr);
    }
    // Files on disk are untouched without -w.
    assert.equal(await readFile(files.deploy, 'utf8'), originals.get(files.deploy));
  });

  test('the relocated manifests pass kimg ensure --dry-run against the destination', async () => {
    const out = join(tmp.path, 'relocated.yaml');
    await writeFile(out, relocated);
    const r = await kimgHere(
      [
        '--store',
        join(tmp.path, 'node', 'store'),
        'ensure',
        '--dry-run',
        '-o',
        'json',
        '-f',
        out,
        '-f',
        files.secret,
        '--no-node-credentials',
        '--root-dir',
        join(tmp.path, 'node', 'root'),
        '--ca-file',
        dst.caFile as string,
      ],
      env,
    );
    const report = JSON.parse(r.stdout || '{}') as { ok?: boolean; pods?: { containers: unknown[] }[] };
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(report.ok, true);
    assert.equal(
      report.pods?.reduce((n, p) => n + p.containers.length, 0),
      4,
      r.stdout,
    );
  });

  test('--check after: every image present (exit 0); on the relocated output: in place', async () => {
    const r = await kimg('relocate', '--check', '-f', files.dir, '--to', to());
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.match(/: present$/gm)?.length, 4, r.stdout);
    const again = await kimgHere(['relocate', '--check', '-f', '-', '--to', to(), ...flags], env, relocated);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.match(/: in place$/gm)?.length, 4, again.stdout);
  });

  test('idempotent: again from the sources uploads nothing; on its own output changes nothing', async () => {
    const r = await kimg('relocate', '-v', '-f', files.dir, '--to', to());
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, relocated);
    assert.match(r.stderr, /: up to date/);
    assert.match(
      r.stderr,
      new RegExp(`HEAD https://${dst.host}/v2/mirror/team/app/manifests/v1 200`),
      'the trace is on',
    );
    const writes = r.stderr.split('\n').filter((l) => /\b(POST|PUT|PATCH)\b/.test(l));
    assert.deepEqual(writes, [], 'no upload and no manifest PUT');
    const own = await kimgHere(['relocate', '-v', '-f', '-', '--to', to(), ...flags], env, relocated);
    assert.equal(own.status, 0, own.stderr);
    assert.equal(own.stdout, relocated, 'byte for byte');
    assert.doesNotMatch(own.stderr, /\b(GET|HEAD|POST|PUT|PATCH)\b/, 'images in place need no request');
    assert.match(own.stderr, /: in place/);
  });

  test('-w rewrites the files in place and --lock records source, digest and destination', async () => {
    const dir = join(tmp.path, 'write');
    await mkdir(dir);
    const deploy = join(dir, 'deploy.yaml');
    const jobs = join(dir, 'jobs.yaml');
    await writeFile(deploy, originals.get(files.deploy) as string);
    await writeFile(jobs, originals.get(files.jobs) as string);
    const lockFile = join(tmp.path, 'relocate.lock');
    const r = await kimg('relocate', '-w', '--lock', lockFile, '-f', deploy, '-f', jobs, '--to', to());
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /deploy\.yaml: relocated 2 images/);
    assert.equal(`${await readFile(deploy, 'utf8')}---\n${await readFile(jobs, 'utf8')}`, relocated);
    const lock = parseImageLock(await readFile(lockFile, 'utf8'), lockFile);
    assert.equal(lock.resolve, 'index');
    assert.deepEqual(lock.images, [
      {
        ref: `${src.host}/team/app:v1`,
        digest: pushedApp.digest,
        destination: `${to()}/team/app:v1@${pushedApp.digest}`,
      },
      {
        ref: `${src.host}/tools/busy:1.0`,
        digest: pushedTool.digest,
        destination: `${to()}/tools/busy:1.0@${pushedTool.digest}`,
      },
      {
        ref: `${src.host}/tools/busy@${pushedTool.digest}`,
        digest: pushedTool.digest,
        destination: `${to()}/tools/busy@${pushedTool.digest}`,
      },
    ]);
  });

  test('an image that cannot be resolved: named with file:line:column, nothing copied, nothing rewritten', async () => {
    const dir = join(tmp.path, 'broken');
    await mkdir(dir);
    const good = join(dir, 'a.yaml');
    const bad = join(dir, 'b.yaml');
    const goodText = `apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, image: ${src.host}/team/app:v1}]\n`;
    const badText = `apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: b\n    image: ${src.host}/team/app:v9\n`;
    await writeFile(good, goodText);
    await writeFile(bad, badText);
    const r = await kimg('relocate', '-w', '-v', '-f', dir, '--to', `${dst.host}/broken`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`${bad}:7:12: spec\\.containers\\[0\\]\\.image: ${src.host}/team/app:v9: .*not found|unknown`),
    );
    assert.match(r.stderr, /nothing was rewritten/);
    assert.match(r.stderr, /HEAD https:\/\/\S+\/v2\/team\/app\/manifests\/v9 404/, 'the trace is on');
    assert.doesNotMatch(r.stderr, /\b(POST|PUT|PATCH)\b/, 'nothing was copied');
    assert.equal(await readFile(good, 'utf8'), goodText);
    assert.equal(await readFile(bad, 'utf8'), badText);
  });

  test('--platform copies one manifest and pins it; --keep-host keeps the source host in the path', async () => {
    const r = await kimg(
      'relocate',
      '--platform',
      'linux/arm64',
      '--keep-host',
      '-o',
      'json',
      '-f',
      files.deploy,
      '--to',
      `${dst.host}/plat`,
    );
    assert.equal(r.status, 0, r.stderr);
    const arm = app.images.find((p) => p.platformString === 'linux/arm64')?.manifest.digest;
    const records = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; relocated: string });
    assert.deepEqual(
      records.map((x) => x.relocated),
      [
        `${dst.host}/plat/${src.host.replace(':', '_')}/tools/busy:1.0@${pushedTool.digest}`,
        `${dst.host}/plat/${src.host.replace(':', '_')}/team/app:v1@${arm}`,
      ],
    );
  });

  test('a copy the destination refuses: -w rewrites nothing, the image is named with its position', async () => {
    const dir = join(tmp.path, 'faulty');
    await mkdir(dir);
    const deploy = join(dir, 'deploy.yaml');
    await writeFile(deploy, originals.get(files.deploy) as string);
    proxy.setRule((request) =>
      request.method === 'PUT' && request.path.startsWith('/v2/faulty/team/app/manifests/')
        ? fault.status(
            400,
            { 'content-type': 'application/json' },
            '{"errors":[{"code":"MANIFEST_INVALID","message":"refused by the test"}]}',
          )
        : undefined,
    );
    try {
      const r = await kimg('relocate', '-w', '-f', deploy, '--to', `${proxy.host}/faulty`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`${deploy}:15:18: spec\\.template\\.spec\\.containers\\[0\\]\\.image: ${src.host}/team/app:v1: .*`),
      );
      assert.match(r.stderr, /nothing was rewritten/);
      assert.equal(await readFile(deploy, 'utf8'), originals.get(files.deploy));
      assert.ok(
        proxy.requests.some((q) => q.method === 'PUT' && q.status === 400),
        `${r.stderr}\n${proxy.requests.map((q) => `${q.method} ${q.path} ${q.status}`).join('\n')}`,
      );
    } finally {
      proxy.setRule(undefined);
    }
  });

  test('library: relocate() reports events, and an aborted signal stops it before any copy', async () => {
    const registry = openRegistry({
      caPems: [src.caPem as string, dst.caPem as string],
      credentials: await loadCredentialSource({
        explicit: { [dst.host]: new BasicCredential(user.user, user.password) },
        env: {},
      }),
    });
    try {
      const source = ManifestSource.parse(
        'pod.yaml',
        `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: ${src.host}/tools/busy:1.0}]\n`,
      );
      const events: RelocateEvent['type'][] = [];
      const report = await relocate([source], {
        registry,
        to: `${dst.host}/lib`,
        outputFormat: 'digest-only',
        onEvent: (e) => events.push(e.type),
      });
      assert.deepEqual(report.failures, []);
      assert.match(report.files[0]?.text ?? '', new RegExp(`image: ${dst.host}/lib/tools/busy@${pushedTool.digest}`));
      assert.equal(events[0], 'planned');
      assert.ok(events.includes('copy'));
      assert.equal(events.at(-1), 'copied');
      const stopped = new AbortController();
      stopped.abort(new Error('stop'));
      await assert.rejects(relocate([source], { registry, to: `${dst.host}/never`, signal: stopped.signal }), /stop/);
    } finally {
      await registry.close();
    }
  });
});
