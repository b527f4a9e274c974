// The pull engine against a real registry that requires htpasswd (Basic) credentials: given
// explicitly, read from a Docker config.json in $DOCKER_CONFIG, and missing (ErrUnauthorized
// naming the image). The password never shows in output, errors or progress events.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BasicCredential } from '../../src/credentials/index.ts';
import { PullError, Puller, loadCredentialSource } from '../../src/pull/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import { captureEvents } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);
const alice = { user: 'alice', password: 'Pull-Basic-S3cret' };

describe('pull engine with htpasswd (Basic) auth', { skip }, () => {
  let registry: RunningRegistry;
  let tmp: TempDir;
  let image: BuiltImage;
  let dockerConfig: string;
  const pullers: Puller[] = [];
  let stores = 0;
  const storeDir = () => join(tmp.path, `store-${++stores}`);
  const ref = () => `${registry.host}/test/basic:v1`;
  /** An environment with no credentials unless a test adds some. */
  const env = (extra: Record<string, string> = {}) => ({
    HOME: tmp.path,
    DOCKER_CONFIG: join(tmp.path, 'empty-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
    ...extra,
  });
  const newPuller = async (explicit?: Record<string, BasicCredential>, environment = env()): Promise<Puller> => {
    const credentials = await loadCredentialSource({
      ...(explicit !== undefined && { explicit }),
      env: environment,
      home: tmp.path,
    });
    const puller = new Puller({ store: storeDir(), credentials });
    pullers.push(puller);
    return puller;
  };

  before(async () => {
    tmp = await makeTempDir('kimg-pull-basic-');
    registry = await startRegistry({ htpasswd: [alice] });
    image = await buildImage({ layers: [30_000], seed: 'pull-basic' });
    await pushImage(image, registry, 'test/basic:v1', { creds: alice });
    dockerConfig = join(tmp.path, 'docker-config');
    await mkdir(dockerConfig);
    const auth = Buffer.from(`${alice.user}:${alice.password}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await registry?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  test('pulls with explicit credentials, and no event carries the password', async () => {
    const puller = await newPuller({ [registry.host]: new BasicCredential(alice.user, alice.password) });
    const { events, onEvent } = captureEvents();
    const result = await puller.pull(ref(), { onEvent });
    assert.equal(result.descriptor.digest, image.digest);
    assert.equal((await (await puller.store()).fsck()).ok, true);
    assert.ok(!JSON.stringify(events).includes(alice.password));
  });

  test('pulls with the credentials of a Docker config.json in $DOCKER_CONFIG', async () => {
    const puller = await newPuller(undefined, env({ DOCKER_CONFIG: dockerConfig }));
    const result = await puller.pull(ref());
    assert.equal(result.descriptor.digest, image.digest);
  });

  test('without credentials the pull fails with ErrUnauthorized naming the image', async () => {
    const puller = await newPuller();
    await assert.rejects(puller.pull(ref()), (err: unknown) => {
      assert.ok(err instanceof PullError, String(err));
      assert.equal(err.code, 'ErrUnauthorized');
      assert.equal(err.image, ref());
      assert.ok(err.message.includes(ref()), err.message);
      return true;
    });
    assert.deepEqual(await (await puller.store()).listImages(), []);
  });

  test('with the wrong password the pull fails with ErrUnauthorized, and the password is not shown', async () => {
    const wrong = 'Wrong-Basic-Pass-123';
    const puller = await newPuller({ [registry.host]: new BasicCredential(alice.user, wrong) });
    const err = await puller.pull(ref()).catch((e: unknown) => e);
    assert.ok(err instanceof PullError && err.code === 'ErrUnauthorized', String(err));
    assert.ok(!`${err.message} ${err.stack ?? ''}`.includes(wrong));
  });

  test('kimg pull: --creds and $DOCKER_CONFIG succeed; none fails with exit 1 naming ErrUnauthorized and the image', async () => {
    const [withCreds, withConfig, without] = await Promise.all([
      runCli(['pull', '--progress=json', '--creds', `${alice.user}:${alice.password}`, '--store', storeDir(), ref()], {
        env: env(),
      }),
      runCli(['pull', '-q', '--store', storeDir(), ref()], { env: env({ DOCKER_CONFIG: dockerConfig }) }),
      runCli(['pull', '--store', storeDir(), ref()], { env: env() }),
    ]);
    assert.equal(withCreds.status, 0, withCreds.stderr);
    assert.ok(!withCreds.stdout.includes(alice.password) && !withCreds.stderr.includes(alice.password));
    assert.equal(withConfig.status, 0, withConfig.stderr);
    assert.equal(withConfig.stdout, `${ref()}\n`);
    assert.equal(without.status, 1);
    assert.match(without.stderr, /\(ErrUnauthorized\)$/m);
    assert.ok(without.stderr.includes(ref()), without.stderr);
  });
});
