import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  BasicCredential,
  CredentialHelperError,
  DockerConfigError,
  HostCredentialResolver,
  IdentityTokenCredential,
  RegistryTokenCredential,
  type Credential,
} from './index.ts';
import { containersAuthPaths, dockerConfigPath, loadCredentialFiles } from './docker-config-files.ts';
import {
  normalizeAuthKey,
  parseDockerConfigFile,
  resolveInDockerConfig,
  type RegistryTarget,
} from './docker-config.ts';

const SECRET = 'cfg-s3cret-pw';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const file = (document: object, path = '/home/u/.docker/config.json') =>
  parseDockerConfigFile(JSON.stringify(document), path);

function userOf(credential: Credential | undefined): string | undefined {
  if (credential === undefined) return undefined;
  return credential.kind === 'registryToken' ? '(registry token)' : credential.username;
}

function resolvedUser(document: object, target: RegistryTarget): string | undefined {
  const resolution = resolveInDockerConfig(file(document), target);
  return resolution.kind === 'credential' ? userOf(resolution.credential) : resolution.kind;
}

describe('docker config: key normalisation (docs/semantics.md registry §7)', () => {
  const cases: [string, string][] = [
    ['https://index.docker.io/v1/', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['docker.io', 'docker.io'],
    ['http://reg.example.com:5000/v2/', 'reg.example.com:5000'],
    ['https://reg.example.com/v1', 'reg.example.com'],
    ['reg.example.com/v1x', 'reg.example.com/v1x'],
    ['REG.Example.com', 'reg.example.com'],
    ['reg.example.com/team/app', 'reg.example.com/team/app'],
    ['https://reg.example.com/team/', 'reg.example.com/team'],
    ['reg.example.com:443', 'reg.example.com:443'],
  ];
  for (const [key, expected] of cases) {
    it(`${key} → ${expected}`, () => assert.equal(normalizeAuthKey(key), expected));
  }

  for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    it(`serves ${host} from the Hub key https://index.docker.io/v1/`, () => {
      const user = resolvedUser(
        { auths: { 'https://index.docker.io/v1/': { auth: b64(`hub:${SECRET}`) } } },
        { host, repository: 'library/nginx' },
      );
      assert.equal(user, 'hub');
    });
  }

  it('matches hosts exactly (no globs, ports count)', () => {
    const document = { auths: { 'reg.example.com': { auth: b64('a:b') }, '*.example.com': { auth: b64('glob:b') } } };
    assert.equal(resolvedUser(document, { host: 'other.example.com' }), 'none');
    assert.equal(resolvedUser(document, { host: 'reg.example.com:5000' }), 'none');
    assert.equal(resolvedUser(document, { host: 'reg.example.com' }), 'a');
  });

  it('prefers the key written exactly as the host among keys that normalise alike', () => {
    const document = { auths: { 'https://quay.io': { auth: b64('url:p') }, 'quay.io': { auth: b64('exact:p') } } };
    assert.equal(resolvedUser(document, { host: 'quay.io' }), 'exact');
  });
});

describe('docker config: precedence credHelpers > credsStore > auths', () => {
  const document = {
    auths: { 'reg.example.com': { auth: b64('stored:p') }, 'other.example.com': { auth: b64('other:p') } },
    credsStore: 'desktop',
    credHelpers: { 'reg.example.com': 'ecr-login', 'https://index.docker.io/v1/': 'hub-helper' },
  };

  it('uses credHelpers[host] first', () => {
    assert.deepEqual(resolveInDockerConfig(file(document), { host: 'reg.example.com' }), {
      kind: 'helper',
      helper: 'ecr-login',
      serverURL: 'reg.example.com',
      key: 'reg.example.com',
    });
  });

  it('asks helpers about Docker Hub with the Hub server URL', () => {
    const resolution = resolveInDockerConfig(file(document), { host: 'registry-1.docker.io' });
    assert.deepEqual(resolution, {
      kind: 'helper',
      helper: 'hub-helper',
      serverURL: 'https://index.docker.io/v1/',
      key: 'https://index.docker.io/v1/',
    });
  });

  it('then credsStore, which shadows auths', () => {
    const resolution = resolveInDockerConfig(file(document), { host: 'other.example.com' });
    assert.deepEqual(resolution, { kind: 'helper', helper: 'desktop', serverURL: 'other.example.com', key: undefined });
  });

  it('then auths', () => {
    const { credsStore: _unused, ...withoutStore } = document;
    assert.equal(resolvedUser(withoutStore, { host: 'other.example.com' }), 'other');
    assert.equal(resolvedUser(withoutStore, { host: 'unknown.example.com' }), 'none');
  });
});

describe('docker config: entries', () => {
  const target = { host: 'reg.example.com' };

  it('decodes auth (base64 user:pass), replacing username/password', () => {
    const resolution = resolveInDockerConfig(
      file({ auths: { 'reg.example.com': { username: 'x', auth: b64(`user:${SECRET}`) } } }),
      target,
    );
    assert.ok(resolution.kind === 'credential' && resolution.credential instanceof BasicCredential);
    assert.equal(resolution.credential.username, 'user');
    assert.equal(resolution.credential.password, SECRET);
  });

  it('reads username/password fields', () => {
    assert.equal(resolvedUser({ auths: { 'reg.example.com': { username: 'plain', password: 'p' } } }, target), 'plain');
  });

  it('turns identitytoken into an identity token credential', () => {
    const resolution = resolveInDockerConfig(
      file({ auths: { 'reg.example.com': { auth: b64('user:x'), identitytoken: SECRET } } }),
      target,
    );
    assert.ok(resolution.kind === 'credential' && resolution.credential instanceof IdentityTokenCredential);
    assert.equal(resolution.credential.identityToken, SECRET);
    assert.equal(resolution.credential.username, 'user');
  });

  it('turns registrytoken into a registry token credential (it wins over the rest)', () => {
    const resolution = resolveInDockerConfig(
      file({ auths: { 'reg.example.com': { identitytoken: 'x', registrytoken: SECRET } } }),
      target,
    );
    assert.ok(resolution.kind === 'credential' && resolution.credential instanceof RegistryTokenCredential);
    assert.equal(resolution.credential.registryToken, SECRET);
  });

  it('skips empty entries (as Docker Desktop writes them)', () => {
    assert.equal(resolvedUser({ auths: { 'reg.example.com': {} } }, target), 'none');
  });

  const invalid: [object, RegExp][] = [
    [{ auth: `user:${SECRET}` }, /auth: not valid base64/],
    [{ auth: b64(`user${SECRET}`) }, /auth: must be base64 of "username:password"/],
    [{ auth: b64(`:${SECRET}`) }, /non-empty username/],
    [{ password: [SECRET] }, /password: expected a string, found array/],
    [[SECRET] as unknown as object, /expected an object, found array/],
  ];
  for (const [entry, problem] of invalid) {
    it(`reports ${problem.source} naming the file and key, never the secret`, () => {
      const parsed = file({ auths: { 'reg.example.com': entry, 'ok.example.com': { auth: b64('ok:p') } } });
      assert.equal(userOf(resolveOk(parsed, { host: 'ok.example.com' })), 'ok', 'other hosts still work');
      assert.throws(
        () => resolveInDockerConfig(parsed, target),
        (err: unknown) => {
          assert.ok(err instanceof DockerConfigError);
          assert.equal(err.code, 'credentials.ErrInvalidDockerConfig');
          assert.equal(err.path, '/home/u/.docker/config.json');
          assert.equal(err.key, 'reg.example.com');
          assert.match(err.message, /\/home\/u\/\.docker\/config\.json, key "reg\.example\.com"/);
          assert.match(err.problem, problem);
          for (const rendering of [err.message, inspect(err), JSON.stringify(err)]) {
            assert.ok(!rendering.includes(SECRET), rendering);
            assert.ok(!rendering.includes(b64(`user${SECRET}`)), rendering);
          }
          return true;
        },
      );
    });
  }

  it('rejects unusable files naming the file and not the content', () => {
    for (const [text, problem] of [
      [`{"auths": {"r": {"auth": "${SECRET}"`, /not valid JSON/],
      ['[]', /expected an object, found array/],
      ['{"auths": []}', /auths: expected an object/],
      ['{"credHelpers": {"r": 1}}', /credHelpers value: expected a string/],
      ['{"credsStore": 1}', /credsStore: expected a string/],
    ] as const) {
      assert.throws(
        () => parseDockerConfigFile(text, '/x/config.json'),
        (err: unknown) => {
          assert.ok(err instanceof DockerConfigError);
          assert.match(err.message, /\/x\/config\.json/);
          assert.match(err.message, problem);
          assert.ok(!err.message.includes(SECRET));
          return true;
        },
      );
    }
  });
});

function resolveOk(parsed: ReturnType<typeof file>, target: RegistryTarget): Credential | undefined {
  const resolution = resolveInDockerConfig(parsed, target);
  return resolution.kind === 'credential' ? resolution.credential : undefined;
}

describe('containers auth.json: namespace keys', () => {
  const document = {
    auths: {
      'quay.io': { auth: b64('registry:p') },
      'quay.io/team': { auth: b64('team:p') },
      'quay.io/team/app': { auth: b64('repo:p') },
    },
  };
  const cases: [string, string][] = [
    ['team/app', 'repo'],
    ['team/app/sub', 'repo'],
    ['team/other', 'team'],
    ['teamx/app', 'registry'],
    ['elsewhere', 'registry'],
    ['', 'registry'],
  ];
  for (const [repository, expected] of cases) {
    it(`quay.io/${repository} → ${expected} (most specific namespace first, at path boundaries)`, () => {
      assert.equal(resolvedUser(document, { host: 'quay.io', repository }), expected);
    });
  }

  it('does not fall back to a namespace key for the bare registry', () => {
    assert.equal(
      resolvedUser(
        { auths: { 'quay.io/team': { auth: b64('team:p') } } },
        { host: 'quay.io', repository: 'other/app' },
      ),
      'none',
    );
  });
});

describe('credential file locations', () => {
  it('uses $DOCKER_CONFIG/config.json, else ~/.docker/config.json', () => {
    assert.equal(
      dockerConfigPath({ env: { DOCKER_CONFIG: '/etc/docker-cfg' }, home: '/home/u' }),
      '/etc/docker-cfg/config.json',
    );
    assert.equal(dockerConfigPath({ env: {}, home: '/home/u' }), '/home/u/.docker/config.json');
    assert.equal(dockerConfigPath({ env: { DOCKER_CONFIG: '' }, home: '/home/u' }), '/home/u/.docker/config.json');
  });

  it('uses $REGISTRY_AUTH_FILE alone, else $XDG_RUNTIME_DIR then ~/.config for auth.json', () => {
    assert.deepEqual(
      containersAuthPaths({ env: { REGISTRY_AUTH_FILE: '/a/auth.json', XDG_RUNTIME_DIR: '/run/user/1' }, home: '/h' }),
      ['/a/auth.json'],
    );
    assert.deepEqual(containersAuthPaths({ env: { XDG_RUNTIME_DIR: '/run/user/1' }, home: '/h' }), [
      '/run/user/1/containers/auth.json',
      '/h/.config/containers/auth.json',
    ]);
    assert.deepEqual(containersAuthPaths({ env: {}, home: '/h' }), ['/h/.config/containers/auth.json']);
  });
});

describe('HostCredentialResolver (files on disk, real helper programs)', () => {
  let home: string;
  let env: Record<string, string | undefined>;
  const HELPER = `#!/bin/sh
url=$(cat)
printf '%s\\n' "$url" >> "$HELPER_LOG"
case "$url" in
  helped.example.com) printf '{"ServerURL":"%s","Username":"from-helper","Secret":"${SECRET}"}' "$url" ;;
  failing.example.com) printf '${SECRET}'; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

  async function writeJson(path: string, value: object): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify(value));
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'kimg-home-'));
    const bin = join(home, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'docker-credential-kimgtest'), HELPER);
    await chmod(join(bin, 'docker-credential-kimgtest'), 0o755);
    env = {
      PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}`,
      HELPER_LOG: join(home, 'helper.log'),
      XDG_RUNTIME_DIR: join(home, 'run'),
    };
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: {
        'https://index.docker.io/v1/': { auth: b64(`hubuser:${SECRET}`) },
        'upstream.example.com': { auth: b64('upstream-user:up') },
        'mirror.example.com:5000': { auth: b64('mirror-user:mi') },
        'notfound.example.com': { auth: b64('never-used:x') },
      },
      credHelpers: {
        'helped.example.com': 'kimgtest',
        'failing.example.com': 'kimgtest',
        'notfound.example.com': 'kimgtest',
      },
    });
    await writeJson(join(home, 'run', 'containers', 'auth.json'), {
      auths: {
        'podman.example.com/team': { auth: b64('podman-team:p') },
        'notfound.example.com': { auth: b64('from-auth-json:p') },
      },
    });
  });

  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const load = (extra: object = {}) => HostCredentialResolver.load({ env, home, ...extra });
  const user = async (resolver: HostCredentialResolver, target: RegistryTarget) =>
    userOf((await resolver.resolve(target))?.credential);

  it('reads Docker config then containers auth.json from the injected home and env', async () => {
    const resolver = await load();
    assert.deepEqual(
      resolver.files.map((f) => f.path),
      [join(home, '.docker', 'config.json'), join(home, 'run', 'containers', 'auth.json')],
    );
    assert.equal(await user(resolver, { host: 'registry-1.docker.io', repository: 'library/nginx' }), 'hubuser');
    assert.equal(await user(resolver, { host: 'podman.example.com', repository: 'team/app' }), 'podman-team');
    assert.equal(await user(resolver, { host: 'podman.example.com', repository: 'other/app' }), undefined);
  });

  it('labels the source for explain', async () => {
    const found = await (await load()).resolve({ host: 'docker.io' });
    assert.equal(found?.sourceLabel, `docker config ${join(home, '.docker', 'config.json')}`);
    assert.equal(found?.key, 'https://index.docker.io/v1/');
  });

  it('chooses per contacted host: a mirror and its upstream each get only their own (S13)', async () => {
    const resolver = await load();
    assert.equal(await user(resolver, { host: 'mirror.example.com:5000', repository: 'library/nginx' }), 'mirror-user');
    assert.equal(await user(resolver, { host: 'upstream.example.com', repository: 'library/nginx' }), 'upstream-user');
    assert.equal(await user(resolver, { host: 'mirror.example.com', repository: 'library/nginx' }), undefined);
  });

  it('puts explicit credentials first', async () => {
    const resolver = await load({ explicit: { 'https://upstream.example.com': new BasicCredential('explicit', 'x') } });
    assert.equal(await user(resolver, { host: 'upstream.example.com' }), 'explicit');
    assert.equal((await resolver.resolve({ host: 'upstream.example.com' }))?.sourceLabel, 'explicit credentials');
    assert.equal(await user(resolver, { host: 'mirror.example.com:5000' }), 'mirror-user');
  });

  it('runs the helper named in credHelpers', async () => {
    const found = await (await load()).resolve({ host: 'helped.example.com' });
    assert.ok(found?.credential instanceof BasicCredential);
    assert.equal(found.credential.username, 'from-helper');
    assert.equal(found.credential.password, SECRET);
    assert.equal(
      found.sourceLabel,
      `credential helper docker-credential-kimgtest (from ${join(home, '.docker', 'config.json')})`,
    );
  });

  it('moves on to the next file when a helper has no credentials (auths of the same file stay shadowed)', async () => {
    assert.equal(await user(await load(), { host: 'notfound.example.com' }), 'from-auth-json');
  });

  it('runs a helper once for concurrent requests to one host', async () => {
    await rm(join(home, 'helper.log'), { force: true });
    const resolver = await load();
    await Promise.all(Array.from({ length: 5 }, () => resolver.resolve({ host: 'helped.example.com' })));
    const log = await readFile(join(home, 'helper.log'), 'utf8');
    assert.equal(log.trim().split('\n').length, 1);
  });

  it('surfaces a failing helper as a typed error without its output', async () => {
    await assert.rejects((await load()).resolve({ host: 'failing.example.com' }), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.equal(err.exitCode, 3);
      assert.ok(!inspect(err).includes(SECRET));
      return true;
    });
  });

  it('skips missing files and reports malformed ones', async () => {
    assert.deepEqual(await loadCredentialFiles([join(home, 'nope.json')]), []);
    const bad = join(home, 'bad.json');
    await writeFile(bad, `{"auths": {"x": {"auth": "${SECRET}"}`);
    await assert.rejects(loadCredentialFiles([bad]), (err: unknown) => {
      assert.ok(err instanceof DockerConfigError);
      assert.equal(err.path, bad);
      assert.ok(!err.message.includes(SECRET));
      return true;
    });
  });

  it('honours $DOCKER_CONFIG and $REGISTRY_AUTH_FILE', async () => {
    const other = join(home, 'other');
    await writeJson(join(other, 'config.json'), {
      auths: { 'upstream.example.com': { auth: b64('from-docker-config-env:p') } },
    });
    await writeJson(join(other, 'auth.json'), {
      auths: { 'podman.example.com': { auth: b64('from-registry-auth-file:p') } },
    });
    const resolver = await HostCredentialResolver.load({
      env: { ...env, DOCKER_CONFIG: other, REGISTRY_AUTH_FILE: join(other, 'auth.json') },
      home,
    });
    assert.equal(await user(resolver, { host: 'upstream.example.com' }), 'from-docker-config-env');
    assert.equal(
      await user(resolver, { host: 'podman.example.com', repository: 'team/app' }),
      'from-registry-auth-file',
    );
  });
});
