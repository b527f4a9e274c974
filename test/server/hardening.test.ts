// What a hostile or careless client cannot do to the server: hold it with slow headers or idle
// connections, send oversized headers or manifests, or read without credentials when htpasswd
// auth is on (skopeo with the right credentials can). /metrics counts requests and bytes; the
// access log has one line per request and never the Authorization header.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { BasicAuthenticator, allowPush, type RegistryServer } from '../../src/server/index.ts';
import {
  basicAuth,
  buildImage,
  httpRequest,
  inspectRaw,
  makeServerCertificates,
  makeTempDir,
  requireTools,
  type TempDir,
} from '../harness/index.ts';
import { seedStore, startServer } from './helpers.ts';

/** Sends `text` raw and resolves with what came back before the server closed the socket. */
function raw(port: number, text: string, pauseMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (s: string) => (answer += s));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(text);
    if (pauseMs > 0) setTimeout(() => socket.write('X-Late: 1\r\n'), pauseMs);
  });
}

describe(
  'kimg registry serve: hardening, auth, metrics, access log',
  { skip: requireTools(['htpasswd', 'skopeo']) },
  () => {
    let tmp: TempDir;
    let server: RegistryServer;
    const access: string[] = [];

    before(async () => {
      tmp = await makeTempDir('kimg-serve-hard-');
      const file = join(tmp.path, 'htpasswd');
      const entry = spawnSync('htpasswd', ['-nbB', 'reader', 'reader-pass'], { encoding: 'utf8' }).stdout.trim();
      await writeFile(file, `${entry}\n`);
      let store;
      ({ server, store } = await startServer(join(tmp.path, 'store'), {
        auth: await BasicAuthenticator.load(file),
        headersTimeoutMs: 500,
        idleTimeoutMs: 1000,
        maxManifestBytes: 1000,
        writes: allowPush(),
        accessLog: (line) => access.push(line),
      }));
      await seedStore(store, await buildImage({ layers: [1_000], seed: 'hard' }), 'docker.io/library/hard:1');
    });

    after(async () => {
      await server?.close();
      await tmp?.remove();
    });

    test('without credentials: 401 with a Basic challenge; skopeo with them reads', async () => {
      const anonymous = await httpRequest(`${server.url}/v2/`);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers['www-authenticate'], 'Basic realm="kimg"');
      const wrong = await httpRequest(`${server.url}/v2/`, { headers: { authorization: basicAuth('reader', 'nope') } });
      assert.equal(wrong.status, 401);
      const raw = await inspectRaw(`127.0.0.1:${server.port}/library/hard:1`, { creds: 'reader:reader-pass' });
      assert.ok(raw.byteLength > 0);
      assert.ok(access.length > 0);
      for (const line of access)
        assert.ok(!line.includes('reader-pass') && !line.includes(basicAuth('reader', 'reader-pass')));
      assert.ok(access.some((line) => line.includes(' reader "GET /v2/library/hard/manifests/1"')));
      const healthz = await httpRequest(`${server.url}/healthz`);
      assert.equal(healthz.status, 200, 'probes need no credentials');
    });

    test('slow headers and idle connections are cut; oversized headers and manifests refused', async () => {
      const slow = await raw(server.port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n', 100);
      assert.ok(slow === '' || /^HTTP\/1\.1 408/.test(slow), slow);
      const idle = await raw(server.port, '');
      assert.equal(idle, '');
      const huge = await raw(server.port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.match(huge, /^HTTP\/1\.1 431/);
      const auth = basicAuth('reader', 'reader-pass');
      const manifest = await httpRequest(`${server.url}/v2/library/hard/manifests/big`, {
        method: 'PUT',
        headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: `{"x":"${'a'.repeat(5000)}"}`,
      });
      assert.equal(manifest.status, 413);
    });

    test('/metrics counts requests by route and status, and bytes served', async () => {
      const auth = basicAuth('reader', 'reader-pass');
      const res = await httpRequest(`${server.url}/metrics`, { headers: { authorization: auth } });
      const text = res.body.toString();
      assert.match(res.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(text, /kimg_registry_requests_total\{method="GET",route="manifest",status="200"\} [1-9]/);
      assert.match(text, /kimg_registry_requests_total\{method="GET",route="base",status="401"\} [1-9]/);
      assert.match(text, /kimg_registry_bytes_served_total [1-9]/);
    });

    test('over TLS the suite is AES-128-GCM, as Go servers choose; ChaCha20 when the client ranks it first; no TLS 1.1', async () => {
      const certs = await makeServerCertificates(join(tmp.path, 'certs'));
      const { server: tls } = await startServer(join(tmp.path, 'store'), {
        tls: { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) },
      });
      try {
        const suite = (options: ConnectionOptions) =>
          new Promise<string>((resolve, reject) => {
            const socket = tlsConnect({ host: '127.0.0.1', port: tls.port, ca: certs.caPem, ...options }, () => {
              resolve(socket.getCipher().standardName);
              socket.end();
            });
            socket.once('error', reject);
          });
        assert.equal(await suite({}), 'TLS_AES_128_GCM_SHA256');
        assert.equal(
          await suite({ ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256' }),
          'TLS_CHACHA20_POLY1305_SHA256',
        );
        assert.equal(await suite({ maxVersion: 'TLSv1.2' }), 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
        await assert.rejects(suite({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
      } finally {
        await tls.close();
      }
    });
  },
);
