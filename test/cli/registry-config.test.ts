// A node's registry configuration and what -v shows, against real Distribution registries (plain
// HTTP on loopback, one with htpasswd) behind a recording proxy:
// - one loopback rule for the library (Puller), the webhook's resolver and the CLI (`kimg resolve`),
//   and the same refusal everywhere when loopback verification is asked for: "server gave HTTP
//   response to HTTPS client", not OpenSSL's text;
// - `--insecure-registry HOST` treats one more host as loopback ones are treated;
// - host directories read by default ($KIMG_HOSTS_DIR here, /etc/containerd/certs.d and
//   /etc/docker/certs.d on a node), said with --log-level info;
// - `--creds USER --password-stdin` through a real pipe;
// - `-v`: one line per HTTP exchange, URLs without their query.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { RegistryResolver, resolverFromConfig } from '../../src/admission/index.ts';
import { defaultResolverConfig } from '../../src/admission/config.ts';
import { main } from '../../src/cli/index.ts';
import { Puller } from '../../src/pull/index.ts';
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
const PLAIN_HTTP = /server gave HTTP response to HTTPS client/;

describe(
  'registry configuration: the loopback rule, --insecure-registry, host directories, --password-stdin, -v',
  { skip },
  () => {
    let registry: RunningRegistry;
    let locked: RunningRegistry;
    let proxy: FaultProxy;
    let tmp: TempDir;
    let app: BuiltImage;
    const ref = (repoTag: string) => `${proxy.host}/${repoTag}`;
    const env = (extra: Record<string, string> = {}) => ({
      HOME: tmp.path,
      XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
      KIMG_STORE: join(tmp.path, 'store'),
      KIMG_HOSTS_DIR: join(tmp.path, 'empty-hosts-dir'),
      DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
      REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
      XDG_RUNTIME_DIR: tmp.path,
      ...extra,
    });
    const kimg = async (args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> => {
      const [stdout, stderr] = [new PassThrough(), new PassThrough()];
      const out: string[] = [];
      const err: string[] = [];
      stdout.setEncoding('utf8').on('data', (s: string) => out.push(s));
      stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
      const status = await main(args, {
        stdout,
        stderr,
        stdin: Readable.from([]),
        env: { ...process.env, ...env(extra) },
      });
      return { status, stdout: out.join(''), stderr: err.join('') };
    };

    before(async () => {
      tmp = await makeTempDir('kimg-cli-registry-config-');
      await mkdir(join(tmp.path, 'empty-hosts-dir'));
      [registry, locked] = await Promise.all([
        startRegistry(),
        startRegistry({ htpasswd: [{ user: 'alice', password: 'wonder-land-42' }] }),
      ]);
      proxy = await startFaultProxy({ upstream: registry.url });
      app = await buildImage({ layers: [2_000], seed: 'registry-config' });
      await pushImage(app, registry, 'cfg/app:v1');
      await pushImage(app, locked, 'cfg/app:v1', { creds: 'alice:wonder-land-42' });
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([registry?.stop(), locked?.stop()]);
      await app?.remove();
      await tmp?.remove();
    });

    test('a plain-HTTP loopback registry: the library, the webhook resolver and the CLI all resolve it by default', async () => {
      const puller = new Puller({ store: join(tmp.path, 'lib-store') });
      const webhook = new RegistryResolver();
      const configured = await resolverFromConfig(defaultResolverConfig());
      try {
        assert.equal((await puller.resolve(ref('cfg/app:v1'))).descriptor.digest, app.digest);
        assert.equal((await webhook.resolve(ref('cfg/app:v1'))).digest, app.digest);
        assert.equal((await configured.resolve(ref('cfg/app:v1'))).digest, app.digest);
      } finally {
        await Promise.all([puller.close(), webhook.close(), configured.close()]);
      }
      const cli = await kimg(['resolve', ref('cfg/app:v1')]);
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, `${ref('cfg/app:v1')}@${app.digest}\n`);
    });

    test('with loopback verified, all three refuse alike and say the server speaks plain HTTP', async () => {
      const puller = new Puller({ store: join(tmp.path, 'lib-store'), hosts: { insecureLoopback: false } });
      const webhook = new RegistryResolver({ insecureLoopback: false });
      try {
        await assert.rejects(puller.resolve(ref('cfg/app:v1')), PLAIN_HTTP);
        await assert.rejects(webhook.resolve(ref('cfg/app:v1')), PLAIN_HTTP);
      } finally {
        await Promise.all([puller.close(), webhook.close()]);
      }
      const cli = await kimg(['resolve', '--tls-verify-loopback', ref('cfg/app:v1')]);
      assert.equal(cli.status, 1);
      assert.match(cli.stderr, PLAIN_HTTP);
      assert.match(cli.stderr, new RegExp(`--insecure-registry ${proxy.host.replace(/\./g, '\\.')}`));
      assert.doesNotMatch(cli.stderr, /ssl3_get_record|wrong version number/);
    });

    test('--insecure-registry HOST lets that one registry be plain HTTP', async () => {
      const cli = await kimg([
        'resolve',
        '--tls-verify-loopback',
        '--insecure-registry',
        proxy.host,
        ref('cfg/app:v1'),
      ]);
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, `${ref('cfg/app:v1')}@${app.digest}\n`);
    });

    test('host directories are read without a flag ($KIMG_HOSTS_DIR here), and --log-level info says which', async () => {
      const hostsDir = join(tmp.path, 'certs.d');
      await mkdir(join(hostsDir, 'mirror.kimg.test'), { recursive: true });
      await writeFile(join(hostsDir, 'mirror.kimg.test', 'hosts.toml'), `server = "http://${registry.host}"\n`);
      const cli = await kimg(['--log-level', 'info', 'resolve', 'mirror.kimg.test/cfg/app:v1'], {
        KIMG_HOSTS_DIR: hostsDir,
      });
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, `mirror.kimg.test/cfg/app:v1@${app.digest}\n`);
      assert.match(cli.stderr, new RegExp(`^kimg: registry host directories: ${hostsDir}$`, 'm'));
      // A directory the user named must be there (a typo must not bypass a mirror).
      const typo = await kimg(['resolve', ref('cfg/app:v1')], { KIMG_HOSTS_DIR: join(tmp.path, 'typo') });
      assert.equal(typo.status, 2);
      assert.match(typo.stderr, /\$KIMG_HOSTS_DIR .*typo: no such file or directory/);
      // Without any: the node's directories, said to be absent when they are (as on this machine).
      if (!existsSync('/etc/containerd/certs.d') && !existsSync('/etc/docker/certs.d')) {
        const none = await kimg(['--log-level', 'info', 'resolve', ref('cfg/app:v1')], { KIMG_HOSTS_DIR: '' });
        assert.equal(none.status, 0, none.stderr);
        assert.match(
          none.stderr,
          /registry host directories: none \(\/etc\/containerd\/certs\.d, \/etc\/docker\/certs\.d not present\)/,
        );
      }
      const quiet = await kimg(['resolve', ref('cfg/app:v1')]);
      assert.equal(quiet.stderr, '');
      const loud = await kimg(['--log-level', 'loud', 'resolve', ref('cfg/app:v1')]);
      assert.equal(loud.status, 2);
      assert.match(loud.stderr, /--log-level must be one of error, warn, info, debug/);
    });

    test('--creds USER --password-stdin reads the password from a pipe', async () => {
      const image = `${locked.host}/cfg/app:v1`;
      const ok = await runCli(['resolve', '--creds', 'alice', '--password-stdin', image], {
        env: env(),
        stdin: 'wonder-land-42\n',
      });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, `${image}@${app.digest}\n`);
      const wrong = await kimg(['resolve', '--creds', 'alice', image]);
      assert.equal(wrong.status, 2, 'a usage error');
      const both = await kimg(['resolve', '--creds', 'alice:x', '--password-stdin', image]);
      assert.equal(both.status, 2, 'a usage error');
      assert.match(both.stderr, /--password-stdin reads the password for --creds USER/);
    });

    test('-v traces every request: method, URL without its query, status, bytes, time', async () => {
      const config = app.images[0]?.config;
      assert.ok(config);
      // The config blob is first sent elsewhere with a signed query, as storage back ends do.
      proxy.setRule((r) =>
        r.path.endsWith(`/blobs/${config.digest}`) && r.count === 1
          ? fault.redirect(`${r.path}?X-Amz-Signature=top-secret-signature`)
          : undefined,
      );
      try {
        const cli = await kimg(['-v', 'config', ref('cfg/app:v1')]);
        assert.equal(cli.status, 0, cli.stderr);
        const trace = cli.stderr.trimEnd().split('\n');
        const url = (path: string) => `http://${proxy.host}/v2/cfg/app/${path}`;
        assert.ok(
          trace.some((l) => l.startsWith(`kimg: HEAD ${url('manifests/v1')} 200 `)),
          cli.stderr,
        );
        assert.ok(
          trace.some((l) => new RegExp(`^kimg: GET ${url(`blobs/${config.digest}`)} 307 `).test(l)),
          cli.stderr,
        );
        assert.ok(
          trace.some((l) => l.startsWith(`kimg: GET ${url(`blobs/${config.digest}`)}?<redacted> 200 ${config.size}B `)),
          cli.stderr,
        );
        // -v also says which configuration was read (--log-level info); every other line is an exchange.
        assert.match(trace[0] ?? '', /^kimg: registry host directories: /);
        assert.ok(
          trace.slice(1).every((l) => /^kimg: (GET|HEAD) \S+ \d{3}( \S+)? \d+ms$/.test(l)),
          cli.stderr,
        );
        assert.doesNotMatch(cli.stderr, /top-secret/);
      } finally {
        proxy.reset();
      }
    });

    test('-v on pin and ensure traces their registry requests', async () => {
      const pod = join(tmp.path, 'pod.yaml');
      await writeFile(
        pod,
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: ${ref('cfg/app:v1')}\n`,
      );
      const pin = await kimg(['-v', 'pin', '-f', pod]);
      assert.equal(pin.status, 0, pin.stderr);
      assert.match(pin.stdout, new RegExp(`image: ${ref('cfg/app:v1')}@${app.digest}`));
      assert.match(pin.stderr, new RegExp(`^kimg: HEAD http://${proxy.host}/v2/cfg/app/manifests/v1 200 \\d+ms$`, 'm'));
      const ensure = await kimg([
        '-v',
        'ensure',
        '-f',
        pod,
        '--no-node-credentials',
        '--root-dir',
        join(tmp.path, 'kubelet-root'),
      ]);
      assert.equal(ensure.status, 0, ensure.stderr);
      assert.match(
        ensure.stderr,
        new RegExp(`^kimg: HEAD http://${proxy.host}/v2/cfg/app/manifests/v1 200 \\d+ms$`, 'm'),
      );
    });

    test('-v on pull traces the blob downloads too', async () => {
      const store = join(tmp.path, 'pull-store');
      const cli = await kimg(['-v', 'pull', '--store', store, '--progress', 'quiet', ref('cfg/app:v1')]);
      assert.equal(cli.status, 0, cli.stderr);
      const layer = app.images[0]?.layers[0];
      assert.ok(layer);
      assert.match(cli.stderr, new RegExp(`kimg: GET http://\\S+/blobs/${layer.digest} 200 \\S+ \\d+ms`));
    });
  },
);
