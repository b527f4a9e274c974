// Registries written with their default port (`ghcr.io:443/org/app`, `[::1]:443/x`) are valid
// names that the kubelet and containerd pull from (issue 11, item 9): `kimg pull`, `kimg pin`
// and the webhook take them, reaching the real registry through host configuration (tests only
// use loopback ports), and keep the name as written.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../cli/run-cli.ts';
import { requireTools } from '../harness/index.ts';
import { patchMap } from '../admission/apiserver.ts';
import { objects, startRegistryFixture, startWebhook, type RegistryFixture } from '../admission/fixture.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'openssl']);

const NAMES = ['ghcr.io:443', 'registry.example.com:443', '[::1]:443'] as const;

describe('registries written with an explicit default port', { skip }, () => {
  let fx: RegistryFixture;
  let hostsDir: string;
  const env = () => ({
    HOME: fx.temp.path,
    KIMG_STORE: '',
    DOCKER_CONFIG: join(fx.temp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(fx.temp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: fx.temp.path,
  });

  before(async () => {
    fx = await startRegistryFixture(['app']);
    // containerd's hosts directory names a registry as written, port included.
    hostsDir = join(fx.temp.path, 'certs.d');
    for (const name of NAMES) {
      await mkdir(join(hostsDir, name), { recursive: true });
      await writeFile(
        join(hostsDir, name, 'hosts.toml'),
        `server = "${fx.proxy.url}"\n\n[host."${fx.proxy.url}"]\n  capabilities = ["pull", "resolve"]\n`,
      );
    }
  });
  after(() => fx?.stop());

  test('kimg pull stores the image under the name as written', async () => {
    const store = join(fx.temp.path, 'store');
    const image = 'ghcr.io:443/team/app:v1';
    const pull = await runCli(['pull', '-q', '--hosts-dir', hostsDir, '--store', store, image], { env: env() });
    assert.equal(pull.status, 0, pull.stderr);
    assert.equal(pull.stdout, `${image}\n`);
    const images = await runCli(['images', '--store', store, '-o', 'json'], { env: env() });
    assert.equal(images.status, 0, images.stderr);
    assert.ok(images.stdout.includes(fx.digest('app')), images.stdout);
    assert.match(images.stdout, /ghcr\.io:443\/team\/app/);
  });

  test('kimg pin resolves each spelling to the image digest', async () => {
    const file = join(fx.temp.path, 'pod.yaml');
    const containers = NAMES.map((name, i) => `  - {name: c${i}, image: "${name}/team/app:v1"}`).join('\n');
    await writeFile(file, `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n${containers}\n`);
    const pin = await runCli(['pin', '--hosts-dir', hostsDir, '-f', file], { env: env() });
    assert.equal(pin.status, 0, pin.stderr);
    for (const name of NAMES) assert.ok(pin.stdout.includes(`${name}/team/app:v1@${fx.digest('app')}`), pin.stdout);
  });

  test('the webhook admits and pins a Pod the kubelet would run', async () => {
    const registryHosts = { ...fx.registryHosts, ...Object.fromEntries(NAMES.map((n) => [n, fx.proxy.url])) };
    const hook = await startWebhook(fx, { resolver: { registryHosts } });
    try {
      const result = await hook.mutate({
        object: objects.pod({ containers: NAMES.map((name, i) => ({ name: `c${i}`, image: `${name}/team/app:v1` })) }),
      });
      assert.equal(result.response.allowed, true, JSON.stringify(result.response.status));
      assert.deepEqual(
        patchMap(result.patch),
        Object.fromEntries(
          NAMES.map((name, i) => [`/spec/containers/${i}/image`, `${name}/team/app:v1@${fx.digest('app')}`]),
        ),
      );
    } finally {
      await hook.stop();
    }
  });
});
