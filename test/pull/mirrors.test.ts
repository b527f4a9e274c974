// Mirrors in front of a registry, configured the way users configure them (registries.conf,
// containerd hosts.toml): the pull goes to the mirror and never to the upstream. The registry
// and its "mirror" and "upstream" are one real registry behind two recording proxies, so each
// host's requests are counted apart.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Puller } from '../../src/pull/index.ts';
import { loadHostsConfig, type HostsConfig } from '../../src/registry/hosts/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { describeRequests } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

describe('pull engine with mirrors', { skip }, () => {
  let registry: RunningRegistry;
  let upstream: FaultProxy;
  let mirror: FaultProxy;
  let tmp: TempDir;
  let image: BuiltImage;
  const pullers: Puller[] = [];
  let stores = 0;
  const newPuller = (hosts: HostsConfig): Puller => {
    const puller = new Puller({ store: join(tmp.path, `store-${++stores}`), hosts });
    pullers.push(puller);
    return puller;
  };
  const registriesConf = async (mirrorOptions: string, registryOptions = ''): Promise<HostsConfig> => {
    const file = join(tmp.path, `registries-${++stores}.conf`);
    await writeFile(
      file,
      `[[registry]]\n${registryOptions}location = "${upstream.host}"\ninsecure = true\n\n[[registry.mirror]]\nlocation = "${mirror.host}"\ninsecure = true\n${mirrorOptions}`,
    );
    return loadHostsConfig({ registriesConf: file, certsDirs: [] });
  };

  before(async () => {
    tmp = await makeTempDir('kimg-pull-mirrors-');
    registry = await startRegistry();
    [upstream, mirror] = await Promise.all([
      startFaultProxy({ upstream: registry.url }),
      startFaultProxy({ upstream: registry.url }),
    ]);
    image = await buildImage({ layers: [10_000], seed: 'pull-mirrors' });
    await pushImage(image, registry, 'test/mirrored:v1');
  });
  beforeEach(() => {
    upstream.reset();
    mirror.reset();
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await Promise.all([upstream?.stop(), mirror?.stop()]);
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  test('registries.conf: a tag pull goes to the mirror, not to the upstream', async () => {
    const puller = newPuller(await registriesConf(''));
    const result = await puller.pull(`${upstream.host}/test/mirrored:v1`);
    assert.equal(result.descriptor.digest, image.digest);
    assert.deepEqual(describeRequests(upstream.requests), []);
    assert.ok(mirror.requests.some((r) => r.method === 'HEAD' && r.path === '/v2/test/mirrored/manifests/v1'));
    assert.equal(mirror.requests.filter((r) => r.path.includes('/blobs/')).length, 2);
  });

  test('containerd hosts.toml: a mirror host with pull and resolve serves the whole pull', async () => {
    const hostsDir = join(tmp.path, 'certs.d');
    await mkdir(join(hostsDir, upstream.host), { recursive: true });
    await writeFile(
      join(hostsDir, upstream.host, 'hosts.toml'),
      `server = "http://${upstream.host}"\n\n[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const puller = newPuller(await loadHostsConfig({ hostsDir }));
    const result = await puller.pull(`${upstream.host}/test/mirrored:v1`);
    assert.equal(result.descriptor.digest, image.digest);
    assert.deepEqual(describeRequests(upstream.requests), []);
    assert.equal(mirror.requests.filter((r) => r.path.includes('/blobs/')).length, 2);
  });

  test('registries.conf: a digest-only mirror serves a pull by digest', async () => {
    const puller = newPuller(await registriesConf('pull-from-mirror = "digest-only"\n'));
    await puller.pull(`${upstream.host}/test/mirrored@${image.digest}`);
    assert.ok(mirror.requests.length > 0, 'the digest-only mirror was not contacted');
    assert.deepEqual(describeRequests(upstream.requests), []);
  });

  test('registries.conf: prefix and location rewrite the repository', async () => {
    const file = join(tmp.path, 'rewrite.conf');
    await writeFile(
      file,
      `[[registry]]\nprefix = "${upstream.host}/alias"\nlocation = "${mirror.host}/test"\ninsecure = true\n`,
    );
    const puller = newPuller(await loadHostsConfig({ registriesConf: file, certsDirs: [] }));
    const result = await puller.pull(`${upstream.host}/alias/mirrored:v1`);
    assert.equal(result.descriptor.digest, image.digest);
    assert.ok(mirror.requests.some((r) => r.path === '/v2/test/mirrored/manifests/v1'));
  });
});
