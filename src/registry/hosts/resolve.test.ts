import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryBlockedError } from './errors.ts';
import { explainHosts } from './explain.ts';
import { loadHostsConfig } from './load.ts';
import { resolveHosts, type HostsConfig } from './resolve.ts';
import type { Endpoint, RepositoryName } from './types.ts';

const NGINX: RepositoryName = { domain: 'docker.io', path: 'library/nginx' };
const TAG = { byDigest: false, tag: '1.25' };
const DIGEST = { byDigest: true, digest: `sha256:${'a'.repeat(64)}` };

function brief(e: Endpoint): string {
  const flags = [
    e.mirror ? 'mirror' : 'registry',
    e.capabilities.join('+'),
    ...(e.insecure ? ['insecure'] : []),
    ...(e.httpFallback ? ['http-fallback'] : []),
    ...(e.tls.skipVerify ? ['skip-verify'] : []),
    ...(e.namespace !== undefined ? [`ns=${e.namespace}`] : []),
    ...(e.fallback ? [] : ['final']),
  ];
  return `${e.baseUrl}/${e.repository} ${flags.join(' ')}`;
}

describe('resolveHosts without configuration', () => {
  it('Docker Hub: one endpoint, https, verified', () => {
    const endpoints = resolveHosts(NGINX, TAG);
    assert.deepEqual(endpoints, [
      {
        baseUrl: 'https://registry-1.docker.io/v2',
        host: 'registry-1.docker.io',
        repository: 'library/nginx',
        mirror: false,
        capabilities: ['pull', 'resolve', 'push', 'referrers'],
        tls: { caFiles: [], skipVerify: false, clientCerts: [] },
        headers: {},
        insecure: false,
        httpFallback: false,
        fallback: true,
        source: 'default',
      },
    ]);
  });

  const cases: [RepositoryName, string, boolean?][] = [
    [{ domain: 'ghcr.io', path: 'owner/app' }, 'https://ghcr.io/v2/owner/app registry pull+resolve+push+referrers'],
    [
      { domain: 'registry.internal:5000', path: 'app' },
      'https://registry.internal:5000/v2/app registry pull+resolve+push+referrers',
    ],
    [
      { domain: 'localhost:5000', path: 'app' },
      'https://localhost:5000/v2/app registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ],
    [
      { domain: '127.0.0.1:80', path: 'app' },
      'http://127.0.0.1:80/v2/app registry pull+resolve+push+referrers insecure',
    ],
    [
      { domain: '[::1]:5000', path: 'app' },
      'https://[::1]:5000/v2/app registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ],
    [
      { domain: 'localhost:5000', path: 'app' },
      'https://localhost:5000/v2/app registry pull+resolve+push+referrers',
      false,
    ],
  ];
  for (const [repo, expected, insecureLoopback] of cases) {
    it(`${repo.domain}${insecureLoopback === false ? ' (insecureLoopback: false)' : ''}`, () => {
      const config: HostsConfig = insecureLoopback === undefined ? {} : { insecureLoopback };
      assert.deepEqual(resolveHosts(repo, TAG, config).map(brief), [expected]);
    });
  }
});

describe('resolveHosts with configuration files', () => {
  let base: string;
  const write = async (path: string, text: string) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  };

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'kimg-resolve-'));
    await write(
      join(base, 'certs.d/docker.io/hosts.toml'),
      `server = "https://registry-1.docker.io"

[host."https://spegel.local:5000"]
  capabilities = ["pull", "resolve"]
  ns_query = true
  [host."https://spegel.local:5000".header]
    X-Mirror-Token = "s3cret-header-value"

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]
  fallback = false
`,
    );
    await write(
      join(base, 'certs.d/_default/hosts.toml'),
      `[host."https://cache.internal"]
  capabilities = ["pull", "resolve"]
  ca = "cache-ca.pem"
`,
    );
    await write(
      join(base, 'registries.conf'),
      `
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "quay.io/team"
location = "quay.io/team"
[[registry.mirror]]
location = "mirror.internal:5000/quay-team"
insecure = true
[[registry.mirror]]
location = "digest-cache.internal/quay-team"
pull-from-mirror = "digest-only"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
location = "localhost:5000"

[[registry]]
prefix = "tls.example"
location = "tls.example"
`,
    );
    await write(join(base, 'containers-certs.d/tls.example/ca.crt'), 'CA');
    await write(join(base, 'containers-certs.d/tls.example/client.cert'), 'CERT');
    await write(join(base, 'containers-certs.d/tls.example/client.key'), 'KEY');
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('containerd: mirrors in file order, ns only for the marked proxy, fallback = false honoured', async () => {
    const config = await loadHostsConfig({ hostsDir: join(base, 'certs.d') });
    assert.deepEqual(resolveHosts(NGINX, TAG, config).map(brief), [
      'https://spegel.local:5000/v2/library/nginx mirror pull+resolve ns=docker.io',
      'https://public-mirror.example.com/v2/library/nginx mirror pull final',
      'https://registry-1.docker.io/v2/library/nginx registry pull+resolve+push+referrers',
    ]);
  });

  it('containerd: _default for other registries, CA path resolved against its directory', async () => {
    const config = await loadHostsConfig({ hostsDir: join(base, 'certs.d') });
    const endpoints = resolveHosts({ domain: 'gcr.io', path: 'distroless/static' }, DIGEST, config);
    assert.deepEqual(endpoints.map(brief), [
      'https://cache.internal/v2/distroless/static mirror pull+resolve',
      'https://gcr.io/v2/distroless/static registry pull+resolve+push+referrers',
    ]);
    assert.deepEqual(endpoints[0]?.tls.caFiles, [join(base, 'certs.d/_default/cache-ca.pem')]);
  });

  it('registries.conf: rewritten mirrors, insecure mirror = HTTPS unverified with HTTP fallback', async () => {
    const config = await loadHostsConfig({ registriesConf: join(base, 'registries.conf'), certsDirs: [] });
    const repo = { domain: 'quay.io', path: 'team/app' };
    assert.deepEqual(resolveHosts(repo, TAG, config).map(brief), [
      'https://mirror.internal:5000/v2/quay-team/app mirror pull+resolve insecure http-fallback skip-verify',
      'https://quay.io/v2/team/app registry pull+resolve+push+referrers',
    ]);
    assert.deepEqual(resolveHosts(repo, DIGEST, config).map(brief), [
      'https://mirror.internal:5000/v2/quay-team/app mirror pull+resolve insecure http-fallback skip-verify',
      'https://digest-cache.internal/v2/quay-team/app mirror pull',
      'https://quay.io/v2/team/app registry pull+resolve+push+referrers',
    ]);
    assert.equal(config.registriesConf?.unqualifiedSearchRegistries[0], 'docker.io');
  });

  it('registries.conf: a loopback location follows insecureLoopback', async () => {
    const config = await loadHostsConfig({ registriesConf: join(base, 'registries.conf'), certsDirs: [] });
    const repo = { domain: 'localhost:5000', path: 'app' };
    assert.deepEqual(resolveHosts(repo, TAG, config).map(brief), [
      'https://localhost:5000/v2/app registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ]);
    assert.deepEqual(resolveHosts(repo, TAG, { ...config, insecureLoopback: false }).map(brief), [
      'https://localhost:5000/v2/app registry pull+resolve+push+referrers',
    ]);
  });

  it('registries.conf: per-host certificate directories', async () => {
    const config = await loadHostsConfig({
      registriesConf: join(base, 'registries.conf'),
      certsDirs: [join(base, 'nope'), join(base, 'containers-certs.d')],
    });
    const [endpoint] = resolveHosts({ domain: 'tls.example', path: 'app' }, TAG, config);
    assert.deepEqual(endpoint?.tls, {
      caFiles: [join(base, 'containers-certs.d/tls.example/ca.crt')],
      skipVerify: false,
      clientCerts: [
        {
          certFile: join(base, 'containers-certs.d/tls.example/client.cert'),
          keyFile: join(base, 'containers-certs.d/tls.example/client.key'),
        },
      ],
    });
    assert.match(endpoint?.source ?? '', /certificates from .*containers-certs\.d\/tls\.example$/);
    // Registries without an entry still get their certificates.
    const other = await loadHostsConfig({
      registriesConf: join(base, 'registries.conf'),
      certsDirs: [join(base, 'containers-certs.d')],
    });
    assert.equal(resolveHosts({ domain: 'ghcr.io', path: 'x' }, TAG, other)[0]?.tls.caFiles.length, 0);
  });

  it('both sources: a containerd directory wins, registries.conf covers the rest, blocked always applies', async () => {
    const config = await loadHostsConfig({
      hostsDir: join(base, 'certs.d'),
      registriesConf: join(base, 'registries.conf'),
      certsDirs: [],
    });
    // containerd _default applies to quay.io, so registries.conf's quay.io entry is not used.
    assert.equal(
      resolveHosts({ domain: 'quay.io', path: 'team/app' }, TAG, config)[0]?.baseUrl,
      'https://cache.internal/v2',
    );
    assert.throws(() => resolveHosts({ domain: 'blocked.example', path: 'x' }, TAG, config), RegistryBlockedError);

    const withoutDefault = await loadHostsConfig({ registriesConf: join(base, 'registries.conf'), certsDirs: [] });
    const onlyDocker = { ...withoutDefault, containerd: { roots: [] } };
    assert.equal(
      resolveHosts({ domain: 'quay.io', path: 'team/app' }, TAG, onlyDocker)[0]?.baseUrl,
      'https://mirror.internal:5000/v2',
    );
  });
});

describe('explainHosts', () => {
  let base: string;
  let config: HostsConfig;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'kimg-explain-'));
    await mkdir(join(base, 'docker.io'), { recursive: true });
    await writeFile(
      join(base, 'docker.io/hosts.toml'),
      `server = "https://registry-1.docker.io"

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]
  ns_query = true
  [host."https://public-mirror.example.com".header]
    Authorization = "Bearer very-secret-token"

[host."http://airgap.local:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  fallback = false
  proxy = "http://proxyuser:proxypass@proxy.local:3128"
  dial_timeout = "2s"
`,
    );
    config = await loadHostsConfig({ hostsDir: base });
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('prints host order, roles, transport, credential source and origin', () => {
    const asked: string[] = [];
    const lines = explainHosts(NGINX, TAG, config, {
      credentialSource: (host) => {
        asked.push(host);
        return host === 'registry-1.docker.io'
          ? 'auths["https://index.docker.io/v1/"] in ~/.docker/config.json'
          : 'anonymous';
      },
    });
    const text = lines.join('\n');
    assert.equal(lines[0], 'docker.io/library/nginx (pull by tag): 3 hosts in order');
    assert.match(
      text,
      /1\. https:\/\/public-mirror\.example\.com\/v2\/library\/nginx\/manifests\/1\.25\?ns=docker\.io\n/,
    );
    assert.match(text, /not trusted to resolve the tag: used for content by digest only/);
    assert.match(text, /2\. https:\/\/airgap\.local:5000\/v2\/library\/nginx\/manifests\/1\.25/);
    assert.match(text, /HTTPS, then plain HTTP if the server does not speak TLS; certificate NOT verified/);
    assert.match(text, /fallback = false: a failure here ends the pull/);
    assert.match(
      text,
      /3\. https:\/\/registry-1\.docker\.io\/v2\/library\/nginx\/manifests\/1\.25\n\s+registry; .*not tried: host 2 has fallback = false/,
    );
    assert.match(text, /credentials for registry-1\.docker\.io: auths\["https:\/\/index\.docker\.io\/v1\/"\]/);
    assert.match(text, /extra headers: Authorization/);
    assert.match(text, /proxy: http:\/\/\*\*\*@proxy\.local:3128/);
    assert.match(text, /dial timeout: 2000 ms/);
    assert.match(text, new RegExp(`from: ${base}/docker.io/hosts.toml \\[host\\."http://airgap.local:5000"\\]`));
    assert.deepEqual(asked, ['public-mirror.example.com', 'airgap.local:5000', 'registry-1.docker.io']);
    for (const secret of ['very-secret-token', 'proxypass', 'proxyuser']) assert.ok(!text.includes(secret), secret);
  });

  it('shows the digest for digest pulls', () => {
    const lines = explainHosts({ domain: 'quay.io', path: 'x/y' }, DIGEST, {
      containerd: { roots: [] },
    });
    assert.equal(lines[0], 'quay.io/x/y (pull by digest): 1 host in order');
    assert.equal(lines[1], `  1. https://quay.io/v2/x/y/manifests/${DIGEST.digest}`);
  });

  it('reports a blocked registry instead of throwing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-explain-blocked-'));
    try {
      await writeFile(join(dir, 'registries.conf'), '[[registry]]\nlocation = "docker.io"\nblocked = true\n');
      const blocked = await loadHostsConfig({ registriesConf: join(dir, 'registries.conf'), certsDirs: [] });
      assert.deepEqual(explainHosts(NGINX, TAG, blocked), [
        `docker.io/library/nginx (pull by tag): blocked by [[registry]] prefix "docker.io" in ${join(dir, 'registries.conf')}`,
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns when no host may resolve a tag', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kimg-explain-noresolve-'));
    try {
      await mkdir(join(dir, '_default'));
      await writeFile(
        join(dir, '_default/hosts.toml'),
        'server = "https://pull-only.example"\ncapabilities = ["pull"]\n',
      );
      const lines = explainHosts({ domain: 'ghcr.io', path: 'a/b' }, TAG, await loadHostsConfig({ hostsDir: dir }));
      assert.equal(lines.at(-1), '  warning: no host may resolve tags, so a pull by tag will fail');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
