// Who may ask the webhook (issue 11, item 8): with `--client-ca-file` only a caller presenting a
// client certificate that CA signed (the apiserver, through its admission kubeconfig) gets
// reviews; anyone else gets 403 before its body is read, while the kubelet's probes stay open.
// Real TLS clients against the real server, in-process and as `kimg webhook serve`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { AdmissionHandler, WebhookServer } from '../../src/admission/index.ts';
import { runCli } from '../cli/run-cli.ts';
import {
  createCertificateAuthority,
  httpRequest,
  issueCertificate,
  makeTempDir,
  requireTools,
  type CertificateAuthority,
  type IssuedCertificate,
  type TempDir,
} from '../harness/index.ts';
import { SERVICE_NAME, admissionRequest, callWebhook, post, type WebhookClientOptions } from './apiserver.ts';
import { objects } from './fixture.ts';

const skip = requireTools(['openssl']);
const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

describe('webhook client certificates (--client-ca-file)', { skip }, () => {
  let tmp: TempDir;
  let serving: IssuedCertificate;
  let servingCa: CertificateAuthority;
  let clientCa: CertificateAuthority;
  let apiserver: IssuedCertificate;
  let stranger: IssuedCertificate;
  let server: WebhookServer;

  const review = () =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: admissionRequest({ object: objects.pod({ containers: objects.containers('nginx:1.25') }) }),
    });
  const client = (port: number, cert?: IssuedCertificate): WebhookClientOptions => ({
    port,
    caPem: servingCa.certPem,
    ...(cert !== undefined && { clientCert: { certPem: cert.certPem, keyPem: cert.keyPem } }),
  });

  before(async () => {
    tmp = await makeTempDir('kimg-client-auth-');
    servingCa = await createCertificateAuthority(join(tmp.path, 'serving'));
    serving = await issueCertificate(servingCa, { name: 'tls', sans: [SERVICE_NAME, '127.0.0.1'] });
    clientCa = await createCertificateAuthority(join(tmp.path, 'clients'), { commonName: 'apiserver client CA' });
    apiserver = await issueCertificate(clientCa, { name: 'apiserver', sans: ['kube-apiserver'], usage: 'client' });
    // Signed by a CA the webhook does not trust, though otherwise the same.
    const otherCa = await createCertificateAuthority(join(tmp.path, 'other'), { commonName: 'other CA' });
    stranger = await issueCertificate(otherCa, { name: 'stranger', sans: ['kube-apiserver'], usage: 'client' });
    server = await WebhookServer.start({
      handler: new AdmissionHandler(),
      certFile: serving.certFile,
      keyFile: serving.keyFile,
      clientCaFile: clientCa.certFile,
      host: '127.0.0.1',
      port: 0,
    });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('a caller with a certificate the client CA signed gets reviews', async () => {
    const answer = await callWebhook(
      client(server.port, apiserver),
      '/validate',
      admissionRequest({ object: objects.pod({ containers: objects.containers('nginx:1.25') }) }),
    );
    assert.equal(answer.response.allowed, true);
  });

  test('no certificate, or one from another CA: 403 naming why, for both review paths', async () => {
    for (const path of ['/mutate', '/validate']) {
      const none = await post(client(server.port), path, review());
      assert.equal(none.status, 403);
      assert.match(none.body, /client certificate signed by the webhook's client CA is required/);
      const other = await post(client(server.port, stranger), path, review());
      assert.equal(other.status, 403);
      assert.match(other.body, /not signed by the webhook's client CA/);
    }
    assert.match(server.metrics.render(), /code="403"/);
  });

  test('probes need no certificate (the kubelet presents none)', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await httpRequest(`https://127.0.0.1:${server.port}${path}`, {
        ca: servingCa.certPem,
        servername: SERVICE_NAME,
      });
      assert.equal(res.status, 200, path);
    }
  });

  test('a new client CA in the file is picked up with the certificate reload', async () => {
    const file = join(tmp.path, 'rotating-ca.crt');
    await copyFile(clientCa.certFile, file);
    const rotating = await WebhookServer.start({
      handler: new AdmissionHandler(),
      certFile: serving.certFile,
      keyFile: serving.keyFile,
      clientCaFile: file,
      host: '127.0.0.1',
      port: 0,
      reloadIntervalMs: 3_600_000,
    });
    try {
      assert.equal((await post(client(rotating.port, stranger), '/validate', review())).status, 403);
      await writeFile(file, stranger.caPem);
      assert.equal(await rotating.reloadCertificates(), true);
      assert.equal((await post(client(rotating.port, stranger), '/validate', review())).status, 200);
      assert.equal((await post(client(rotating.port, apiserver), '/validate', review())).status, 403);
    } finally {
      await rotating.close();
    }
  });

  test('kimg webhook serve --client-ca-file: the same, as a process; a file with no certificate exits 2', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        BIN,
        'webhook',
        'serve',
        '--tls-cert-file',
        serving.certFile,
        '--tls-key-file',
        serving.keyFile,
        '--client-ca-file',
        clientCa.certFile,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBERNETES_SERVICE_HOST: '' } },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let port: number | undefined;
      for (let i = 0; i < 600 && port === undefined; i++) {
        const m = /serving https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m?.[1] !== undefined) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(port, `the server did not start: ${stderr}`);
      assert.equal((await post(client(port, apiserver), '/validate', review())).status, 200);
      assert.equal((await post(client(port), '/validate', review())).status, 403);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);

    const empty = join(tmp.path, 'empty-ca.crt');
    await writeFile(empty, 'not a certificate\n');
    const bad = await runCli(
      [
        'webhook',
        'serve',
        '--tls-cert-file',
        serving.certFile,
        '--tls-key-file',
        serving.keyFile,
        '--client-ca-file',
        empty,
        '--port',
        '0',
      ],
      { env: { KUBERNETES_SERVICE_HOST: '' } },
    );
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /empty-ca\.crt/);
  });
});
