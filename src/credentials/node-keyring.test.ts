import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BasicCredential, Keyring, lookupPullCredentials, NodeConfigError, NodeKeyring } from './index.ts';
import {
  NODE_CONFIG_LIFETIME_MS,
  nodeConfigJsonPaths,
  nodeDockercfgPaths,
  readNodeDockerConfig,
} from './node-keyring.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const configJson = (user: string) => JSON.stringify({ auths: { 'reg.example.com': { auth: b64(`${user}:pw`) } } });
const dockercfg = (user: string) => JSON.stringify({ 'reg.example.com': { auth: b64(`${user}:pw`) } });

describe('node keyring (docs/semantics.md kubelet §8.2)', () => {
  let base: string;
  let rootDir: string;
  let workingDir: string;
  let home: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'kimg-node-'));
    rootDir = join(base, 'kubelet');
    workingDir = join(base, 'cwd');
    home = join(base, 'home');
    await Promise.all([mkdir(rootDir), mkdir(workingDir), mkdir(join(home, '.docker'), { recursive: true })]);
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const locations = () => ({ rootDir, workingDir, home });
  const userFound = async (onSkip?: (err: NodeConfigError) => void) => {
    const found = await readNodeDockerConfig({ ...locations(), onSkip });
    return found === undefined ? undefined : [found.path, found.config[0]?.[1].username];
  };

  it('searches config.json in root dir, working dir, $HOME/.docker, /.docker; then .dockercfg in root, working dir, $HOME, /', () => {
    assert.deepEqual(nodeConfigJsonPaths(locations()), [
      join(rootDir, 'config.json'),
      join(workingDir, 'config.json'),
      join(home, '.docker', 'config.json'),
      '/.docker/config.json',
    ]);
    assert.deepEqual(nodeDockercfgPaths(locations()), [
      join(rootDir, '.dockercfg'),
      join(workingDir, '.dockercfg'),
      join(home, '.dockercfg'),
      '/.dockercfg',
    ]);
  });

  it('takes the first config.json', async () => {
    await writeFile(join(workingDir, 'config.json'), configJson('cwd'));
    await writeFile(join(home, '.docker', 'config.json'), configJson('home'));
    assert.deepEqual(await userFound(), [join(workingDir, 'config.json'), 'cwd']);
    await writeFile(join(rootDir, 'config.json'), configJson('root'));
    assert.deepEqual(await userFound(), [join(rootDir, 'config.json'), 'root']);
  });

  it('skips an invalid config.json and reports it without its content', async () => {
    await writeFile(join(rootDir, 'config.json'), '{"auths": {"r": {"auth": "s3cret-in-file"');
    await writeFile(join(home, '.docker', 'config.json'), configJson('home'));
    const skipped: NodeConfigError[] = [];
    assert.deepEqual(await userFound((err) => skipped.push(err)), [join(home, '.docker', 'config.json'), 'home']);
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0]?.path, join(rootDir, 'config.json'));
    assert.ok(!skipped[0]?.message.includes('s3cret-in-file'));
  });

  it('falls back to .dockercfg only when no config.json is valid', async () => {
    await writeFile(join(home, '.dockercfg'), dockercfg('legacy'));
    assert.deepEqual(await userFound(), [join(home, '.dockercfg'), 'legacy']);
    await writeFile(join(workingDir, 'config.json'), '{}');
    assert.deepEqual(
      await userFound(),
      [join(workingDir, 'config.json'), undefined],
      'a valid config.json without auths still wins',
    );
  });

  it('keeps its answer for 5 minutes', async () => {
    let now = 0;
    const keyring = new NodeKeyring({ ...locations(), clock: () => now });
    assert.deepEqual(
      (await keyring.lookup('reg.example.com/app')).map((m) => m.credential.username),
      [],
    );
    await writeFile(join(rootDir, 'config.json'), configJson('root'));
    now = NODE_CONFIG_LIFETIME_MS - 1;
    assert.deepEqual(
      (await keyring.lookup('reg.example.com/app')).map((m) => m.credential.username),
      [],
      'cached, even when empty',
    );
    now = NODE_CONFIG_LIFETIME_MS;
    const matches = await keyring.lookup('reg.example.com/app');
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.sourceLabel]),
      [['root', `node config ${join(rootDir, 'config.json')}`]],
    );
  });

  it('orders pod secrets before node credentials, each keyring with its own Hub fallback (docs/semantics.md kubelet §8)', async () => {
    await writeFile(
      join(rootDir, 'config.json'),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('node-hub:pw') } } }),
    );
    const podSecrets = new Keyring().add({ kind: 'secret', namespace: 'ns', name: 's', uid: 'u' }, [
      ['docker.io', new BasicCredential('secret-direct', 'pw')],
    ]);
    const matches = await lookupPullCredentials('docker.io/library/nginx', {
      podSecrets,
      node: new NodeKeyring(locations()),
    });
    assert.deepEqual(
      matches.map((m) => [m.credential.username, m.sourceLabel, m.viaDockerHubFallback]),
      [
        ['secret-direct', 'secret ns/s', false],
        ['node-hub', `node config ${join(rootDir, 'config.json')}`, true],
      ],
    );
  });
});
