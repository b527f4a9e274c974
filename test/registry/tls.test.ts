// TLS: a registry with a throwaway CA, trusted through the endpoint's CA list; a failed
// handshake never leads to plain http (S6): every connection seen starts with a TLS record;
// https → http redirects are refused.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryClient, RegistryError, type BlobSink, type Endpoint } from '../../src/registry/index.ts';
import {
  buildImage,
  fault,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
} from '../harness/index.ts';
import { FakeClock, MemorySink, readBlob } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);
const REPO = { registry: 'tls.test', path: 'test/tls' };

/** A TCP relay that records the first byte of every connection (0x16 = TLS handshake). */
async function startRecordingRelay(
  port: number,
): Promise<{ port: number; firstBytes: number[]; stop: () => Promise<void> }> {
  const firstBytes: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = createConnection(port, '127.0.0.1');
    sockets.add(upstream);
    client.once('data', (chunk: Buffer) => firstBytes.push(chunk[0] ?? -1));
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    firstBytes,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('registry client over TLS', { skip }, () => {
  let registry: RunningRegistry;
  let image: BuiltImage;
  let relay: Awaited<ReturnType<typeof startRecordingRelay>>;
  const clients: RegistryClient[] = [];
  const client = (endpoint: Omit<Endpoint, 'baseUrl'>, baseUrl = registry.url): RegistryClient => {
    const c = new RegistryClient({ endpoints: () => [{ baseUrl, ...endpoint }], clock: new FakeClock() });
    clients.push(c);
    return c;
  };

  before(async () => {
    registry = await startRegistry({ tls: true });
    // The 3 MB layer is read by the lean HTTP reader (bodies ≥ 1 MiB), the other through undici.
    image = await buildImage({ layers: [500_000, 3_000_000], seed: 'tls' });
    await pushImage(image, registry, `${REPO.path}:v1`);
    relay = await startRecordingRelay(registry.port);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay?.stop();
    await registry?.stop();
    await image?.remove();
  });

  test('pulls with the registry CA given for the endpoint', async () => {
    assert.ok(registry.caPem);
    const c = client({ tls: { ca: [registry.caPem] } });
    const resolved = await c.resolve(REPO, 'v1');
    assert.equal(resolved.descriptor.digest, image.digest);
    const layer = image.images[0]?.layers[0];
    assert.ok(layer);
    const sink = new MemorySink();
    await c.fetchBlob(REPO, layer, sink);
    assert.deepEqual(sink.bytes(), await readBlob(image.blobPath(layer.digest)));
  });

  test('a large blob (the lean reader) verifies the certificate too: with the CA it arrives intact, without it ErrTLS', async () => {
    const layer = image.images[0]?.layers[1];
    assert.ok(layer && layer.size > 1024 * 1024 && registry.caPem);
    const sink = new MemorySink();
    const result = await client({ tls: { ca: [registry.caPem] } }).fetchBlob(REPO, layer, sink);
    assert.equal(result.verified, true);
    assert.deepEqual(sink.bytes(), await readBlob(image.blobPath(layer.digest)));

    relay.firstBytes.length = 0;
    const err = await client({}, `https://127.0.0.1:${relay.port}`)
      .fetchBlob(REPO, layer, new MemorySink())
      .catch((e: unknown) => e);
    assert.ok(err instanceof RegistryError && err.code === 'ErrTLS', String(err));
    assert.ok(
      relay.firstBytes.length >= 1 && relay.firstBytes.every((b) => b === 0x16),
      `plaintext seen: ${JSON.stringify(relay.firstBytes)}`,
    );
  });

  test('a sink that makes the lean reader wait gets every TLS record once and in order', async () => {
    // A TLS socket hands over all the records it decrypted in one go, even after the consumer
    // asked it to pause: those must wait their turn, not overtake the chunk being waited on.
    const layer = image.images[0]?.layers[1];
    assert.ok(layer && registry.caPem);
    const sink = new MemorySink();
    let busy = false;
    let overlapped = false;
    const waiting: BlobSink = {
      get offset() {
        return sink.offset;
      },
      write: (chunk) => sink.write(chunk),
      take(chunk) {
        if (busy) overlapped = true;
        busy = true;
        const copy = Buffer.from(chunk);
        return new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
          await sink.write(copy);
          busy = false;
        });
      },
      reset: () => sink.reset(),
    };
    const result = await client({ tls: { ca: [registry.caPem] } }).fetchBlob(REPO, layer, waiting);
    assert.equal(result.verified, true);
    assert.equal(overlapped, false, 'a chunk was handed over while the one before was still being taken');
    assert.deepEqual(sink.bytes(), await readBlob(image.blobPath(layer.digest)));
  });

  test('without the CA: ErrTLS, and nothing but TLS on the wire', async () => {
    relay.firstBytes.length = 0;
    const err = await client({}, `https://127.0.0.1:${relay.port}`)
      .resolve(REPO, 'v1')
      .catch((e: unknown) => e);
    assert.ok(err instanceof RegistryError && err.code === 'ErrTLS', String(err));
    assert.match(err.message, /CA certificate/);
    assert.ok(relay.firstBytes.length >= 1);
    assert.ok(
      relay.firstBytes.every((b) => b === 0x16),
      `plaintext seen: ${JSON.stringify(relay.firstBytes)}`,
    );
  });

  test('an endpoint marked insecure still never falls back to http', async () => {
    relay.firstBytes.length = 0;
    const err = await client({ insecure: true }, `https://127.0.0.1:${relay.port}`)
      .resolve(REPO, 'v1')
      .catch((e: unknown) => e);
    assert.ok(err instanceof RegistryError && err.code === 'ErrTLS', String(err));
    assert.ok(relay.firstBytes.every((b) => b === 0x16));
  });

  test('skipVerify accepts the certificate for that endpoint only', async () => {
    const resolved = await client({ tls: { skipVerify: true } }).resolve(REPO, 'v1');
    assert.equal(resolved.descriptor.digest, image.digest);
  });

  describe('redirects', () => {
    let tlsProxy: FaultProxy;
    before(async () => {
      const [certPem, keyPem] = await Promise.all([
        readFile(join(registry.dir, 'tls', 'server.crt'), 'utf8'),
        readFile(join(registry.dir, 'tls', 'server.key'), 'utf8'),
      ]);
      tlsProxy = await startFaultProxy({ upstream: registry.url, ca: registry.caPem, tls: { certPem, keyPem } });
    });
    after(async () => tlsProxy?.stop());

    test('https → http is refused (S6)', async () => {
      tlsProxy.setRule((r) =>
        r.path.includes('/blobs/') ? fault.redirect(`http://127.0.0.1:${relay.port}${r.url}`) : undefined,
      );
      relay.firstBytes.length = 0;
      const layer = image.images[0]?.layers[0];
      assert.ok(layer && registry.caPem);
      const err = await client({ tls: { ca: [registry.caPem] } }, tlsProxy.url)
        .fetchBlob(REPO, layer, new MemorySink())
        .catch((e: unknown) => e);
      assert.ok(err instanceof RegistryError && err.code === 'ErrInsecureRedirect', String(err));
      assert.equal(relay.firstBytes.length, 0, 'the http target was never contacted');
    });
  });
});
