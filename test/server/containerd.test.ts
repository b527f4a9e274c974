// containerd 1.6 pulling through `kimg registry serve` as its mirror: a daemon of our own (own
// root, state and socket) runs `ctr images pull --hosts-dir DIR`, where DIR holds the
// hosts.toml files `kimg registry hosts-toml` writes. Plain HTTP and TLS (the CA named in
// hosts.toml); `?ns=` routing for Docker Hub and for a registry with a port.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { renderHostsToml } from '../../src/server/node-config.ts';
import type { RegistryServer } from '../../src/server/index.ts';
import type { Store } from '../../src/store/index.ts';
import {
  Containerd,
  buildImage,
  makeServerCertificates,
  makeTempDir,
  requireTools,
  type BuiltImage,
  type TempDir,
} from '../harness/index.ts';
import { seedStore, startServer } from './helpers.ts';

const skip = requireTools(['containerd', 'ctr']);

async function writeHostsDir(dir: string, files: Map<string, string>): Promise<void> {
  for (const [host, text] of files) {
    await mkdir(join(dir, host), { recursive: true });
    await writeFile(join(dir, host, 'hosts.toml'), text);
  }
}

describe('containerd pulls through kimg registry serve', { skip }, () => {
  let tmp: TempDir;
  let containerd: Containerd;
  let store: Store;
  let plain: RegistryServer;
  let tls: RegistryServer;
  let single: BuiltImage;
  let multi: BuiltImage;
  const log: string[] = [];

  before(async () => {
    tmp = await makeTempDir('kimg-serve-ctr-');
    [single, multi] = await Promise.all([
      buildImage({ layers: [4_000, 30_000], seed: 'serve-ctr-single' }),
      buildImage({ layers: [6_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'serve-ctr-multi' }),
    ]);
    ({ server: plain, store } = await startServer(join(tmp.path, 'store'), { accessLog: (l) => log.push(l) }));
    await seedStore(store, single, 'docker.io/library/app:1');
    await seedStore(store, multi, '127.0.0.1:5999/team/multi:2');
    const certs = await makeServerCertificates(join(tmp.path, 'certs'));
    const { readFile } = await import('node:fs/promises');
    ({ server: tls } = await startServer(join(tmp.path, 'store'), {
      store,
      tls: { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) },
      accessLog: (l) => log.push(l),
    }));
    await writeHostsDir(
      join(tmp.path, 'hosts-plain'),
      renderHostsToml({ mirror: plain.url, registries: ['docker.io', '127.0.0.1:5999'] }),
    );
    await writeHostsDir(
      join(tmp.path, 'hosts-tls'),
      renderHostsToml({ mirror: tls.url, registries: ['docker.io'], caFile: certs.caFile }),
    );
    containerd = await Containerd.start(join(tmp.path, 'containerd'), 'kimg-test');
  });

  after(async () => {
    await containerd?.stop();
    await plain?.close();
    await tls?.close();
    await tmp?.remove();
  });

  const imageDigest = async (ref: string): Promise<string | undefined> => {
    const listing = await containerd.ctr(['images', 'ls']);
    const row = listing.split('\n').find((line) => line.startsWith(`${ref} `));
    return row?.split(/\s+/).find((field) => field.startsWith('sha256:'));
  };

  test('plain HTTP: docker.io and a registry with a port, routed by ?ns=', async () => {
    log.length = 0;
    await containerd.ctr([
      'images',
      'pull',
      '--hosts-dir',
      join(tmp.path, 'hosts-plain'),
      '--snapshotter',
      'native',
      'docker.io/library/app:1',
    ]);
    assert.equal(await imageDigest('docker.io/library/app:1'), single.digest);
    assert.ok(
      log.some((line) => line.includes('/v2/library/app/manifests/1?ns=docker.io')),
      log.join('\n'),
    );
    await containerd.ctr([
      'content',
      'fetch',
      '--hosts-dir',
      join(tmp.path, 'hosts-plain'),
      '--platform',
      'linux/arm64/v8',
      '127.0.0.1:5999/team/multi:2',
    ]);
    assert.equal(await imageDigest('127.0.0.1:5999/team/multi:2'), multi.digest);
    assert.ok(
      log.some((line) => line.includes('ns=127.0.0.1%3A5999')),
      log.join('\n'),
    );
  });

  test('TLS: the mirror verified with the CA hosts.toml names', async () => {
    await containerd.clean();
    log.length = 0;
    await containerd.ctr([
      'images',
      'pull',
      '--hosts-dir',
      join(tmp.path, 'hosts-tls'),
      '--snapshotter',
      'native',
      'docker.io/library/app:1',
    ]);
    assert.equal(await imageDigest('docker.io/library/app:1'), single.digest);
    assert.ok(
      log.some((line) => line.includes('/blobs/')),
      log.join('\n'),
    );
  });
});
