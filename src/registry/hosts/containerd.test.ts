import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isKimgError } from '../../errors/index.ts';
import {
  containerdRegistryHosts,
  findHostsDir,
  loadContainerdHosts,
  parseGoDuration,
  parseHostsToml,
  type HostsDirConfig,
} from './containerd.ts';
import { HostsConfigError } from './errors.ts';
import type { RegistryHost } from './types.ts';

const DIR = '/etc/containerd/certs.d/docker.io';
const FILE = `${DIR}/hosts.toml`;

function hostsFrom(domain: string, toml: string, options?: { insecureLoopback?: boolean }): RegistryHost[] {
  return containerdRegistryHosts(domain, parseHostsToml(toml, FILE, DIR), options);
}

/** The parts of a host that tests compare, compactly. */
function summary(h: RegistryHost): string {
  const flags = [
    h.isMirror ? 'mirror' : 'registry',
    h.capabilities.join('+'),
    h.insecure ? 'insecure' : 'secure',
    ...(h.httpFallback ? ['http-fallback'] : []),
    ...(h.tls.skipVerify ? ['skip-verify'] : []),
    ...(h.fallback ? [] : ['final']),
    ...(h.namespaceQuery ? ['ns'] : []),
  ];
  return `${h.url}${h.pathPrefix} ${flags.join(' ')}`;
}

describe('containerd hosts.toml: documented examples', () => {
  it('simple host config for Docker Hub', () => {
    const hosts = hostsFrom(
      'docker.io',
      `server = "https://docker.io"

[host."https://registry-1.docker.io"]
  capabilities = ["pull", "resolve"]
`,
    );
    assert.deepEqual(hosts.map(summary), [
      'https://registry-1.docker.io/v2 registry pull+resolve secure',
      'https://docker.io/v2 registry pull+resolve+push+referrers secure',
    ]);
    assert.equal(hosts[0]?.source, `${FILE} [host."https://registry-1.docker.io"]`);
    assert.equal(hosts[1]?.source, `${FILE} server`);
  });

  it('local mirrors for Docker Hub, relative ca resolved against the file', () => {
    const hosts = hostsFrom(
      'docker.io',
      `server = "https://registry-1.docker.io"    # Exclude this to not use upstream

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]                  # Requires less trust, won't resolve tag to digest from this host
[host."https://docker-mirror.internal"]
  capabilities = ["pull", "resolve"]
  ca = "docker-mirror.crt"                 # Or absolute path /etc/containerd/certs.d/docker.io/docker-mirror.crt
`,
    );
    assert.deepEqual(hosts.map(summary), [
      'https://public-mirror.example.com/v2 mirror pull secure',
      'https://docker-mirror.internal/v2 mirror pull+resolve secure',
      'https://registry-1.docker.io/v2 registry pull+resolve+push+referrers secure',
    ]);
    assert.deepEqual(hosts[1]?.tls, {
      caFiles: ['/etc/containerd/certs.d/docker.io/docker-mirror.crt'],
      skipVerify: false,
      clientCerts: [],
    });
  });

  it('_default mirror for all registries: the registry itself is tried last', () => {
    const config = parseHostsToml(
      `[host."https://registry.example.com"]
  capabilities = ["pull", "resolve"]
`,
      '/etc/containerd/certs.d/_default/hosts.toml',
      '/etc/containerd/certs.d/_default',
    );
    assert.deepEqual(containerdRegistryHosts('quay.io', config).map(summary), [
      'https://registry.example.com/v2 mirror pull+resolve secure',
      'https://quay.io/v2 registry pull+resolve+push+referrers secure',
    ]);
    assert.deepEqual(containerdRegistryHosts('docker.io', config).map(summary), [
      'https://registry.example.com/v2 mirror pull+resolve secure',
      'https://registry-1.docker.io/v2 registry pull+resolve+push+referrers secure',
    ]);
  });

  it('_default with only a server: the upstream is never consulted', () => {
    const config = parseHostsToml('server = "https://registry.example.com"\n', FILE, DIR);
    assert.deepEqual(containerdRegistryHosts('ghcr.io', config).map(summary), [
      'https://registry.example.com/v2 mirror pull+resolve+push+referrers secure',
    ]);
  });

  it('bypass TLS verification for an http:// host: HTTPS first, then plain HTTP (containerd rule)', () => {
    const hosts = hostsFrom(
      'docker.io',
      `server = "https://registry-1.docker.io"

[host."http://192.168.31.250:5000"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
`,
    );
    assert.deepEqual(hosts.map(summary), [
      'https://192.168.31.250:5000/v2 mirror pull+resolve+push insecure http-fallback skip-verify',
      'https://registry-1.docker.io/v2 registry pull+resolve+push+referrers secure',
    ]);
  });

  it('the hosts.md reference example, host by host', () => {
    const config = parseHostsToml(
      `server = "https://test-default.registry"
ca = "/etc/path/default"
[header]
  x-custom-1 = "custom header"

[host."https://mirror.registry"]
  capabilities = ["pull"]
  ca = "/etc/certs/mirror.pem"
  skip_verify = false
  [host."https://mirror.registry".header]
    x-custom-2 = ["value1", "value2"]

[host."https://mirror-bak.registry/us"]
  capabilities = ["pull"]
  skip_verify = true

[host."http://mirror.registry"]
  capabilities = ["pull"]

[host."https://test-1.registry"]
  capabilities = ["pull", "resolve", "push"]
  ca = ["/etc/certs/test-1-ca.pem", "/etc/certs/special.pem"]
  client = [["/etc/certs/client.cert", "/etc/certs/client.key"],["/etc/certs/client.pem", ""]]

[host."https://test-2.registry"]
  client = "/etc/certs/client.pem"

[host."https://test-3.registry"]
  client = ["/etc/certs/client-1.pem", "/etc/certs/client-2.pem"]

[host."https://non-compliant-mirror.registry/v2/upstream"]
  capabilities = ["pull"]
  override_path = true

[host."https://noprefixnoncompliant.registry"]
  override_path = true

[host."https://onlyheader.registry".header]
  x-custom-1 = "justaheader"

[host."https://dial-timeout.registry"]
  dial_timeout = "3s"
`,
      FILE,
      DIR,
    );
    const hosts = containerdRegistryHosts('example.com', config);
    assert.deepEqual(hosts.map(summary), [
      'https://mirror.registry/v2 mirror pull secure',
      'https://mirror-bak.registry/us/v2 mirror pull secure skip-verify',
      'http://mirror.registry/v2 mirror pull insecure',
      'https://test-1.registry/v2 mirror pull+resolve+push secure',
      'https://test-2.registry/v2 mirror pull+resolve+push+referrers secure',
      'https://test-3.registry/v2 mirror pull+resolve+push+referrers secure',
      'https://non-compliant-mirror.registry/v2/upstream mirror pull secure',
      'https://noprefixnoncompliant.registry mirror pull+resolve+push+referrers secure',
      'https://onlyheader.registry/v2 mirror pull+resolve+push+referrers secure',
      'https://dial-timeout.registry/v2 mirror pull+resolve+push+referrers secure',
      'https://test-default.registry/v2 mirror pull+resolve+push+referrers secure',
    ]);
    const [mirror, , , test1, test2, test3, , , onlyHeader, dial, server] = hosts;
    assert.deepEqual(mirror?.headers, { 'x-custom-2': ['value1', 'value2'] });
    assert.deepEqual(mirror?.tls.caFiles, ['/etc/certs/mirror.pem']);
    assert.deepEqual(test1?.tls.caFiles, ['/etc/certs/test-1-ca.pem', '/etc/certs/special.pem']);
    assert.deepEqual(test1?.tls.clientCerts, [
      { certFile: '/etc/certs/client.cert', keyFile: '/etc/certs/client.key' },
      { certFile: '/etc/certs/client.pem' },
    ]);
    assert.deepEqual(test2?.tls.clientCerts, [{ certFile: '/etc/certs/client.pem' }]);
    assert.deepEqual(test3?.tls.clientCerts, [
      { certFile: '/etc/certs/client-1.pem' },
      { certFile: '/etc/certs/client-2.pem' },
    ]);
    assert.deepEqual(onlyHeader?.headers, { 'x-custom-1': ['justaheader'] });
    assert.equal(dial?.dialTimeoutMs, 3000);
    assert.deepEqual(server?.headers, { 'x-custom-1': ['custom header'] });
    assert.deepEqual(server?.tls.caFiles, ['/etc/path/default']);
  });

  it('the proxy field, per host and at the top', () => {
    const hosts = hostsFrom(
      'my-registry.io',
      `server = "https://my-registry.io"
proxy = "http://different-proxy:8080"

[host."https://mirror.my-registry.io"]
  capabilities = ["pull", "resolve"]
  proxy = "http://my-proxy:8080"
`,
    );
    assert.deepEqual(
      hosts.map((h) => [h.url, h.proxy]),
      [
        ['https://mirror.my-registry.io', 'http://my-proxy:8080'],
        ['https://my-registry.io', 'http://different-proxy:8080'],
      ],
    );
  });
});

describe('containerd hosts.toml: schemes and plain HTTP', () => {
  const cases: [string, string, string][] = [
    [
      'http:// without TLS settings is plain HTTP',
      '[host."http://mirror.local:5000"]\n',
      'http://mirror.local:5000/v2 mirror pull+resolve+push+referrers insecure',
    ],
    [
      'http:// with a CA tries HTTPS first',
      '[host."http://mirror.local:5000"]\nca = "/ca.pem"\n',
      'https://mirror.local:5000/v2 mirror pull+resolve+push+referrers insecure http-fallback',
    ],
    [
      'http:// on port 80 stays plain HTTP even with TLS settings',
      '[host."http://mirror.local:80"]\nskip_verify = true\n',
      'http://mirror.local:80/v2 mirror pull+resolve+push+referrers insecure skip-verify',
    ],
    [
      'skip_verify = false still counts as TLS configured',
      '[host."http://mirror.local"]\nskip_verify = false\n',
      'https://mirror.local/v2 mirror pull+resolve+push+referrers insecure http-fallback',
    ],
    [
      'a host without scheme is https',
      '[host."mirror.local"]\n',
      'https://mirror.local/v2 mirror pull+resolve+push+referrers secure',
    ],
    [
      'a server without scheme is https',
      'server = "mirror.local:5000"\n',
      'https://mirror.local:5000/v2 mirror pull+resolve+push+referrers secure',
    ],
    [
      'a path gets /v2 appended, trailing slashes dropped',
      '[host."https://m.local/cache/docker/"]\n',
      'https://m.local/cache/docker/v2 mirror pull+resolve+push+referrers secure',
    ],
    [
      'a path ending in /v2 is kept',
      '[host."https://m.local/cache/v2"]\n',
      'https://m.local/cache/v2 mirror pull+resolve+push+referrers secure',
    ],
    [
      'capabilities are case-insensitive',
      '[host."https://m.local"]\ncapabilities = ["PULL", "Resolve"]\n',
      'https://m.local/v2 mirror pull+resolve secure',
    ],
    [
      'an empty capability list means all',
      '[host."https://m.local"]\ncapabilities = []\n',
      'https://m.local/v2 mirror pull+resolve+push+referrers secure',
    ],
  ];
  for (const [name, toml, expected] of cases) {
    it(name, () => assert.equal(summary(hostsFrom('example.com', toml)[0] as RegistryHost), expected));
  }
});

describe('containerd: the registry itself when no server is configured', () => {
  const cases: [string, string, boolean?][] = [
    ['docker.io', 'https://registry-1.docker.io/v2 registry pull+resolve+push+referrers secure'],
    ['example.com', 'https://example.com/v2 registry pull+resolve+push+referrers secure'],
    ['example.com:5000', 'https://example.com:5000/v2 registry pull+resolve+push+referrers secure'],
    // Loopback, following containerd's TestHTTPFallback table.
    ['localhost', 'https://localhost/v2 registry pull+resolve+push+referrers secure skip-verify'],
    ['localhost:443', 'https://localhost:443/v2 registry pull+resolve+push+referrers secure skip-verify'],
    ['localhost:80', 'http://localhost:80/v2 registry pull+resolve+push+referrers insecure'],
    [
      'localhost:8080',
      'https://localhost:8080/v2 registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ],
    [
      'localhost:5000',
      'https://localhost:5000/v2 registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ],
    [
      '127.0.0.254:5000',
      'https://127.0.0.254:5000/v2 registry pull+resolve+push+referrers insecure http-fallback skip-verify',
    ],
    ['127.0.0.254', 'https://127.0.0.254/v2 registry pull+resolve+push+referrers secure skip-verify'],
    ['[::1]:5000', 'https://[::1]:5000/v2 registry pull+resolve+push+referrers insecure http-fallback skip-verify'],
    ['128.0.0.1:5000', 'https://128.0.0.1:5000/v2 registry pull+resolve+push+referrers secure'],
    ['localhost.example.com:5000', 'https://localhost.example.com:5000/v2 registry pull+resolve+push+referrers secure'],
    // insecureLoopback: false verifies loopback like anything else.
    ['localhost:5000', 'https://localhost:5000/v2 registry pull+resolve+push+referrers secure', false],
    ['127.0.0.1', 'https://127.0.0.1/v2 registry pull+resolve+push+referrers secure', false],
  ];
  for (const [domain, expected, insecureLoopback] of cases) {
    it(`${domain}${insecureLoopback === false ? ' (insecureLoopback: false)' : ''}`, () => {
      const hosts = containerdRegistryHosts(
        domain,
        undefined,
        insecureLoopback === undefined ? {} : { insecureLoopback },
      );
      assert.deepEqual(hosts.map(summary), [expected]);
      assert.equal(hosts[0]?.source, 'default');
    });
  }

  it('root-level TLS settings apply to the registry itself', () => {
    const hosts = hostsFrom('example.com', 'skip_verify = true\nca = ["a.pem"]\n');
    assert.deepEqual(hosts.map(summary), [
      'https://example.com/v2 registry pull+resolve+push+referrers secure skip-verify',
    ]);
    assert.deepEqual(hosts[0]?.tls.caFiles, [`${DIR}/a.pem`]);
    assert.equal(hosts[0]?.source, `${FILE} (no server: the registry itself)`);
  });
});

describe('containerd hosts.toml: kimg extensions', () => {
  it('ns_query marks a proxy; the registry itself never gets ns', () => {
    const hosts = hostsFrom(
      'docker.io',
      `[host."https://spegel.local:5000"]
  capabilities = ["pull", "resolve"]
  ns_query = true
[host."https://plain-mirror.local"]
  capabilities = ["pull"]
[host."https://registry-1.docker.io"]
  ns_query = true
`,
    );
    assert.deepEqual(
      hosts.map((h) => [h.host, h.namespaceQuery]),
      [
        ['spegel.local:5000', true],
        ['plain-mirror.local', false],
        ['registry-1.docker.io', false],
        ['registry-1.docker.io', false],
      ],
    );
  });

  it('fallback = false makes a host final', () => {
    const hosts = hostsFrom(
      'docker.io',
      '[host."https://airgap.local"]\ncapabilities = ["pull", "resolve"]\nfallback = false\n',
    );
    assert.deepEqual(hosts.map(summary), [
      'https://airgap.local/v2 mirror pull+resolve secure final',
      'https://registry-1.docker.io/v2 registry pull+resolve+push+referrers secure',
    ]);
  });
});

describe('containerd hosts.toml: errors name the file and the problem', () => {
  const cases: [string, string, RegExp, number?][] = [
    ['malformed TOML', 'server = "https://x"\n[host."https://m"\ncapabilities = ["pull"]\n', /not valid TOML/, 2],
    ['duplicate key', 'server = "a"\nserver = "b"\n', /not valid TOML/, 2],
    [
      'unknown capability',
      '[host."https://m"]\ncapabilities = ["pull", "fetch"]\n',
      /host\."https:\/\/m"\.capabilities has unknown capability "fetch"/,
    ],
    [
      'capabilities not an array',
      '[host."https://m"]\ncapabilities = "pull"\n',
      /capabilities must be an array of strings/,
    ],
    ['ca of the wrong type', '[host."https://m"]\nca = 1\n', /ca must be a string or an array of strings/],
    ['skip_verify not a boolean', 'skip_verify = "yes"\n', /skip_verify must be true or false/],
    ['client pair of three', '[host."https://m"]\nclient = [["a", "b", "c"]]\n', /client must be a path/],
    ['header name', '[header]\n"bad header" = "x"\n', /header\."bad header" is not a valid header name/],
    ['header value with CR/LF', '[header]\nx-a = "v\\r\\nInjected: 1"\n', /header\.x-a has a value with a line break/],
    ['header value type', '[header]\nx-a = 1\n', /header\.x-a must be a string or an array of strings/],
    ['credentials in a host URL', '[host."https://user:secret@m.local"]\n', /must not contain credentials/],
    ['credentials in the server', 'server = "https://user:secret@m.local"\n', /^.*server must not contain credentials/],
    ['unsupported scheme', '[host."ftp://m.local"]\n', /must be http:\/\/ or https:\/\//],
    ['query in a host URL', '[host."https://m.local/?x=1"]\n', /must not have a query/],
    ['dial_timeout', '[host."https://m"]\ndial_timeout = "3 seconds"\n', /dial_timeout is not a positive duration/],
    ['proxy scheme', 'proxy = "ftp://p:21"\n', /proxy must use http, https, socks5 or socks5h/],
    ['proxy path', 'proxy = "http://p:8080/path"\n', /proxy must not have a path/],
    ['host entry not a table', 'host = "https://m"\n', /host must be a table/],
    ['unsafe key', '[host."https://m".header]\n__proto__ = "x"\n', /not valid TOML/],
  ];
  for (const [name, toml, message, line] of cases) {
    it(name, () => {
      assert.throws(
        () => parseHostsToml(toml, FILE, DIR),
        (err: unknown) => {
          assert.ok(err instanceof HostsConfigError, String(err));
          assert.ok(isKimgError(err, 'ErrHostsConfig'));
          assert.equal(err.file, FILE);
          assert.ok(err.message.startsWith(FILE), err.message);
          assert.match(err.message, message);
          if (line !== undefined) assert.equal(err.line, line);
          assert.ok(!err.message.includes('secret'), 'credentials must not be echoed');
          return true;
        },
      );
    });
  }
});

describe('parseGoDuration', () => {
  const cases: [string, number | undefined][] = [
    ['3s', 3000],
    ['1.5s', 1500],
    ['300ms', 300],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['500us', 0.5],
    ['0', 0],
    ['', undefined],
    ['3', undefined],
    ['s', undefined],
    ['3 s', undefined],
    ['3d', undefined],
  ];
  for (const [input, expected] of cases)
    it(JSON.stringify(input), () => assert.equal(parseGoDuration(input), expected));
});

describe('containerd host directories on disk', () => {
  let root: string;
  let second: string;
  const write = async (path: string, text: string) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  };

  before(async () => {
    const base = await mkdtemp(join(tmpdir(), 'kimg-hosts-'));
    root = join(base, 'containerd');
    second = join(base, 'docker');
    await write(
      join(root, 'docker.io/hosts.toml'),
      `server = "https://registry-1.docker.io"
[host."https://mirror.internal"]
  capabilities = ["pull", "resolve"]
  ca = "mirror-ca.pem"
`,
    );
    // The _port_ spelling wins over host:port.
    await write(join(root, 'myregistry.io_5000_/hosts.toml'), 'server = "https://underscore.example"\n');
    await write(join(root, 'myregistry.io:5000/hosts.toml'), 'server = "https://colon.example"\n');
    await write(join(root, 'other.io:5000/hosts.toml'), 'server = "https://colon-only.example"\n');
    await write(
      join(root, '_default/hosts.toml'),
      '[host."https://default-mirror.example"]\ncapabilities = ["pull"]\n',
    );
    // A directory without hosts.toml: Docker's certificate files. It hides _default.
    await write(join(root, 'certs.example/ca.crt'), 'CA');
    await write(join(root, 'certs.example/client.cert'), 'CERT');
    await write(join(root, 'certs.example/client.key'), 'KEY');
    await write(join(root, 'certs.example/lonely.cert'), 'CERT');
    await write(join(root, 'certs.example/notes.txt'), 'ignored');
    await write(join(root, 'empty-file.example/hosts.toml'), '');
    await write(join(root, 'broken.example/hosts.toml'), '[host."https://m"\n');
    await write(join(second, 'quay.io/hosts.toml'), 'server = "https://quay-mirror.example"\n');
    await write(join(second, 'real-dir/hosts.toml'), 'server = "https://via-symlink.example"\n');
    await symlink(join(second, 'real-dir'), join(second, 'linked.example'));
  });

  after(async () => {
    await rm(dirname(root), { recursive: true, force: true });
  });

  const resolveFrom = async (configPath: string | string[], domain: string) => {
    const hosts = await loadContainerdHosts(configPath);
    return containerdRegistryHosts(domain, findHostsDir(hosts, domain)).map((h) => h.url + h.pathPrefix);
  };

  it('reads the registry’s directory, with paths relative to it', async () => {
    const hosts = await loadContainerdHosts(root);
    const dir = findHostsDir(hosts, 'docker.io') as HostsDirConfig;
    assert.equal(dir.file, join(root, 'docker.io/hosts.toml'));
    const resolved = containerdRegistryHosts('docker.io', dir);
    assert.deepEqual(
      resolved.map((h) => h.url),
      ['https://mirror.internal', 'https://registry-1.docker.io'],
    );
    assert.deepEqual(resolved[0]?.tls.caFiles, [join(root, 'docker.io/mirror-ca.pem')]);
  });

  it('prefers host_port_ over host:port, which still works alone', async () => {
    assert.deepEqual(await resolveFrom(root, 'myregistry.io:5000'), ['https://underscore.example/v2']);
    assert.deepEqual(await resolveFrom(root, 'other.io:5000'), ['https://colon-only.example/v2']);
  });

  it('falls back to _default', async () => {
    assert.deepEqual(await resolveFrom(root, 'gcr.io'), ['https://default-mirror.example/v2', 'https://gcr.io/v2']);
  });

  it('reads certificate files when there is no hosts.toml (and then ignores _default)', async () => {
    const hosts = await loadContainerdHosts(root);
    const resolved = containerdRegistryHosts('certs.example', findHostsDir(hosts, 'certs.example'));
    assert.equal(resolved.length, 1);
    assert.equal(resolved[0]?.url, 'https://certs.example');
    assert.deepEqual(resolved[0]?.tls, {
      caFiles: [join(root, 'certs.example/ca.crt')],
      skipVerify: false,
      clientCerts: [
        { certFile: join(root, 'certs.example/client.cert'), keyFile: join(root, 'certs.example/client.key') },
        { certFile: join(root, 'certs.example/lonely.cert') },
      ],
    });
  });

  it('treats an empty hosts.toml like a missing one', async () => {
    assert.deepEqual(await resolveFrom(root, 'empty-file.example'), ['https://empty-file.example/v2']);
  });

  it('a broken hosts.toml fails only its own registry, naming file and line', async () => {
    const hosts = await loadContainerdHosts(root);
    assert.throws(
      () => findHostsDir(hosts, 'broken.example'),
      (err: unknown) =>
        err instanceof HostsConfigError && err.file === join(root, 'broken.example/hosts.toml') && err.line === 1,
    );
    assert.doesNotThrow(() => findHostsDir(hosts, 'docker.io'));
  });

  it('searches roots in order (config_path list), each with its own _default', async () => {
    assert.deepEqual(await resolveFrom([root, second], 'quay.io'), [
      'https://default-mirror.example/v2',
      'https://quay.io/v2',
    ]);
    assert.deepEqual(await resolveFrom(`${second}:${root}`, 'quay.io'), ['https://quay-mirror.example/v2']);
    assert.deepEqual(await resolveFrom(`${second}::`, 'linked.example'), ['https://via-symlink.example/v2']);
  });

  it('skips missing roots and ignores empty entries', async () => {
    assert.deepEqual(await resolveFrom([join(root, 'nope'), '', second], 'quay.io'), [
      'https://quay-mirror.example/v2',
    ]);
    assert.deepEqual(await resolveFrom([], 'quay.io'), ['https://quay.io/v2']);
  });
});
