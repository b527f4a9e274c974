// The command-line contract, against a real registry behind the fault proxy: --version, usage
// errors exiting 2 in one style, paths the user named that do not exist, a closed stdout pipe,
// SIGINT and SIGTERM during a pull with bars forced on (the terminal restored, exit 130/143,
// the partial kept and resumed), progress rows for blobs already present, plain progress lines
// during a slow blob, -o json/yaml shapes, images -q/--digests and digest prefixes, a dry run
// whose lines add up, shell completion, and hostile strings (a registry's error body, a stored
// name, a pod file) escaped before they reach a terminal.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { runCli, type CliResult } from './run-cli.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const ESC = '\x1b';

/** Spawns the CLI and hands the child to `drive` (to read its output, signal it, close its pipes). */
function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): { child: ReturnType<typeof spawn>; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('kimg command-line contract', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let app: BuiltImage;
  let big: BuiltImage;
  let store: string;
  const ref = (repoTag: string) => `${proxy.host}/${repoTag}`;
  const env = (extra: Record<string, string> = {}) => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    XDG_STATE_HOME: join(tmp.path, 'xdg-state'),
    KIMG_STORE: '',
    KIMG_HOSTS_DIR: join(tmp.path, 'no-hosts'), // empty: no host configuration of this machine
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    ...extra,
  });
  const kimg = (args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { env: env(extra) });
  const kimgHere = async (args: readonly string[], stdin = ''): Promise<CliResult> => {
    const [stdout, stderr] = [new PassThrough(), new PassThrough()];
    const out: string[] = [];
    const err: string[] = [];
    stdout.setEncoding('utf8').on('data', (s: string) => out.push(s));
    stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
    const status = await main(args, {
      stdout,
      stderr,
      stdin: Readable.from([stdin]),
      env: { ...process.env, ...env() },
    });
    return { status, stdout: out.join(''), stderr: err.join('') };
  };
  const lines = (text: string) => text.trimEnd().split('\n');

  before(async () => {
    tmp = await makeTempDir('kimg-cli-contract-');
    store = join(tmp.path, 'store');
    await mkdir(join(tmp.path, 'no-hosts'));
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    [app, big] = await Promise.all([
      buildImage({ layers: [3_000, 40_000], seed: 'contract-app' }),
      buildImage({ layers: [3_000_000], seed: 'contract-big' }),
    ]);
    await Promise.all([pushImage(app, registry, 'c/app:v1'), pushImage(big, registry, 'c/big:v1')]);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([app?.remove(), big?.remove()]);
    await tmp?.remove();
  });

  test("--version prints package.json's version", async () => {
    const { status, stdout, stderr } = await kimg(['--version']);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, `${VERSION}\n`);
  });

  test('usage errors exit 2 with one line "kimg: …" on every command; named paths must exist', async () => {
    const pod = join(tmp.path, 'pod.yaml');
    await writeFile(
      pod,
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: x}]\n',
    );
    const typo = join(tmp.path, 'typo');
    await writeFile(join(tmp.path, 'none.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n');
    const cases: [string[], RegExp][] = [
      [['ref', '-o', 'xml', 'busybox'], /-o\/--output must be one of text, json, yaml, got "xml"/],
      [['images', '-o', 'table'], /-o\/--output must be one of/],
      [['pull', '--progress', 'fancy', 'busybox'], /--progress must be one of auto, tty, plain, json, quiet/],
      [['pull', '--concurrency', '0', 'busybox'], /--concurrency must be a whole number from 1 to 64, got "0"/],
      [['pull', '--progress-interval', '5', 'busybox'], /--progress-interval must be a duration such as 30s/],
      [['pull', '--creds', 'alice', 'busybox'], /--creds must be USER:PASSWORD/],
      [['ensure', '-f', pod, '--watch', '--watch-timeout', '5 minutes'], /--watch-timeout must be a duration/],
      [['ensure', '-f', join(tmp.path, 'absent.yaml')], /-f .*absent\.yaml: no such file or directory/],
      [['ensure', '-f', pod, '--config', typo], /--config .*typo: no such file or directory/],
      [['ensure', '-f', join(tmp.path, 'none.yaml')], /no Pod or workload in .*none\.yaml/],
      [['pin', '--timeout', '30', '-f', pod], /--timeout must be a duration such as 30s/],
      [['webhook', 'manifests', '--image', 'x', '--replicas', 'two'], /--replicas must be a whole number/],
      [['fsck', '--store', typo], /--store: no image store at .*typo/],
      [['gc', '--store', typo], /--store: no image store at .*typo/],
      [['images', '--store', typo], /--store: no image store at .*typo/],
      [['pull', '--authfile', join(tmp.path, 'nope.json'), 'busybox'], /--authfile .*nope\.json: no such file/],
      [['pull', '--hosts-dir', typo, 'busybox'], /--hosts-dir .*typo: no such file or directory/],
      [['pull', '--hosts-dir', pod, 'busybox'], /--hosts-dir .*pod\.yaml: is not a directory/],
      [['pull', '--ca-file', typo, 'busybox'], /--ca-file .*typo: no such file/],
      [['completion', 'tcsh'], /shell must be one of bash, zsh, fish/],
      [['pull', '--bogus', 'busybox'], /unknown option '--bogus'/],
      [['nosuch'], /unknown command 'nosuch'/],
    ];
    for (const [args, message] of cases) {
      const { status, stdout, stderr } = await kimgHere(args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, /^kimg: /, args.join(' '));
      assert.match(stderr, message, args.join(' '));
      assert.equal(stdout, '', args.join(' '));
    }
    assert.equal(existsSync(typo), false, 'a store was created at a path that was a typo');
  });

  test('a closed standard output is a normal end: exit 0, nothing on stderr (ref ARGS | head, ref - | head)', async () => {
    for (const [args, stdin] of [
      [['ref', ...Array.from({ length: 3000 }, (_, i) => `img${i}`)], ''],
      [['ref', '-'], Array.from({ length: 50_000 }, (_, i) => `img${i}\n`).join('')],
    ] as const) {
      const run = spawnCli(args, env());
      run.child.stdin?.on('error', () => undefined).end(stdin);
      await until(() => run.stdout().length > 0, 'the first output');
      run.child.stdout?.destroy();
      assert.equal(await run.exit, 0, run.stderr());
      assert.equal(run.stderr(), '');
    }
  });

  test('SIGINT during a pull with bars: terminal restored, partial kept, exit 130; the next pull resumes; SIGTERM exits 143', async () => {
    const layer = big.images[0]?.layers[0];
    assert.ok(layer);
    const slow = (r: { path: string }) => (r.path.endsWith(layer.digest) ? fault.trickle(200_000) : undefined);
    proxy.setRule(slow);
    try {
      const run = spawnCli(['pull', '--progress', 'tty', '--store', store, ref('c/big:v1')], env());
      await until(() => /Downloading/.test(run.stdout()), 'the layer is downloading');
      run.child.kill('SIGINT');
      assert.equal(await run.exit, 130, run.stderr());
      assert.ok(run.stdout().includes(`${ESC}[?25l`), 'the bars hid the cursor');
      assert.ok(
        run.stdout().endsWith(`${ESC}[?25h`) || run.stdout().includes(`${ESC}[?25h`),
        'the cursor is shown again',
      );
      assert.match(
        run.stderr(),
        new RegExp(
          `kimg: interrupted \\(SIGINT\\): partial downloads are kept in ${store} and resume on the next pull`,
        ),
      );

      const again = spawnCli(['pull', '--progress', 'plain', '--store', store, ref('c/big:v1')], env());
      await until(() => /Resuming at/.test(again.stdout()), 'the second pull resumes the partial');
      again.child.kill('SIGTERM');
      assert.equal(await again.exit, 143, again.stderr());
      assert.match(again.stderr(), /interrupted \(SIGTERM\)/);
    } finally {
      proxy.reset();
    }
  });

  test('plain progress prints a line while a blob downloads; bars give blobs already present their row', async () => {
    const layer = big.images[0]?.layers[0];
    assert.ok(layer);
    proxy.setRule((r) => (r.path.endsWith(layer.digest) ? fault.trickle(1_000_000) : undefined));
    let plain: CliResult;
    try {
      plain = await kimg(['pull', '--progress-interval', '0s', '--store', store, ref('c/big:v1')]);
    } finally {
      proxy.reset();
    }
    assert.equal(plain.status, 0, plain.stderr);
    const short = layer.digest.slice(7, 19);
    assert.match(plain.stdout, new RegExp(`^${short}: Downloading \\S+ of 3\\.00MB \\(\\S+/s\\)$`, 'm'));

    const bars = await kimg(['pull', '--progress', 'tty', '--store', store, ref('c/big:v1')]);
    assert.equal(bars.status, 0, bars.stderr);
    assert.match(bars.stdout, new RegExp(`${short}: Already exists`));
  });

  test('pull -o json prints one record; images -o json is JSON Lines, -o yaml a YAML stream; -q and --digests; webhook manifests -o json', async () => {
    const pulled = await kimgHere(['pull', '-o', 'json', '--store', store, ref('c/app:v1')]);
    assert.equal(pulled.status, 0, pulled.stderr);
    const record = JSON.parse(pulled.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record), [
      'name',
      'digest',
      'mediaType',
      'size',
      'manifests',
      'blobs',
      'blobsFetched',
      'bytesReceived',
      'upToDate',
      'ms',
    ]);
    assert.equal(record['digest'], app.digest);
    assert.equal(record['blobsFetched'], 3);

    const json = await kimgHere(['images', '-o', 'json', '--store', store]);
    const listed = lines(json.stdout).map((l) => JSON.parse(l) as { name: string; digest: string });
    assert.deepEqual(listed.map((i) => i.name).sort(), [ref('c/app:v1'), ref('c/big:v1')].sort());
    const yaml = await kimgHere(['images', '-o', 'yaml', '--store', store]);
    const docs = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as { name: string; digest: string });
    assert.deepEqual(docs, JSON.parse(`[${lines(json.stdout).join(',')}]`));

    const quiet = await kimgHere(['images', '-q', '--store', store]);
    assert.deepEqual(lines(quiet.stdout).sort(), listed.map((i) => i.digest.slice(7, 19)).sort());
    const digests = await kimgHere(['images', '--digests', '--store', store]);
    assert.ok(digests.stdout.includes(app.digest), digests.stdout);

    const objects = await kimgHere(['webhook', 'manifests', '--image', ref('c/app:v1'), '-o', 'json']);
    assert.equal(objects.status, 0, objects.stderr);
    const kinds = lines(objects.stdout).map((l) => (JSON.parse(l) as { kind: string }).kind);
    assert.ok(kinds.includes('Deployment') && kinds.includes('MutatingWebhookConfiguration'), kinds.join(' '));
  });

  test('the short digest images prints is accepted by inspect and rmi; a prefix of two digests is an error', async () => {
    const short = app.digest.slice(7, 19);
    const shown = await kimgHere(['inspect', '-o', 'json', '--store', store, short]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { name: string }).name, ref('c/app:v1'));

    // Two entries whose digests share a prefix, written as another tool would write index.json.
    const twins = join(tmp.path, 'twins');
    await mkdir(join(twins, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(twins, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const entry = (digit: string, name: string) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:abcd${digit.repeat(60)}`,
      size: 100,
      annotations: { 'io.containerd.image.name': name },
    });
    await writeFile(
      join(twins, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [entry('1', 'x.io/a:1'), entry('2', 'x.io/b:1')] }),
    );
    for (const command of ['inspect', 'rmi']) {
      const ambiguous = await kimgHere([command, '--store', twins, 'abcd']);
      assert.equal(ambiguous.status, 1, ambiguous.stderr);
      assert.match(ambiguous.stderr, /abcd is a prefix of 2 image digests .*: give more digits \(ErrImageAmbiguous\)/);
    }

    const removed = await kimgHere(['rmi', '-o', 'json', '--store', store, short]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), { image: short, untagged: [ref('c/app:v1')], error: null });
  });

  test('gc --thresholds --dry-run: the blobs it would remove are those of the images it would remove', async () => {
    const pulled = await kimgHere(['pull', '-q', '--store', store, ref('c/app:v1')]);
    assert.equal(pulled.status, 0, pulled.stderr);
    const dry = await kimgHere([
      'gc',
      '--store',
      store,
      '--thresholds',
      '--dry-run',
      '--root-dir',
      join(tmp.path, 'kubelet'),
      '--minimum-image-gc-age',
      '0s',
      '--capacity',
      '100000000',
      '--available',
      '1000',
      '--in-use',
      ref('c/big:v1'),
    ]);
    assert.match(dry.stdout, /^WOULD REMOVE\s+space\s+sha256:/m);
    // c/app:v1's index entry, its config and two layers; nothing of the image in use.
    assert.match(dry.stdout, /^Would remove 4 blobs \(/m);
    for (const digest of [app.digest, ...(app.images[0]?.layers.map((l) => l.digest) ?? [])])
      assert.match(dry.stdout, new RegExp(`^Would remove ${digest} `, 'm'));
    assert.ok(existsSync(join(store, 'blobs', 'sha256', app.digest.slice(7))), 'a dry run removed a blob');
  });

  test('completion scripts for bash, zsh and fish name every command; bash parses the script', async () => {
    const bash = await kimgHere(['completion', 'bash']);
    assert.equal(bash.status, 0, bash.stderr);
    for (const command of ['pull', 'images', 'inspect', 'pin', 'lint', 'webhook', 'serve', 'completion'])
      assert.ok(bash.stdout.includes(command), command);
    assert.ok(bash.stdout.includes('complete -o default -F _kimg kimg'));
    const parsed = spawnSync('bash', ['-n'], { input: bash.stdout, encoding: 'utf8' });
    assert.equal(parsed.status, 0, parsed.stderr);
    const completed = spawnSync(
      'bash',
      ['-c', `${bash.stdout}\nCOMP_WORDS=(kimg pull --pro); COMP_CWORD=2; _kimg; echo "\${COMPREPLY[@]}"`],
      { encoding: 'utf8' },
    );
    assert.equal(completed.stdout.trim(), '--progress --progress-interval');
    const zsh = await kimgHere(['completion', 'zsh']);
    assert.match(zsh.stdout, /^#compdef kimg\n/);
    const fish = await kimgHere(['completion', 'fish']);
    assert.match(fish.stdout, /^complete -c kimg -n .* -a pull -d /m);
  });

  test('hostile strings are escaped: a registry error body, a stored name, a pod file', async () => {
    const title = `${ESC}]0;pwned\x07${ESC}[2J`;
    proxy.setRule((r) =>
      r.path.includes('/c/evil/')
        ? fault.status(
            404,
            { 'content-type': 'application/json' },
            JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: `no such thing ${title}` }] }),
          )
        : undefined,
    );
    let pulled: CliResult;
    try {
      pulled = await kimgHere(['pull', '--store', store, ref('c/evil:v1')]);
    } finally {
      proxy.reset();
    }
    assert.equal(pulled.status, 1);
    assert.ok(!pulled.stderr.includes(ESC) && !pulled.stderr.includes('\x07'), JSON.stringify(pulled.stderr));

    // A stored name another tool wrote, with a terminal escape in it.
    const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    const first = index.manifests[0];
    assert.ok(first);
    first.annotations = { 'org.opencontainers.image.ref.name': `evil${ESC}[31m\u202eled` };
    await writeFile(join(store, 'index.json'), JSON.stringify(index));
    const listed = await kimgHere(['images', '--store', store]);
    assert.ok(!listed.stdout.includes(ESC) && !listed.stdout.includes('\u202e'), JSON.stringify(listed.stdout));
    assert.ok(listed.stdout.includes('evil\\x1b[31m\\u202eled'), listed.stdout);
    const json = await kimgHere(['images', '-o', 'json', '--store', store]);
    assert.ok(!json.stdout.includes(ESC) && !json.stdout.includes('\u202e'));
    assert.ok(lines(json.stdout).some((l) => (JSON.parse(l) as { name: string }).name.includes(`${ESC}[31m`)));
    const yaml = await kimgHere(['images', '-o', 'yaml', '--store', store]);
    assert.ok(!yaml.stdout.includes(ESC) && !yaml.stdout.includes('\u202e'));
    assert.ok(parseAllDocuments(yaml.stdout).some((d) => JSON.stringify(d.toJS()).includes('\\u001b[31m\u202eled')));

    // A pod file whose image and container name carry escapes (YAML's "\e").
    const pod = join(tmp.path, 'evil-pod.yaml');
    await writeFile(
      pod,
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: "a\\e]0;x\\a"\n    image: "nginx\\e[2J"\n',
    );
    const linted = await kimgHere(['lint', '-f', pod]);
    assert.equal(linted.status, 1);
    assert.ok(!linted.stdout.includes(ESC) && !linted.stderr.includes(ESC), JSON.stringify(linted));
    assert.match(linted.stdout, /evil-pod\.yaml:7:12: spec\.containers\[0\]\.image: invalid-reference: nginx\\x1b\[2J/);
    const checked = await kimgHere(['pin', '--check', '-f', pod]);
    assert.ok(!checked.stdout.includes(ESC), JSON.stringify(checked.stdout));
  });
});
