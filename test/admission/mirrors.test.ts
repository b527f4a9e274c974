// Registry host configuration in the webhook (`resolver.hostsDir`, `resolver.registriesConf`):
// lookups follow containerd hosts.toml mirrors and registries.conf mirrors and blocks exactly as
// the pull engine does. The logical registries `example.invalid` and `conf.invalid` cannot
// resolve in DNS; only their mirror, the real local registry behind the fault proxy, can answer.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AdmissionConfigError, createAdmissionRuntime, parseAdmissionConfig } from '../../src/admission/index.ts';
import { requireTools } from '../harness/index.ts';
import { patchMap } from './apiserver.ts';
import { objects, startRegistryFixture, startWebhook, writeJson, type RegistryFixture } from './fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

describe('registry mirrors for lookups', { skip }, () => {
  let fx: RegistryFixture;
  let hostsDir: string;
  let registriesConf: string;

  before(async () => {
    fx = await startRegistryFixture(['app', 'redis']);
    hostsDir = join(fx.temp.path, 'certs.d');
    await mkdir(join(hostsDir, 'example.invalid'), { recursive: true });
    await writeFile(
      join(hostsDir, 'example.invalid', 'hosts.toml'),
      [
        'server = "https://example.invalid"',
        '',
        `[host."${fx.proxy.url}"]`,
        '  capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    );
    registriesConf = join(fx.temp.path, 'registries.conf');
    await writeFile(
      registriesConf,
      [
        '[[registry]]',
        'prefix = "conf.invalid"',
        'location = "conf.invalid"',
        '[[registry.mirror]]',
        `location = "${fx.proxy.host}"`,
        'insecure = true',
        '',
        '[[registry]]',
        'prefix = "blocked.invalid"',
        'location = "blocked.invalid"',
        'blocked = true',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await fx?.stop();
  });

  test('hostsDir: a hosts.toml mirror answers for example.invalid, without the credentials meant for example.invalid', async () => {
    // Credentials for the logical registry: a mirror must never receive them.
    const dockerConfig = await writeJson(join(fx.temp.path, 'example-config.json'), {
      auths: { 'example.invalid': { auth: Buffer.from('alice:not-for-the-mirror').toString('base64') } },
    });
    const hook = await startWebhook(fx, { resolver: { hostsDir, dockerConfig } }, {}, ['example.invalid']);
    try {
      fx.proxy.reset();
      const result = await hook.mutate({
        object: objects.pod({ containers: objects.containers('example.invalid/team/app:v1', 'redis:7.2') }),
      });
      assert.equal(result.response.allowed, true, result.response.status?.message);
      assert.deepEqual(patchMap(result.patch), {
        '/spec/containers/0/image': `example.invalid/team/app:v1@${fx.digest('app')}`,
        // registryHosts still applies beside hostsDir.
        '/spec/containers/1/image': `redis:7.2@${fx.digest('redis')}`,
      });
      const lookups = fx.proxy.requests.filter((r) => r.path === '/v2/team/app/manifests/v1');
      assert.ok(lookups.length > 0, 'the mirror was asked for the tag');
      assert.ok(
        lookups.every((r) => r.headers.authorization === undefined),
        'no credentials sent to the mirror',
      );
    } finally {
      await hook.stop();
    }
  });

  test('registriesConf: a registries.conf mirror answers for conf.invalid; a blocked registry is denied without a lookup', async () => {
    const hook = await startWebhook(fx, { resolver: { registriesConf } }, {}, ['conf.invalid', 'blocked.invalid']);
    try {
      const pinned = await hook.mutate({
        object: objects.pod({ containers: objects.containers('conf.invalid/team/app:v1') }),
      });
      assert.deepEqual(patchMap(pinned.patch), {
        '/spec/containers/0/image': `conf.invalid/team/app:v1@${fx.digest('app')}`,
      });

      fx.proxy.reset();
      const blocked = await hook.mutate({
        object: objects.pod({ containers: objects.containers('blocked.invalid/team/app:v1') }),
      });
      assert.equal(blocked.response.allowed, false);
      assert.match(blocked.response.status?.message ?? '', /blocked\.invalid\/team\/app:v1: blocked/);
      assert.equal(fx.proxy.requests.length, 0);
    } finally {
      await hook.stop();
    }
  });

  test('a missing directory or file, or a broken hosts.toml, is a startup error naming the setting', async () => {
    const broken = join(fx.temp.path, 'broken.d');
    await mkdir(join(broken, 'example.invalid'), { recursive: true });
    await writeFile(join(broken, 'example.invalid', 'hosts.toml'), 'server = [not toml\n');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ hostsDir: join(fx.temp.path, 'no-such-dir') }, /resolver\.hostsDir: .*no-such-dir: no such directory/],
      [{ hostsDir: broken }, /resolver\.hostsDir: .*broken\.d\/example\.invalid\/hosts\.toml/],
      [{ registriesConf: join(fx.temp.path, 'no-such.conf') }, /resolver\.registriesConf: .*no-such\.conf/],
    ];
    for (const [resolver, message] of cases) {
      const config = parseAdmissionConfig({
        resolver: { ...resolver, secretSource: 'none', dockerConfig: join(fx.temp.path, 'none.json') },
      });
      await assert.rejects(
        createAdmissionRuntime(config, { env: {} }),
        (err: unknown) => err instanceof AdmissionConfigError && message.test(err.message),
        JSON.stringify(resolver),
      );
    }
  });
});
