// `kimg registry …` as a user runs it: `serve` prints the URL it serves as its first line and
// stops on SIGTERM; a non-loopback address without TLS is refused; `hosts-toml` writes files
// containerd and CRI-O parse.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parse } from 'smol-toml';
import { parseAllDocuments } from 'yaml';
import { httpRequest, makeTempDir, trackChild, type TempDir } from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';

/** Plain objects (smol-toml makes null-prototype ones). */
const parseToml = (text: string): Record<string, unknown> =>
  JSON.parse(JSON.stringify(parse(text))) as Record<string, unknown>;

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

describe('kimg registry (CLI)', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await makeTempDir('kimg-serve-cli-');
  });
  after(async () => {
    await tmp?.remove();
  });

  test('serve: the first stdout line is the URL; SIGTERM stops it', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', BIN, 'registry', 'serve', '--store', join(tmp.path, 'store'), '--listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    trackChild(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const lines = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpRequest(`${url}/v2/`);
    assert.equal(res.status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /"GET \/v2\/" 200/);
  });

  test('serve: plain HTTP on a non-loopback address is refused', async () => {
    const result = await runCli(['registry', 'serve', '--store', join(tmp.path, 'store'), '--listen', '0.0.0.0:0']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /refusing to serve plain HTTP on 0\.0\.0\.0.*--insecure-listen/);
  });

  test('hosts-toml writes certs.d/<host>/hosts.toml; --registries-conf prints CRI-O entries', async () => {
    const dir = join(tmp.path, 'certs.d');
    const result = await runCli([
      'registry',
      'hosts-toml',
      '--mirror',
      'https://127.0.0.1:5443',
      '--for',
      'docker.io,127.0.0.1:5000',
      '--ca-file',
      '/etc/kimg/ca.crt',
      '--dir',
      dir,
    ]);
    assert.equal(result.status, 0, result.stderr);
    const hub = parseToml(await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8'));
    assert.deepEqual(hub, {
      server: 'https://registry-1.docker.io',
      host: { 'https://127.0.0.1:5443': { capabilities: ['pull', 'resolve'], ca: '/etc/kimg/ca.crt' } },
    });
    const local = parseToml(await readFile(join(dir, '127.0.0.1:5000', 'hosts.toml'), 'utf8'));
    assert.equal(local.server, 'https://127.0.0.1:5000');
    const crio = await runCli([
      'registry',
      'hosts-toml',
      '--mirror',
      'http://127.0.0.1:5000',
      '--for',
      'registry.k8s.io',
      '--registries-conf',
    ]);
    assert.deepEqual(parseToml(crio.stdout), {
      registry: [
        {
          prefix: 'registry.k8s.io',
          location: 'registry.k8s.io',
          mirror: [{ location: '127.0.0.1:5000/registry.k8s.io', insecure: true }],
        },
      ],
    });
    const bad = await runCli(['registry', 'hosts-toml', '--mirror', 'http://u:p@x:1/path']);
    assert.equal(bad.status, 2);
  });

  test('manifests: a DaemonSet that passes a structural check of the Kubernetes schema', async () => {
    const image = `ghcr.io/example/kimg@sha256:${'a'.repeat(64)}`;
    const result = await runCli([
      'registry',
      'manifests',
      '--image',
      image,
      '--for',
      'docker.io,quay.io',
      '--port',
      '5001',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const documents = parseAllDocuments(result.stdout).map((d) => {
      assert.deepEqual(d.errors, []);
      return d.toJS() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    });
    assert.deepEqual(
      documents.map((d) => `${d.apiVersion}/${d.kind}`),
      ['v1/Namespace', 'apps/v1/DaemonSet'],
    );
    const ds = documents[1] ?? {};
    const spec = ds.spec.template.spec;
    // What the apiserver would refuse: selector not matching the template, volumes not declared,
    // probes without a handler, containers without image or name, names not DNS labels.
    assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
    assert.equal(spec.hostNetwork, true);
    const volumes = new Set(spec.volumes.map((v: { name: string }) => v.name));
    for (const container of [...spec.initContainers, ...spec.containers]) {
      assert.match(container.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.equal(container.image, image);
      assert.ok(container.resources.limits.memory);
      for (const mount of container.volumeMounts) assert.ok(volumes.has(mount.name), mount.name);
    }
    const server = spec.containers[0];
    assert.deepEqual(server.args.slice(0, 2), ['registry', 'serve']);
    assert.ok(server.args.includes('127.0.0.1:5001') && server.args.includes('--pull-through'));
    for (const probe of [server.livenessProbe, server.readinessProbe]) {
      assert.equal(probe.httpGet.host, '127.0.0.1');
      assert.equal(probe.httpGet.port, 5001);
    }
    assert.deepEqual(spec.initContainers[0].args.slice(0, 2), ['registry', 'hosts-toml']);
    assert.ok(spec.initContainers[0].args.includes('docker.io,quay.io'));
    assert.ok(
      spec.volumes.every(
        (v: { hostPath?: { path: string } }) => v.hostPath === undefined || v.hostPath.path.startsWith('/'),
      ),
    );
    const bad = await runCli(['registry', 'manifests', '--image', image, '--for', 'not a host']);
    assert.equal(bad.status, 2);
  });
});
