// Copy figures next to skopeo in the same run, over TLS with verified certificates: 1 GiB in 8
// layers registry → registry, the same copy within one registry (mounts), and copying again when
// the destination has it (requests counted by a pass-through proxy, no faults).
import { copyImage, openDestination, openSource, parseTransport } from '../src/copy/index.ts';
import { openRegistry } from '../src/pull/index.ts';
import { openStore } from '../src/store/index.ts';
import {
  buildImage,
  copyImage as skopeoCopy,
  makeTempDir,
  pushImage,
  startFaultProxy,
  startRegistry,
} from '../test/harness/index.ts';
import { GiB, fmtRatio, fmtRate, fmtSeconds, table } from './measure.ts';

export async function runCopyBench(): Promise<void> {
  const tmp = await makeTempDir('kimg-copy-bench-');
  // One destination per tool: skopeo's blob-info cache would otherwise mount what an earlier
  // round uploaded, and kimg would find it with HEAD.
  const [a, b, c] = await Promise.all([
    startRegistry({ tls: true }),
    startRegistry({ tls: true }),
    startRegistry({ tls: true }),
  ]);
  try {
    const image = await buildImage({
      layers: Array.from({ length: 8 }, () => GiB / 8),
      seed: 'copy-bench',
      gzipLevel: 0,
    });
    const size = image.images[0]?.layers.reduce((n, l) => n + l.size, 0) ?? GiB;
    const src = await pushImage(image, a, 'bench/src:v1');
    await image.remove();
    // Verified TLS on loopback too (as the registries of a real cluster serve).
    const registry = openRegistry({
      caPems: [a.caPem as string, b.caPem as string],
      hosts: { insecureLoopback: false },
    });
    const ctx = { registry, store: () => openStore(tmp.path) };
    const kimgCopy = async (from: string, to: string) => {
      const source = await openSource(parseTransport(from), ctx);
      const destination = await openDestination(parseTransport(to), ctx);
      const t = performance.now();
      const result = await copyImage(source, destination, { force: true });
      return { ms: performance.now() - t, result };
    };
    const skopeoMs = async (from: string, to: string) => {
      const t = performance.now();
      await skopeoCopy(from, to, {
        src: { certDir: a.certDir, tlsVerify: true },
        dest: { certDir: c.certDir, tlsVerify: true },
      });
      return performance.now() - t;
    };
    const s = await skopeoMs(`docker://${src.ref}`, `docker://${c.host}/skopeo0/app:v1`);
    const k = (await kimgCopy(`docker://${src.ref}`, `docker://${b.host}/kimg0/app:v1`)).ms;
    const mount = await kimgCopy(`docker://${src.ref}`, `docker://${a.host}/mounted/app:v1`);

    // Copy again through a pass-through proxy to count what reaches the destination.
    const proxy = await startFaultProxy({ upstream: b.url, ca: b.caPem });
    const counting = openRegistry({ caPems: [a.caPem as string] });
    let requests = '-';
    try {
      const source = await openSource(parseTransport(`docker://${src.ref}`), { registry: counting, store: ctx.store });
      const destination = await openDestination(parseTransport(`docker://${proxy.host}/kimg0/app:v1`), {
        registry: counting,
        store: ctx.store,
      });
      const again = await copyImage(source, destination);
      requests = `${proxy.requests.length} (${proxy.requests.map((r) => r.method).join(', ')}), up to date: ${again.upToDate}`;
    } catch (err) {
      requests = `failed: ${(err as Error).message.slice(0, 120)}`;
    } finally {
      await counting.close();
      await proxy.stop();
    }
    await registry.close();
    table(
      ['copy, TLS verified, 1 GiB / 8 layers', 'seconds', 'MB/s', 'vs skopeo'],
      [
        [
          'kimg copy docker:// → docker:// (one run, empty destination)',
          fmtSeconds(k),
          fmtRate(size, k),
          fmtRatio(s / k),
        ],
        ['skopeo copy docker:// → docker:// (one run, empty destination)', fmtSeconds(s), fmtRate(size, s), '1.00×'],
        [
          `kimg copy within one registry (${mount.result.mounted} mounts, ${mount.result.pushed} pushed)`,
          fmtSeconds(mount.ms),
          '-',
          '-',
        ],
      ],
    );
    console.log(`copy again, destination up to date: requests to the destination = ${requests}`);
  } finally {
    await Promise.all([a.stop(), b.stop(), c.stop(), tmp.remove()]);
  }
}
