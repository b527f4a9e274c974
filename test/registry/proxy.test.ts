// HTTP(S)_PROXY / NO_PROXY: requests tunnel through a CONNECT proxy unless the host is exempt.
import assert from 'node:assert/strict';
import http from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RegistryClient } from '../../src/registry/index.ts';
import {
  buildImage,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
} from '../harness/index.ts';
import { MemorySink } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const REPO = { registry: 'proxied.test', path: 'test/proxied' };

describe('registry client through an HTTP proxy', { skip }, () => {
  let registry: RunningRegistry;
  let image: BuiltImage;
  let proxy: http.Server;
  let proxyUrl: string;
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    registry = await startRegistry();
    image = await buildImage({ layers: [100_000], seed: 'proxy' });
    await pushImage(image, registry, `${REPO.path}:v1`);
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      upstream.on('error', drop);
      client.on('error', drop);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await registry?.stop();
    await image?.remove();
  });

  test('tunnels through the configured proxy', async () => {
    tunnels.length = 0;
    const client = new RegistryClient({
      endpoints: () => [{ baseUrl: registry.url, insecure: true }],
      proxy: { httpProxy: proxyUrl, httpsProxy: proxyUrl },
    });
    try {
      const resolved = await client.resolve(REPO, 'v1');
      assert.equal(resolved.descriptor.digest, image.digest);
      const layer = image.images[0]?.layers[0];
      assert.ok(layer);
      await client.fetchBlob(REPO, layer, new MemorySink());
      assert.ok(tunnels.length >= 1);
      assert.ok(
        tunnels.every((t) => t === registry.host),
        JSON.stringify(tunnels),
      );
    } finally {
      await client.close();
    }
  });

  test('NO_PROXY hosts are contacted directly', async () => {
    tunnels.length = 0;
    const client = new RegistryClient({
      endpoints: () => [{ baseUrl: registry.url, insecure: true }],
      proxy: { httpProxy: proxyUrl, noProxy: '127.0.0.1' },
    });
    try {
      await client.resolve(REPO, 'v1');
      assert.equal(tunnels.length, 0);
    } finally {
      await client.close();
    }
  });
});
