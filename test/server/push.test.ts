// `--allow-push`: skopeo pushes to kimg (single images and an index, digests preserved) and
// reads back the same bytes; the upload protocol's corners over raw HTTP: chunked PATCHes with
// Content-Range, out-of-order chunks (416), resuming with GET, mounts, a wrong digest, and a
// manifest whose blobs are missing. Then the limits and the failures: a stalled monolithic push
// holds no lock and leaves nothing once cut, a cut final PUT resumes, the blob and total caps
// answer SIZE_INVALID and DENIED, a skopeo push cut by the fault proxy pushes again, and closing
// the server removes the uploads in progress.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { digestOf } from '../../src/digest/index.ts';
import { MediaType } from '../../src/oci/index.ts';
import { allowPush, type RegistryServer } from '../../src/server/index.ts';
import type { Store } from '../../src/store/index.ts';
import {
  buildImage,
  copyImage,
  fault,
  httpRequest,
  inspectRaw,
  makeTempDir,
  requireTools,
  startFaultProxy,
  type BuiltImage,
  type TempDir,
} from '../harness/index.ts';
import { startServer } from './helpers.ts';

const skip = requireTools(['skopeo']);

const code = (body: Buffer | string) => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]?.code;

/** Files of uploads and downloads in progress under the store's ingest/. */
async function partials(store: Store): Promise<string[]> {
  return (await readdir(join(store.root, 'ingest'))).filter((n) => /-upload$|\.(data|json)$/.test(n));
}

/** Waits (bounded) until `check` holds; the bound is a safety net, not a timing assertion. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await sleep(20);
  }
  assert.fail(`still not so: ${what}`);
}

/** A request sent by hand: the head and `body`, then the socket stays open (a stalled client).
 * `sent` resolves once the bytes are with the kernel (a `destroy` then still delivers them);
 * `answer` resolves with what came back once the socket closes. */
function stalled(
  port: number,
  head: string,
  body: Buffer = Buffer.alloc(0),
): { socket: Socket; sent: Promise<void>; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const answer = new Promise<string>((resolve) => {
    socket.setEncoding('latin1').on('data', (s: string) => (text += s));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
  });
  const sent = new Promise<void>((resolve) => socket.write(Buffer.concat([Buffer.from(head), body]), () => resolve()));
  return { socket, sent, answer };
}

/** The `Range` a GET on the upload reports, as the next byte to send. */
async function uploadOffset(location: string): Promise<number> {
  const status = await httpRequest(location);
  assert.equal(status.status, 204);
  return Number(/^0-(\d+)$/.exec(String(status.headers.range))?.[1]) + 1;
}

function withQuery(location: string, query: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}${query}`;
}

describe('kimg registry serve --allow-push', { skip }, () => {
  let tmp: TempDir;
  let server: RegistryServer;
  let store: Store;
  let host: string;
  let image: BuiltImage;
  let index: BuiltImage;
  before(async () => {
    tmp = await makeTempDir('kimg-serve-push-');
    [image, index] = await Promise.all([
      buildImage({ layers: [4_000, 250_000], seed: 'push-image' }),
      buildImage({ layers: [30_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'push-index' }),
    ]);
    ({ server, store, host } = await startServer(join(tmp.path, 'store'), { writes: allowPush() }));
  });

  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('skopeo pushes an image and an index; the same bytes come back; the store is fsck-clean', async () => {
    await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${host}/team/app:1`, { preserveDigests: true });
    await copyImage(`oci:${index.layout}:${index.tag}`, `docker://${host}/team/multi:1`, {
      all: true,
      preserveDigests: true,
    });
    assert.equal(digestOf(await inspectRaw(`${host}/team/app:1`)), image.digest);
    assert.equal(digestOf(await inspectRaw(`${host}/team/multi:1`)), index.digest);
    assert.equal((await store.getImage('docker.io/team/app:1'))?.descriptor.digest, image.digest);
    const out = join(tmp.path, 'back');
    await copyImage(`docker://${host}/team/multi:1`, `oci:${out}:x`, { all: true, preserveDigests: true });
    assert.deepEqual((await store.fsck()).problems, []);
    assert.deepEqual(await partials(store), []);
    // Pushing again: every blob is already there.
    await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${host}/team/app:2`, { preserveDigests: true });
    assert.equal((await store.getImage('docker.io/team/app:2'))?.descriptor.digest, image.digest);
  });

  test('chunked upload with Content-Range, an out-of-order chunk (416), resume with GET, then PUT', async () => {
    const blob = Buffer.alloc(30_000, 7);
    const digest = digestOf(blob);
    const started = await httpRequest(`${server.url}/v2/team/chunks/blobs/uploads/`, { method: 'POST' });
    assert.equal(started.status, 202);
    assert.equal(started.headers.range, '0-0');
    const location = new URL(String(started.headers.location), server.url).href;
    const first = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '0-9999', 'content-type': 'application/octet-stream' },
      body: blob.subarray(0, 10_000),
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.range, '0-9999');
    const skipped = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '20000-29999' },
      body: blob.subarray(20_000),
    });
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.range, '0-9999');
    const status = await httpRequest(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-9999');
    const second = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': '10000-29999' },
      body: blob.subarray(10_000),
    });
    assert.equal(second.status, 202);
    const put = await httpRequest(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
      method: 'PUT',
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers['docker-content-digest'], digest);
    const back = await httpRequest(`${server.url}/v2/team/chunks/blobs/${digest}`);
    assert.deepEqual(back.body, blob);
  });

  test('monolithic POST, a wrong digest, mounts, and a manifest with a missing blob', async () => {
    const blob = Buffer.from('monolithic blob');
    const digest = digestOf(blob);
    const mono = await httpRequest(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: blob,
    });
    assert.equal(mono.status, 201);
    const wrong = await httpRequest(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digestOf('other')}`, {
      method: 'POST',
      body: blob,
    });
    assert.equal(wrong.status, 400);
    assert.equal(code(wrong.body), 'DIGEST_INVALID');
    const mounted = await httpRequest(`${server.url}/v2/team/other/blobs/uploads/?mount=${digest}&from=team/mono`, {
      method: 'POST',
    });
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers['docker-content-digest'], digest);
    const notHere = await httpRequest(
      `${server.url}/v2/team/other/blobs/uploads/?mount=${digestOf('absent')}&from=team/mono`,
      { method: 'POST' },
    );
    assert.equal(notHere.status, 202);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf('absent config'), size: 14 },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest, size: blob.byteLength }],
    });
    const refused = await httpRequest(`${server.url}/v2/team/mono/manifests/1`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: manifest,
    });
    assert.equal(refused.status, 400);
    assert.equal(code(refused.body), 'MANIFEST_BLOB_UNKNOWN');
    const badDigest = await httpRequest(`${server.url}/v2/team/mono/manifests/${digestOf('x')}`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: await store.readBlob(image.digest, 1 << 20),
    });
    assert.equal(code(badDigest.body), 'DIGEST_INVALID');
    const malformed = await httpRequest(`${server.url}/v2/team/mono/manifests/1`, {
      method: 'PUT',
      headers: { 'content-type': MediaType.OciManifest },
      body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
    });
    assert.equal(code(malformed.body), 'MANIFEST_INVALID');
  });
});

describe('kimg registry serve --allow-push: caps, stalled and cut uploads', { skip }, () => {
  let tmp: TempDir;
  let server: RegistryServer;
  let store: Store;
  const access: string[] = [];
  // Small enough that each request body below reaches the server as one chunk: a refused body
  // is then refused whole, and no unread bytes make the closing socket reset the answer.
  const maxBlobBytes = 20_000;
  const maxUploadBytes = 30_000;
  const metric = (result: string) =>
    new RegExp(`kimg_registry_uploads_total\\{result="${result}"\\} (\\d+)`).exec(server.metrics.render())?.[1];

  before(async () => {
    tmp = await makeTempDir('kimg-serve-push-caps-');
    ({ server, store } = await startServer(join(tmp.path, 'store'), {
      writes: allowPush({ maxBlobBytes, maxUploadBytes }),
      accessLog: (line) => access.push(line),
    }));
  });

  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('a stalled monolithic POST holds no lock: the same blob is pushed meanwhile; cut, it leaves no file', async () => {
    const blob = randomBytes(15_000);
    const digest = digestOf(blob);
    const first = stalled(
      server.port,
      `POST /v2/team/stall/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: x\r\nContent-Length: ${blob.byteLength}\r\n\r\n`,
      blob.subarray(0, 5_000),
    );
    await first.sent;
    await until('the stalled upload has its file', async () => (await partials(store)).length === 1);
    const second = await httpRequest(`${server.url}/v2/team/stall/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: blob,
    });
    assert.equal(second.status, 201);
    assert.deepEqual((await httpRequest(`${server.url}/v2/team/stall/blobs/${digest}`)).body, blob);
    first.socket.destroy();
    assert.equal(await first.answer, '');
    await until('the cut upload left nothing', async () => (await partials(store)).length === 0);
    await until('the cut upload is counted as aborted', async () => metric('aborted') === '1');
    assert.equal(metric('digest-mismatch'), undefined);
  });

  test('a final PUT cut mid-body keeps what arrived: the upload resumes from there', async () => {
    const blob = randomBytes(12_000);
    const digest = digestOf(blob);
    const started = await httpRequest(`${server.url}/v2/team/cut/blobs/uploads/`, { method: 'POST' });
    const location = new URL(String(started.headers.location), server.url).href;
    const patched = await httpRequest(location, { method: 'PATCH', body: blob.subarray(0, 4_000) });
    assert.equal(patched.status, 202);
    const path = new URL(withQuery(location, `digest=${digest}`));
    const put = stalled(
      server.port,
      `PUT ${path.pathname}${path.search} HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n`,
      blob.subarray(4_000, 7_000),
    );
    await put.sent;
    put.socket.destroy();
    assert.equal(await put.answer, '');
    // The server saw the PUT cut (its access-log line is written when the socket closes, after
    // the upload took the body); once that request lets go of the session (an empty PATCH is no
    // longer refused as a concurrent writer), the bytes it delivered are in the session, which
    // was not committed.
    await until('the server saw the PUT cut', async () =>
      access.some((l) => l.includes('"PUT ') && l.endsWith('ms') && l.includes('(cut)')),
    );
    await until(
      'the cut PUT let go of the upload',
      async () => (await httpRequest(location, { method: 'PATCH' })).status === 202,
    );
    const offset = await uploadOffset(location);
    // Bytes the server had buffered when the socket closed may be dropped with it: not fewer
    // than the PATCH brought, not more than were sent.
    assert.ok(offset >= 4_000 && offset <= 7_000, `resumes at ${offset}`);
    const rest = await httpRequest(location, {
      method: 'PATCH',
      headers: { 'content-range': `${offset}-${blob.byteLength - 1}` },
      body: blob.subarray(offset),
    });
    assert.equal(rest.status, 202);
    const done = await httpRequest(withQuery(location, `digest=${digest}`), { method: 'PUT' });
    assert.equal(done.status, 201);
    assert.deepEqual((await httpRequest(`${server.url}/v2/team/cut/blobs/${digest}`)).body, blob);
    assert.deepEqual(await partials(store), []);
  });

  test('past maxBlobBytes is SIZE_INVALID (413); past maxUploadBytes for all uploads is DENIED', async () => {
    const big = stalled(
      server.port,
      `POST /v2/team/caps/blobs/uploads/?digest=${digestOf('x')} HTTP/1.1\r\nHost: x\r\nContent-Length: ${maxBlobBytes + 1}\r\n\r\n`,
    );
    const bigAnswer = await big.answer;
    assert.match(bigAnswer, /^HTTP\/1\.1 413 /);
    assert.equal(code(bigAnswer.slice(bigAnswer.indexOf('\r\n\r\n') + 4)), 'SIZE_INVALID');

    const open = async (): Promise<string> => {
      const started = await httpRequest(`${server.url}/v2/team/caps/blobs/uploads/`, { method: 'POST' });
      assert.equal(started.status, 202);
      return new URL(String(started.headers.location), server.url).href;
    };
    const a = await open();
    const b = await open();
    assert.equal((await httpRequest(a, { method: 'PATCH', body: randomBytes(18_000) })).status, 202);
    // A chunk taking one blob past the blob cap: SIZE_INVALID, whatever the total.
    const tooBig = await httpRequest(a, { method: 'PATCH', body: randomBytes(3_000) });
    assert.equal(tooBig.status, 413);
    assert.equal(code(tooBig.body), 'SIZE_INVALID');
    // Two uploads together past the total: DENIED, saying why.
    const denied = await httpRequest(b, { method: 'PATCH', body: randomBytes(15_000) });
    assert.equal(denied.status, 403);
    assert.equal(code(denied.body), 'DENIED');
    assert.match(denied.body.toString(), /30000 bytes for all uploads together/);
    // A monolithic push counts its whole Content-Length from the start.
    const whole = randomBytes(13_000);
    const refused = await httpRequest(`${server.url}/v2/team/caps/blobs/uploads/?digest=${digestOf(whole)}`, {
      method: 'POST',
      body: whole,
    });
    assert.equal(refused.status, 403);
    assert.equal(code(refused.body), 'DENIED');
    // Cancelled uploads give their room back.
    assert.equal((await httpRequest(a, { method: 'DELETE' })).status, 204);
    assert.equal((await httpRequest(b, { method: 'DELETE' })).status, 204);
    const accepted = await httpRequest(`${server.url}/v2/team/caps/blobs/uploads/?digest=${digestOf(whole)}`, {
      method: 'POST',
      body: whole,
    });
    assert.equal(accepted.status, 201);
    // Pushed again while other uploads hold the room: already stored, so nothing is written.
    const c = await open();
    assert.equal((await httpRequest(c, { method: 'PATCH', body: randomBytes(18_000) })).status, 202);
    const again = await httpRequest(`${server.url}/v2/team/caps/blobs/uploads/?digest=${digestOf(whole)}`, {
      method: 'POST',
      body: whole,
    });
    assert.equal(again.status, 201);
    assert.equal((await httpRequest(c, { method: 'DELETE' })).status, 204);
    assert.deepEqual(await partials(store), []);
    assert.equal(metric('digest-mismatch'), undefined);
  });

  test('skopeo: a push whose blob PATCH is cut is pushed again; closing the server removes the cut upload', async () => {
    const image = await buildImage({ layers: [60_000], seed: 'push-cut' });
    const own = await startServer(join(tmp.path, 'store-cut'), { writes: allowPush() });
    const proxy = await startFaultProxy({ upstream: own.server.url });
    try {
      proxy.setRule((r) => (r.method === 'PATCH' && r.count === 1 ? fault.cutRequest(20_000, true) : undefined));
      // skopeo may retry by itself; either way the cut request left a session behind.
      await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${proxy.host}/team/cut:1`, {
        preserveDigests: true,
      }).catch(() => undefined);
      proxy.setRule(undefined);
      await copyImage(`oci:${image.layout}:${image.tag}`, `docker://${proxy.host}/team/cut:1`, {
        preserveDigests: true,
      });
      assert.equal(digestOf(await inspectRaw(`${own.host}/team/cut:1`)), image.digest);
      assert.deepEqual((await own.store.fsck()).problems, []);
      assert.ok(proxy.requests.some((r) => r.faults.some((f) => f.kind === 'cutRequest')));
      // The cut PATCH's session is still there (a client may resume it) until the server closes.
      assert.equal((await partials(own.store)).length, 1);
      await own.server.close();
      assert.deepEqual(await partials(own.store), []);
    } finally {
      await proxy.stop();
      await own.server.close();
    }
  });
});
