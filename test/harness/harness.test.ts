// Proves the harness against the real peers: registries (plain, TLS, htpasswd, token,
// pull-through), the token server, the image builder + skopeo push, and the fault proxy.
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { request as httpGet } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  MEDIA_TYPES,
  basicAuth,
  buildImage,
  copyImage,
  fault,
  httpRequest,
  inspectRaw,
  libtrustKeyId,
  listeningPorts,
  makeServerCertificates,
  pushImage,
  requireTools,
  run,
  sha256Digest,
  sha256File,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  withTempDir,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TokenServer,
} from './index.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl', 'htpasswd']);

/** Asserts the process is gone (ESRCH). */
function assertProcessGone(pid: number): void {
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
}

/** The raw bytes a server sends for one request, until it closes the connection. */
function rawExchange(
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ head: string; body: Buffer }> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, split).toString('latin1'), body: all.subarray(split + 4) });
    });
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${extra}\r\n`);
  });
}

/** GETs `url` with Node's client; resolves the body or rejects with what went wrong mid-body. */
function getBody(
  url: string,
): Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('aborted', () => reject(new Error('aborted')));
      res.once('end', () =>
        res.complete
          ? resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers })
          : reject(new Error('incomplete')),
      );
    });
    req.once('error', reject);
    req.end();
  });
}

describe('certificates', { skip: requireTools(['openssl']) }, () => {
  test('a server certificate for arbitrary names (webhook style) verifies only for those names', async () => {
    await withTempDir(async (dir) => {
      const certs = await makeServerCertificates(dir, { sans: ['webhook.kimg.svc', '127.0.0.1'] });
      assert.deepEqual(certs.subjectAltNames, ['DNS:webhook.kimg.svc', 'IP:127.0.0.1']);
      assert.match(certs.certPem, /BEGIN CERTIFICATE/);
      assert.deepEqual(await readdir(certs.certDir), ['ca.crt']);
      const server = createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, (_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const url = `https://127.0.0.1:${port}/`;
        assert.equal(
          (await httpRequest(url, { ca: certs.caPem, servername: 'webhook.kimg.svc' })).body.toString(),
          'ok',
        );
        assert.equal((await httpRequest(url, { ca: certs.caPem })).status, 200);
        await assert.rejects(httpRequest(url, { ca: certs.caPem, servername: 'other.kimg.svc' }), {
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        });
        await assert.rejects(httpRequest(url, { servername: 'webhook.kimg.svc' }), {
          code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        });
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });
});

describe('registry', { skip }, () => {
  test('plain registry answers /v2/ and leaves nothing behind after stop', async () => {
    const registry = await startRegistry();
    assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
    const res = await httpRequest(`${registry.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), '{}');
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(await listeningPorts(registry.pid), [registry.port]);

    await registry.stop();
    assertProcessGone(registry.pid);
    await assert.rejects(httpRequest(`${registry.url}/v2/`), { code: 'ECONNREFUSED' });
    await assert.rejects(stat(registry.dir), { code: 'ENOENT' });
    await registry.stop(); // idempotent
  });

  test('TLS registry is trusted with its CA only, and skopeo pushes through --cert-dir', async () => {
    const registry = await startRegistry({ tls: true });
    try {
      assert.match(registry.url, /^https:/);
      assert.ok(registry.caPem && registry.certDir);
      assert.deepEqual(await readdir(registry.certDir), ['ca.crt']);
      assert.equal((await httpRequest(`${registry.url}/v2/`, { ca: registry.caPem })).status, 200);
      await assert.rejects(httpRequest(`${registry.url}/v2/`), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
      assert.equal((await httpRequest(`https://localhost:${registry.port}/v2/`, { ca: registry.caPem })).status, 200);
      const proxy = await startFaultProxy({ upstream: registry.url, ca: registry.caPem });
      try {
        assert.equal(
          (await httpRequest(`${proxy.url}/v2/`)).status,
          200,
          'the fault proxy forwards to an https upstream',
        );
      } finally {
        await proxy.stop();
      }

      const image = await buildImage({ layers: [2048] });
      try {
        const pushed = await pushImage(image, registry, 'tls/img:v1');
        assert.equal(
          sha256Digest(await inspectRaw(pushed.ref, { certDir: registry.certDir, tlsVerify: true })),
          image.digest,
        );
      } finally {
        await image.remove();
      }
    } finally {
      await registry.stop();
    }
  });

  test('htpasswd registry: 401 without or with wrong credentials, 200 with them', async () => {
    const alice = { user: 'alice', password: 's3cret:with colon' };
    const registry = await startRegistry({ htpasswd: [alice, { user: 'bob', password: 'hunter2' }] });
    try {
      const anonymous = await httpRequest(`${registry.url}/v2/`);
      assert.equal(anonymous.status, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm="/);
      const wrong = await httpRequest(`${registry.url}/v2/`, {
        headers: { authorization: basicAuth('alice', 'nope') },
      });
      assert.equal(wrong.status, 401);
      for (const user of [alice, { user: 'bob', password: 'hunter2' }]) {
        const ok = await httpRequest(`${registry.url}/v2/`, {
          headers: { authorization: basicAuth(user.user, user.password) },
        });
        assert.equal(ok.status, 200);
      }
      assert.deepEqual(registry.credentials, alice);

      const image = await buildImage({ layers: [1024], seed: 'htpasswd' });
      try {
        const pushed = await pushImage(image, registry, 'auth/img:v1', { creds: alice });
        await assert.rejects(inspectRaw(pushed.ref), /unauthorized|authentication required/i);
        assert.equal(sha256Digest(await inspectRaw(pushed.ref, { creds: alice })), image.digest);
      } finally {
        await image.remove();
      }
      // Credentials stay out of the harness's error messages.
      const failure = await pushImage({ layout: '/nonexistent', tag: 'x' }, registry, 'x/y:z', { creds: alice }).catch(
        (err: Error) => err,
      );
      assert.ok(failure instanceof Error);
      assert.doesNotMatch(failure.message, /s3cret/);
    } finally {
      await registry.stop();
    }
  });
});

describe('token server and token-auth registry', { skip }, () => {
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let image: BuiltImage;

  before(async () => {
    tokens = await startTokenServer({ users: { alice: 's3cret' } });
    registry = await startRegistry({ token: tokens });
    image = await buildImage({ layers: [4096, 512], seed: 'token' });
  });
  after(async () => {
    await registry?.stop();
    await tokens?.stop();
    await image?.remove();
  });

  test('the signing key ID is libtrust-formatted', () => {
    assert.match(tokens.keyId, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    // Stable per key (whatever its encoding), distinct across keys.
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal(
      libtrustKeyId(publicKey),
      libtrustKeyId(createPublicKey(publicKey.export({ type: 'spki', format: 'pem' }))),
    );
    assert.notEqual(libtrustKeyId(publicKey), tokens.keyId);
  });

  test('registry challenges with the token realm; a fault proxy can rewrite it', async () => {
    const res = await httpRequest(`${registry.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], `Bearer realm="${tokens.realm}",service="${tokens.service}"`);
    const proxy = await startFaultProxy({ upstream: registry.url, rewriteRealm: () => 'http://127.0.0.1:9/elsewhere' });
    try {
      const rewritten = await httpRequest(`${proxy.url}/v2/`);
      assert.equal(
        rewritten.headers['www-authenticate'],
        `Bearer realm="http://127.0.0.1:9/elsewhere",service="${tokens.service}"`,
      );
    } finally {
      await proxy.stop();
    }
  });

  test('push with credentials and anonymous pull through skopeo; the registry accepts the tokens', async () => {
    const pushed = await pushImage(image, registry, 'tok/img:v1', { creds: { user: 'alice', password: 's3cret' } });
    const pushTokenRequest = tokens.requests.find((r) => r.query.scope?.some((s) => s.includes('push')));
    assert.ok(pushTokenRequest, 'skopeo asked for a push token');
    assert.equal(pushTokenRequest.headers.authorization, basicAuth('alice', 's3cret'));
    assert.equal(pushTokenRequest.user, 'alice');
    assert.equal(pushTokenRequest.status, 200);

    const before = tokens.requests.length;
    assert.equal(sha256Digest(await inspectRaw(pushed.ref)), image.digest);
    await withTempDir(async (dir) => {
      await copyImage(`docker://${pushed.ref}`, `oci:${dir}:v1`);
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      assert.equal(index.manifests[0]?.digest, image.digest);
    });
    const anonymous = tokens.requests.slice(before);
    assert.ok(anonymous.length > 0);
    assert.ok(
      anonymous.every((r) => r.headers.authorization === undefined && r.user === undefined && r.status === 200),
    );
    assert.ok(tokens.issued.every((t) => t.claims.aud === tokens.service && typeof t.claims.aud === 'string'));
  });

  test('GET and OAuth2 POST tokens open the registry; bad credentials and injected failures are refused', async () => {
    const scope = 'repository:tok/img:pull';
    const viaGet = await httpRequest(`${tokens.realm}?service=${tokens.service}&scope=${encodeURIComponent(scope)}`);
    assert.equal(viaGet.status, 200);
    const reply = JSON.parse(viaGet.body.toString()) as {
      token: string;
      access_token: string;
      expires_in: number;
      issued_at: string;
    };
    assert.equal(reply.token, reply.access_token);
    assert.equal(reply.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(reply.issued_at)));
    const [header] = reply.token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(header ?? '', 'base64url').toString()), {
      typ: 'JWT',
      alg: 'ES256',
      kid: tokens.keyId,
    });
    const tags = await httpRequest(`${registry.url}/v2/tok/img/tags/list`, {
      headers: { authorization: `Bearer ${reply.token}` },
    });
    assert.equal(tags.status, 200, tags.body.toString());

    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'alice',
      password: 's3cret',
      service: tokens.service,
      scope,
      client_id: 'kimg',
      access_type: 'offline',
    });
    const viaPost = await httpRequest(tokens.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    assert.equal(viaPost.status, 200);
    const posted = JSON.parse(viaPost.body.toString()) as { access_token: string; refresh_token: string };
    assert.ok(posted.refresh_token);
    assert.deepEqual(tokens.requests.at(-1)?.form?.grant_type, 'password');
    const manifest = await httpRequest(`${registry.url}/v2/tok/img/manifests/v1`, {
      headers: { authorization: `Bearer ${posted.access_token}`, accept: MEDIA_TYPES.oci.manifest },
    });
    assert.equal(manifest.status, 200);
    assert.equal(sha256Digest(manifest.body), image.digest);

    const refresh = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: posted.refresh_token,
      service: tokens.service,
      scope,
    });
    const refreshed = await httpRequest(tokens.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: refresh.toString(),
    });
    assert.equal(refreshed.status, 200);

    const bad = await httpRequest(`${tokens.realm}?service=${tokens.service}&scope=${scope}`, {
      headers: { authorization: basicAuth('alice', 'wrong') },
    });
    assert.equal(bad.status, 401);
    tokens.setFailWith(503);
    try {
      assert.equal((await httpRequest(`${tokens.realm}?service=${tokens.service}`)).status, 503);
    } finally {
      tokens.setFailWith(undefined);
    }
    // A token for another repository does not open this one.
    const other = tokens.issueToken([{ type: 'repository', name: 'other/repo', actions: ['pull'] }]);
    const denied = await httpRequest(`${registry.url}/v2/tok/img/tags/list`, {
      headers: { authorization: `Bearer ${other.token}` },
    });
    assert.equal(denied.status, 401);
  });
});

describe('image builder and push', { skip }, () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(async () => {
    await registry?.stop();
  });

  const kinds = [
    { name: 'OCI image', format: 'oci', platforms: ['linux/amd64'], top: MEDIA_TYPES.oci.manifest },
    { name: 'OCI index', format: 'oci', platforms: ['linux/amd64', 'linux/arm64/v8'], top: MEDIA_TYPES.oci.index },
    { name: 'Docker schema2 image', format: 'docker', platforms: ['linux/amd64'], top: MEDIA_TYPES.docker.manifest },
    {
      name: 'Docker manifest list',
      format: 'docker',
      platforms: ['linux/amd64', 'linux/arm/v7', 'windows/amd64'],
      top: MEDIA_TYPES.docker.index,
    },
  ] as const;

  for (const kind of kinds) {
    test(`${kind.name}: the registry stores exactly the predicted bytes`, async () => {
      const image = await buildImage({
        layers: [3000, { size: 70_000, content: 'text' }],
        format: kind.format,
        platforms: kind.platforms,
        seed: kind.name,
      });
      try {
        assert.equal(image.mediaType, kind.top);
        assert.equal(image.isIndex, kind.platforms.length > 1);
        assert.equal(image.images.length, kind.platforms.length);
        const pushed = await pushImage(image, registry, `kinds/${kind.format}-${kind.platforms.length}:v1`);
        assert.equal(pushed.digest, image.digest);
        const raw = await inspectRaw(pushed.ref);
        assert.equal(sha256Digest(raw), image.digest);
        assert.equal(raw.length, image.size);
        for (const platformImage of image.images) {
          const repo = `${registry.url}/v2/kinds/${kind.format}-${kind.platforms.length}`;
          const manifest = await httpRequest(`${repo}/manifests/${platformImage.manifest.digest}`, {
            headers: { accept: platformImage.manifest.mediaType },
          });
          assert.equal(manifest.status, 200);
          assert.equal(sha256Digest(manifest.body), platformImage.manifest.digest);
          for (const blob of [platformImage.config, ...platformImage.layers]) {
            const res = await httpRequest(`${repo}/blobs/${blob.digest}`);
            assert.equal(res.status, 200);
            assert.equal(sha256Digest(res.body), blob.digest);
            assert.equal(res.body.length, blob.size);
          }
        }
      } finally {
        await image.remove();
      }
    });
  }

  test('same spec ⇒ same digests; same seed shares base layers; config carries diff_ids', async () => {
    const a = await buildImage({ layers: [5000, 6000], seed: 'repro' });
    const b = await buildImage({ layers: [5000, 6000], seed: 'repro' });
    const c = await buildImage({ layers: [5000, 7000], seed: 'repro' });
    const d = await buildImage({ layers: [{ size: 9000, seed: 'base' }, 100], seed: 'x' });
    const e = await buildImage({ layers: [200, { size: 9000, seed: 'base' }], seed: 'y', platforms: ['linux/arm64'] });
    try {
      assert.equal(a.digest, b.digest);
      assert.equal(a.images[0]?.layers[0]?.digest, c.images[0]?.layers[0]?.digest);
      assert.notEqual(a.images[0]?.layers[1]?.digest, c.images[0]?.layers[1]?.digest);
      assert.equal(d.images[0]?.layers[0]?.digest, e.images[0]?.layers[1]?.digest);
      const config = JSON.parse(await readFile(a.blobPath(a.images[0]?.config.digest ?? ''), 'utf8')) as {
        created: string;
        rootfs: { diff_ids: string[] };
      };
      assert.equal(config.created, '1970-01-01T00:00:00Z');
      assert.deepEqual(
        config.rootfs.diff_ids,
        a.images[0]?.layers.map((l) => l.diffId),
      );
      const layer = a.images[0]?.layers[0];
      assert.ok(layer);
      assert.equal(await sha256File(a.blobPath(layer.digest)), layer.digest);
      const uncompressed = await buildImage({ layers: [5000], seed: 'repro', compression: 'none' });
      try {
        const tar = uncompressed.images[0]?.layers[0];
        assert.ok(tar);
        assert.equal(tar.digest, tar.diffId);
        assert.equal(tar.mediaType, MEDIA_TYPES.oci.layerTar);
        assert.equal(tar.diffId, layer.diffId);
      } finally {
        await uncompressed.remove();
      }
    } finally {
      await Promise.all([a, b, c, d, e].map((image) => image.remove()));
    }
  });

  test('umoci unpacks a built layout (interoperability)', { skip: requireTools(['umoci']) }, async () => {
    await withTempDir(async (dir) => {
      const image = await buildImage({
        layers: [1234, { size: 4000, content: 'zero' }],
        layout: join(dir, 'layout'),
        tag: 'v1',
      });
      await run('umoci', ['unpack', '--rootless', '--image', `${image.layout}:v1`, join(dir, 'bundle')]);
      const data = await readFile(join(dir, 'bundle', 'rootfs', 'layer1', 'data'));
      assert.equal(data.length, 4000);
      assert.ok(data.every((byte) => byte === 0));
    });
  });
});

describe('fault proxy', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let blobPath: string;
  let blob: Buffer;
  let blobDigest: string;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url, rewriteLocation: true });
    image = await buildImage({ layers: [200_000], seed: 'faults' });
    await pushImage(image, registry, 'faults/img:v1');
    const layer = image.images[0]?.layers[0];
    assert.ok(layer);
    blobDigest = layer.digest;
    blob = await readFile(image.blobPath(layer.digest));
    blobPath = `/v2/faults/img/blobs/${layer.digest}`;
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
  });

  test('forwards unchanged, preserving Range, Accept and Authorization, and records requests', async () => {
    proxy.reset();
    const whole = await httpRequest(proxy.url + blobPath);
    assert.equal(whole.status, 200);
    assert.equal(sha256Digest(whole.body), blobDigest);
    const ranged = await httpRequest(proxy.url + blobPath, {
      headers: { range: 'bytes=10-19', accept: 'application/octet-stream', authorization: 'Bearer not-a-secret' },
    });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, blob.subarray(10, 20));
    assert.equal(ranged.headers['content-range'], `bytes 10-19/${blob.length}`);
    assert.equal(proxy.requests.length, 2);
    const recorded = proxy.requests[1];
    assert.equal(recorded?.method, 'GET');
    assert.equal(recorded?.url, blobPath);
    assert.equal(recorded?.headers.range, 'bytes=10-19');
    assert.equal(recorded?.headers.authorization, 'Bearer not-a-secret');
    assert.equal(recorded?.headers.accept, 'application/octet-stream');
    assert.equal(recorded?.status, 206);
    assert.equal(recorded?.bytesSent, 10);
  });

  test('a flipped byte changes the blob hash but not its length', async () => {
    proxy.setRule((req) => (req.path === blobPath ? fault.flipByte(12345) : undefined));
    const res = await httpRequest(proxy.url + blobPath);
    assert.equal(res.body.length, blob.length);
    assert.notEqual(sha256Digest(res.body), blobDigest);
    assert.equal(res.body[12345], (blob[12345] ?? 0) ^ 0xff);
  });

  test('status faults: 503 then success by count, 401 with a chosen challenge, 429 with Retry-After, 405 on HEAD', async () => {
    proxy.reset();
    proxy.setRule((req) => {
      if (req.path.endsWith('/manifests/v1') && req.count <= 2) return fault.serverError(503);
      if (req.path === '/v2/') return fault.unauthorized('Bearer realm="http://evil.example/token",service="x"');
      if (req.path.endsWith('/tags/list')) return fault.tooManyRequests(7);
      if (req.method === 'HEAD') return fault.methodNotAllowed();
      return undefined;
    });
    const manifestUrl = `${proxy.url}/v2/faults/img/manifests/v1`;
    const accept = { accept: MEDIA_TYPES.oci.manifest };
    assert.equal((await httpRequest(manifestUrl, { headers: accept })).status, 503);
    assert.equal((await httpRequest(manifestUrl, { headers: accept })).status, 503);
    const third = await httpRequest(manifestUrl, { headers: accept });
    assert.equal(third.status, 200);
    assert.equal(sha256Digest(third.body), image.digest);
    const challenge = await httpRequest(`${proxy.url}/v2/`);
    assert.equal(challenge.status, 401);
    assert.equal(challenge.headers['www-authenticate'], 'Bearer realm="http://evil.example/token",service="x"');
    const limited = await httpRequest(`${proxy.url}/v2/faults/img/tags/list`);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '7');
    assert.equal((await httpRequest(proxy.url + blobPath, { method: 'HEAD' })).status, 405);
    assert.deepEqual(
      proxy.requests.map((r) => r.status),
      [503, 503, 200, 401, 429, 405],
    );
  });

  test('redirects, dropped and forged headers', async () => {
    proxy.setRule((req) => {
      if (req.path === '/redirect-me') return fault.redirect(`${registry.url}${blobPath}`);
      if (req.path === blobPath)
        return [fault.dropHeader('Docker-Content-Digest'), fault.forgeHeader('X-Forged', 'yes')];
      if (req.path.endsWith('/manifests/v1'))
        return fault.forgeHeader('Docker-Content-Digest', `sha256:${'0'.repeat(64)}`);
      return undefined;
    });
    const redirect = await httpRequest(`${proxy.url}/redirect-me`);
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.location, `${registry.url}${blobPath}`);
    const direct = await httpRequest(registry.url + blobPath);
    assert.equal(direct.headers['docker-content-digest'], blobDigest);
    const proxied = await httpRequest(proxy.url + blobPath);
    assert.equal(proxied.headers['docker-content-digest'], undefined);
    assert.equal(proxied.headers['x-forged'], 'yes');
    const forged = await httpRequest(`${proxy.url}/v2/faults/img/manifests/v1`, {
      headers: { accept: MEDIA_TYPES.oci.manifest },
    });
    assert.equal(forged.headers['docker-content-digest'], `sha256:${'0'.repeat(64)}`);
  });

  test('broken bodies: truncate, cut, extra bytes (declared and chunked), replaced', async () => {
    proxy.setRule((req) => (req.path === blobPath ? fault.truncate(1000) : undefined));
    await assert.rejects(getBody(proxy.url + blobPath));
    const truncated = await rawExchange(proxy.host, blobPath);
    assert.match(truncated.head, new RegExp(`content-length: ${blob.length}`, 'i'));
    assert.equal(truncated.body.length, 1000);

    proxy.setRule((req) => (req.path === blobPath ? fault.cutAfter(5000) : undefined));
    await assert.rejects(getBody(proxy.url + blobPath));

    proxy.setRule((req) => (req.path === blobPath ? fault.extraBytes(100) : undefined));
    const extra = await rawExchange(proxy.host, blobPath);
    assert.match(extra.head, new RegExp(`content-length: ${blob.length}`, 'i'));
    assert.equal(extra.body.length, blob.length + 100);

    proxy.setRule((req) => (req.path === blobPath ? fault.extraBytes(100, true) : undefined));
    const chunked = await getBody(proxy.url + blobPath);
    assert.equal(chunked.headers['content-length'], undefined);
    assert.equal(chunked.body.length, blob.length + 100);
    assert.deepEqual(chunked.body.subarray(0, blob.length), blob);

    proxy.setRule((req) => (req.path === blobPath ? fault.replaceBody('short', 10) : undefined));
    const replaced = await rawExchange(proxy.host, blobPath);
    assert.match(replaced.head, /content-length: 10/i);
    assert.equal(replaced.body.toString(), 'short');
  });

  test('holdAt: the body stops at a byte until the client goes away or the proxy is reset', async () => {
    proxy.reset();
    proxy.setRule((req) =>
      req.path === blobPath ? fault.holdAt(req.headers.range === undefined ? 70_000 : 0) : undefined,
    );
    // rawExchange resolves when the connection closes: here only when the hold ends.
    const whole = rawExchange(proxy.host, blobPath);
    const held = await proxy.waitForHold(blobPath);
    assert.equal(held.bytesSent, 70_000);
    const ranged = rawExchange(proxy.host, blobPath, { range: 'bytes=100-' });
    for (let i = 0; i < 100 && proxy.requests.filter((r) => r.held).length < 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(proxy.requests.filter((r) => r.held).length, 2, 'a hold at 0 holds at once, headers sent');
    proxy.reset();
    const [a, b] = await Promise.all([whole, ranged]);
    assert.deepEqual(a.body, blob.subarray(0, 70_000));
    assert.match(b.head, /^HTTP\/1\.1 206 /);
    assert.equal(b.body.length, 0);
  });

  test('Range misbehaviour: ignored and misaligned', async () => {
    proxy.setRule((req) => (req.path === blobPath ? fault.ignoreRange() : undefined));
    const ignored = await httpRequest(proxy.url + blobPath, { headers: { range: 'bytes=100-' } });
    assert.equal(ignored.status, 200);
    assert.equal(ignored.body.length, blob.length);
    assert.equal(proxy.requests.at(-1)?.headers.range, 'bytes=100-', 'the client did send Range');

    proxy.setRule((req) => (req.path === blobPath ? fault.misalignedRange(-50) : undefined));
    const misaligned = await httpRequest(proxy.url + blobPath, { headers: { range: 'bytes=100-' } });
    assert.equal(misaligned.status, 206);
    assert.equal(misaligned.headers['content-range'], `bytes 50-${blob.length - 1}/${blob.length}`);
    assert.deepEqual(misaligned.body, blob.subarray(50));
  });

  test('delay, trickle and hang; concurrency per path prefix', async () => {
    proxy.reset();
    proxy.setRule((req) => {
      if (req.path === '/v2/faults/img/tags/list') return fault.delay(150);
      if (req.path.endsWith('/manifests/v1')) return fault.trickle(20_000);
      if (req.path === '/v2/hang') return fault.hang();
      return undefined;
    });
    const parallel = await Promise.all([1, 2, 3, 4].map(() => httpRequest(`${proxy.url}/v2/faults/img/tags/list`)));
    assert.ok(parallel.every((res) => res.status === 200));
    assert.equal(proxy.maxConcurrent('/v2/faults/img/tags/'), 4);
    assert.equal(proxy.maxConcurrent('/v2/faults/img/manifests/'), 0);

    const trickled = await httpRequest(`${proxy.url}/v2/faults/img/manifests/v1`, {
      headers: { accept: MEDIA_TYPES.oci.manifest },
    });
    assert.equal(sha256Digest(trickled.body), image.digest);

    await assert.rejects(httpRequest(`${proxy.url}/v2/hang`, { timeoutMs: 300 }), /no response within 300 ms/);
    const hung = proxy.requests.find((r) => r.path === '/v2/hang');
    assert.equal(hung?.status, 0, 'never answered');
    // The proxy notices the client giving up (the close arrives asynchronously).
    for (let i = 0; i < 100 && proxy.inFlight('/v2/hang') > 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(proxy.inFlight('/v2/hang'), 0);
  });

  test('skopeo pushes and pulls through the proxy (Location rewritten to the proxy)', async () => {
    proxy.reset();
    const other = await buildImage({ layers: [3000], seed: 'through-proxy' });
    try {
      const pushed = await pushImage(other, proxy.host, 'via/proxy:v1');
      assert.ok(
        proxy.requests.some((r) => r.method === 'PUT' && r.path.startsWith('/v2/via/proxy/blobs/uploads/')),
        'uploads went through the proxy',
      );
      assert.equal(sha256Digest(await inspectRaw(pushed.ref)), other.digest);
      assert.equal(sha256Digest(await inspectRaw(`${registry.host}/via/proxy:v1`)), other.digest);
    } finally {
      await other.remove();
    }
  });
});

describe('pull-through cache registry', { skip }, () => {
  test('serves an image from its upstream and caches its blobs', async () => {
    const upstream = await startRegistry();
    const image = await buildImage({ layers: [4000, 8000], platforms: ['linux/amd64', 'linux/arm64'], seed: 'mirror' });
    try {
      await pushImage(image, upstream, 'library/mirrored:v1');
      const mirror = await startRegistry({ proxy: { remoteUrl: upstream.url } });
      try {
        assert.equal(sha256Digest(await inspectRaw(`${mirror.host}/library/mirrored:v1`)), image.digest);
        const layer = image.images[1]?.layers[0];
        assert.ok(layer);
        const res = await httpRequest(`${mirror.url}/v2/library/mirrored/blobs/${layer.digest}`);
        assert.equal(res.status, 200);
        assert.equal(sha256Digest(res.body), layer.digest);
        const hex = layer.digest.slice('sha256:'.length);
        const cached = join(mirror.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
        // The proxy stores blobs asynchronously after serving them.
        let found = false;
        for (let i = 0; i < 100 && !found; i++) {
          found = await stat(cached).then(
            () => true,
            () => false,
          );
          if (!found) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(found, 'the blob landed in the mirror storage');
      } finally {
        await mirror.stop();
      }
    } finally {
      await upstream.stop();
      await image.remove();
    }
  });

  test('mirrors a token-auth upstream with proxy credentials', async () => {
    const tokens = await startTokenServer({ users: { mirror: 'pw' }, allowAnonymous: false });
    const upstream = await startRegistry({ token: tokens });
    const image = await buildImage({ layers: [2000], seed: 'token-mirror' });
    try {
      await pushImage(image, upstream, 'private/img:v1', { creds: 'mirror:pw' });
      const pushRequests = tokens.requests.length;
      const mirror = await startRegistry({ proxy: { remoteUrl: upstream.url, username: 'mirror', password: 'pw' } });
      try {
        assert.equal(sha256Digest(await inspectRaw(`${mirror.host}/private/img:v1`)), image.digest);
        assert.ok(
          tokens.requests.slice(pushRequests).some((r) => r.user === 'mirror' && r.status === 200),
          'the mirror fetched tokens with its credentials',
        );
      } finally {
        await mirror.stop();
      }
    } finally {
      await upstream.stop();
      await tokens.stop();
      await image.remove();
    }
  });
});
