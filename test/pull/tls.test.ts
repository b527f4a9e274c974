// The pull engine against a real registry serving TLS with a throwaway CA. Loopback registries
// are unverified by default (containerd's rule), so these tests turn that off
// (`hosts: { insecureLoopback: false }`, `--tls-verify-loopback`) to exercise verification: the
// CA given as PEM, in a containerd hosts.toml and as `--ca-file` succeeds; no CA fails with
// ErrTLS naming the image.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PullError, Puller } from '../../src/pull/index.ts';
import { loadHostsConfig } from '../../src/registry/hosts/index.ts';
import { threadGet } from '../../src/registry/lean-thread.ts';
import { isTlsError } from '../../src/registry/retry.ts';
import {
  buildImage,
  createCertificateAuthority,
  fault,
  issueCertificate,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import { storedBlobs } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

describe('pull engine over TLS with a custom CA', { skip }, () => {
  let registry: RunningRegistry;
  let tmp: TempDir;
  let image: BuiltImage;
  let caPem: string;
  let caFile: string;
  const pullers: Puller[] = [];
  let stores = 0;
  const storeDir = () => join(tmp.path, `store-${++stores}`);
  const newPuller = (options: ConstructorParameters<typeof Puller>[0] = {}): Puller => {
    const puller = new Puller({ store: storeDir(), ...options });
    pullers.push(puller);
    return puller;
  };
  const ref = () => `${registry.host}/test/tls:v1`;
  /** An environment without the user's registry configuration or credentials. */
  const env = () => ({
    HOME: tmp.path,
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
  });

  before(async () => {
    tmp = await makeTempDir('kimg-pull-tls-');
    registry = await startRegistry({ tls: true });
    assert.ok(registry.caPem && registry.caFile);
    caPem = registry.caPem;
    caFile = registry.caFile;
    // The second layer is over 1 MiB: it is read on a blob thread (lean-thread.ts), which builds
    // its own TLS context from the CA it is handed.
    image = await buildImage({ layers: [40_000, 1_500_000], seed: 'pull-tls' });
    await pushImage(image, registry, 'test/tls:v1');
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  test('verifies the registry against the CA it is given', async () => {
    const puller = newPuller({ hosts: { insecureLoopback: false }, caPems: [caPem] });
    const result = await puller.pull(ref());
    assert.equal(result.descriptor.digest, image.digest);
    const store = await puller.store();
    assert.equal((await storedBlobs(store.root)).length, 4);
    assert.equal((await store.fsck()).ok, true);
  });

  test('without the CA the pull fails with ErrTLS naming the image, and stores nothing', async () => {
    const puller = newPuller({ hosts: { insecureLoopback: false } });
    await assert.rejects(puller.pull(ref()), (err: unknown) => {
      assert.ok(err instanceof PullError, String(err));
      assert.equal(err.code, 'ErrTLS');
      assert.ok(err.message.includes(ref()) || err.message.includes(registry.host), err.message);
      assert.match(err.message, /TLS handshake with 127\.0\.0\.1:\d+ failed/);
      assert.match(err.message, /CA certificate/);
      return true;
    });
    assert.deepEqual(await storedBlobs((await puller.store()).root), []);
  });

  test('a blob thread verifies with the CA handed over, fails with a TLS error without it', async () => {
    const get = (connect: { ca?: string[]; rejectUnauthorized?: boolean }) =>
      threadGet({
        url: new URL(`${registry.url}/v2/`),
        headers: {},
        connect: { timeout: 5000, ...connect },
        headersTimeoutMs: 5000,
        bodyTimeoutMs: 5000,
      });
    const res = await get({ ca: [caPem] });
    assert.equal(res.statusCode, 200);
    assert.equal((await text(res.body)).trim(), '{}');
    await assert.rejects(get({}), (err) => isTlsError(err));
    const unverified = await get({ rejectUnauthorized: false });
    assert.equal(unverified.statusCode, 200);
    unverified.body.destroy();
  });

  test('a blob thread cut mid-body behind a TLS fault proxy hands on what arrived and the pull resumes there; a flipped byte is never committed', async () => {
    // The proxy serves TLS with a CA of its own; behind it, the registry's. The layer over 1 MiB
    // is read on a blob thread (lean-thread.ts).
    const ca = await createCertificateAuthority(join(tmp.path, 'proxy-ca'));
    const served = await issueCertificate(ca);
    const layer = image.images[0]?.layers[1];
    assert.ok(layer !== undefined && layer.size > 1 << 20);
    const blobPath = `/v2/test/tls/blobs/${layer.digest}`;
    const proxy = await startFaultProxy({
      upstream: registry.url,
      ca: caPem,
      tls: { certPem: served.certPem, keyPem: served.keyPem },
    });
    try {
      const proxied = `${proxy.host}/test/tls:v1`;
      const viaProxy = () => newPuller({ hosts: { insecureLoopback: false }, caPems: [ca.certPem] });

      proxy.setRule((r) =>
        r.method === 'GET' && r.path === blobPath && r.count === 1 ? fault.cutAfter(600_000) : undefined,
      );
      const resumedPuller = viaProxy();
      const result = await resumedPuller.pull(proxied);
      assert.equal(result.descriptor.digest, image.digest);
      assert.equal((await (await resumedPuller.store()).fsck()).ok, true);
      const gets = proxy.requests.filter((r) => r.path === blobPath);
      assert.equal(gets.length, 2);
      const start = Number(/^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range))?.[1]);
      assert.ok(start > 0 && start <= 600_000, `resumed at ${String(gets[1]?.headers.range)}`);

      proxy.reset();
      proxy.setRule((r) => (r.method === 'GET' && r.path === blobPath ? fault.flipByte(1_200_000) : undefined));
      const corrupted = viaProxy();
      await assert.rejects(corrupted.pull(proxied), (err: unknown) => {
        assert.ok(err instanceof PullError, String(err));
        assert.match(err.message, new RegExp(layer.digest));
        return true;
      });
      const store = await corrupted.store();
      assert.ok(!(await storedBlobs(store.root)).includes(layer.digest));
      assert.equal((await store.fsck()).ok, true);
    } finally {
      await proxy.stop();
    }
  });

  test('by default a loopback registry is reached over unverified TLS, as containerd does', async () => {
    const result = await newPuller().pull(ref());
    assert.equal(result.descriptor.digest, image.digest);
  });

  test('verifies the registry against the ca of its containerd hosts.toml', async () => {
    const hostsDir = join(tmp.path, 'certs.d');
    await mkdir(join(hostsDir, registry.host), { recursive: true });
    await writeFile(
      join(hostsDir, registry.host, 'hosts.toml'),
      `server = "${registry.url}"\n\n[host."${registry.url}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(caFile)}\n`,
    );
    const hosts = await loadHostsConfig({ hostsDir, insecureLoopback: false });
    const result = await newPuller({ hosts }).pull(ref());
    assert.equal(result.descriptor.digest, image.digest);
  });

  test('kimg pull --tls-verify-loopback: --ca-file succeeds, no CA fails with ErrTLS naming the registry', async () => {
    const [withCaFile, without] = await Promise.all([
      runCli(['pull', '-q', '--tls-verify-loopback', '--ca-file', caFile, '--store', storeDir(), ref()], {
        env: env(),
      }),
      runCli(['pull', '-q', '--tls-verify-loopback', '--store', storeDir(), ref()], { env: env() }),
    ]);
    assert.equal(withCaFile.status, 0, withCaFile.stderr);
    assert.equal(withCaFile.stdout, `${ref()}\n`);
    assert.equal(without.status, 1);
    assert.match(without.stderr, /\(ErrTLS\)$/m);
    assert.match(without.stderr, /CA certificate/);
    assert.ok(without.stderr.includes(ref()), without.stderr);
  });
});
