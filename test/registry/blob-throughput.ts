// Throughput of RegistryClient.fetchBlob: one large blob from a loopback Distribution registry
// into a sink that discards the bytes, the client hashing them (sha256) as it must. Not a test
// (timings are never asserted); run by hand:
//   node --import tsx test/registry/blob-throughput.ts [sizeMiB=256] [runs=3]
// curl on the same blob gives the ratio to compare (figures vary ±40 % between runs).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { RegistryClient } from '../../src/registry/index.ts';
import { buildImage, pushImage, startRegistry } from '../harness/index.ts';
import { DiscardSink } from './helpers.ts';

const sizeMiB = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 3);
const mib = (bytes: number, ms: number) => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(0);

const registry = await startRegistry();
const image = await buildImage({ layers: [sizeMiB * 1024 * 1024], seed: 'throughput' });
try {
  await pushImage(image, registry, 'bench/blob:v1');
  const layer = image.images[0]?.layers[0];
  if (layer === undefined) throw new Error('no layer');
  const client = new RegistryClient({ endpoints: () => [{ baseUrl: registry.url, insecure: true }] });
  const repo = { registry: 'bench.local', path: 'bench/blob' };
  await client.resolve(repo, 'v1'); // warm the connection

  // sha256 alone, 64 KiB updates, for reference.
  const buf = Buffer.alloc(64 * 1024, 1);
  let t = performance.now();
  const h = createHash('sha256');
  for (let done = 0; done < layer.size; done += buf.length) h.update(buf);
  h.digest();
  console.log(`sha256 alone: ${mib(layer.size, performance.now() - t)} MiB/s`);

  for (let i = 0; i < runs; i++) {
    const url = `${registry.url}/v2/bench/blob/blobs/${layer.digest}`;
    t = performance.now();
    const curl = spawnSync('curl', ['-sS', '-o', '/dev/null', url]);
    const curlMs = performance.now() - t;
    t = performance.now();
    const result = await client.fetchBlob(repo, layer, new DiscardSink());
    const ms = performance.now() - t;
    console.log(
      `run ${i + 1}: fetchBlob ${layer.size} bytes (verified=${result.verified}) in ${ms.toFixed(0)} ms = ${mib(layer.size, ms)} MiB/s; ` +
        (curl.status === 0
          ? `curl ${mib(layer.size, curlMs)} MiB/s; ratio ${(curlMs / ms).toFixed(2)}`
          : 'curl unavailable'),
    );
  }
  await client.close();
} finally {
  await registry.stop();
  await image.remove();
}
