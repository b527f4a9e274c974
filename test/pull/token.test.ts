// The pull engine against a real registry that requires bearer tokens from the harness token
// server: credentials go to the token realm, one token serves every request of the pull, and
// a pull without credentials fails with ErrUnauthorized naming the image.
import assert from 'node:assert/strict';
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
  startTokenServer,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
  type TokenServer,
} from '../harness/index.ts';
import { captureEvents } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const bob = { user: 'bob', password: 'Token-Auth-S3cret' };

describe('pull engine with token auth', { skip }, () => {
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let tmp: TempDir;
  let image: BuiltImage;
  const pullers: Puller[] = [];
  let stores = 0;
  const ref = () => `${registry.host}/test/token:v1`;
  const newPuller = async (credential?: BasicCredential): Promise<Puller> => {
    const env = {
      HOME: tmp.path,
      DOCKER_CONFIG: join(tmp.path, 'none'),
      REGISTRY_AUTH_FILE: join(tmp.path, 'none.json'),
    };
    const credentials = await loadCredentialSource({
      ...(credential !== undefined && { explicit: { [registry.host]: credential } }),
      env,
      home: tmp.path,
    });
    const puller = new Puller({ store: join(tmp.path, `store-${++stores}`), credentials });
    pullers.push(puller);
    return puller;
  };

  before(async () => {
    tmp = await makeTempDir('kimg-pull-token-');
    tokens = await startTokenServer({ users: { [bob.user]: bob.password }, allowAnonymous: false });
    registry = await startRegistry({ token: tokens });
    image = await buildImage({
      layers: [20_000, 20_000, 20_000],
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      seed: 'pull-token',
    });
    await pushImage(image, registry, 'test/token:v1', { creds: bob });
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await registry?.stop();
    await tokens?.stop();
    await image?.remove();
    await tmp?.remove();
  });

  test('pulls every platform with one token for the pull scope, asked for with the credentials', async () => {
    const puller = await newPuller(new BasicCredential(bob.user, bob.password));
    const before = tokens.requests.length;
    const { events, onEvent } = captureEvents();
    const result = await puller.pull(ref(), { allPlatforms: true, onEvent });
    assert.equal(result.descriptor.digest, image.digest);
    assert.equal(result.blobsFetched, 8);
    const asked = tokens.requests.slice(before);
    assert.equal(asked.length, 1, `token requests: ${asked.map((r) => `${r.method} ${r.status}`).join(', ')}`);
    assert.equal(asked[0]?.status, 200);
    assert.equal(asked[0]?.user, bob.user);
    const issued = tokens.issued.at(-1);
    assert.deepEqual(issued?.claims.access, [{ type: 'repository', name: 'test/token', actions: ['pull'] }]);
    assert.equal((await (await puller.store()).fsck()).ok, true);
    assert.ok(!JSON.stringify(events).includes(bob.password));
  });

  test('without credentials the pull fails with ErrUnauthorized naming the image', async () => {
    const puller = await newPuller();
    await assert.rejects(puller.pull(ref()), (err: unknown) => {
      assert.ok(err instanceof PullError, String(err));
      assert.equal(err.code, 'ErrUnauthorized');
      assert.ok(err.message.includes(ref()), err.message);
      return true;
    });
  });

  test('with a wrong password the pull fails with ErrUnauthorized and the password is not shown', async () => {
    const wrong = 'Not-The-Token-Pass';
    const puller = await newPuller(new BasicCredential(bob.user, wrong));
    const err = await puller.pull(ref()).catch((e: unknown) => e);
    assert.ok(err instanceof PullError && err.code === 'ErrUnauthorized', String(err));
    assert.ok(!`${err.message} ${err.stack ?? ''}`.includes(wrong));
  });
});
