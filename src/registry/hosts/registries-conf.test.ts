import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isKimgError } from '../../errors/index.ts';
import { HostsConfigError, RegistryBlockedError } from './errors.ts';
import {
  defaultRegistriesConfPaths,
  findRegistry,
  loadRegistriesConf,
  mergeRegistriesConf,
  parseRegistriesConf,
  prefixMatchLength,
  registriesConfSources,
  type RegistriesConf,
} from './registries-conf.ts';
import type { PullKind } from './types.ts';

const FILE = '/etc/containers/registries.conf';
const conf = (text: string): RegistriesConf => mergeRegistriesConf([parseRegistriesConf(text, FILE)]);
const TAG: PullKind = { byDigest: false };
const DIGEST: PullKind = { byDigest: true };

/** `domain/path [flags]` for each pull source, compactly. */
function sources(c: RegistriesConf, name: string, pull: PullKind): string[] | undefined {
  const slash = name.indexOf('/');
  const result = registriesConfSources(c, { domain: name.slice(0, slash), path: name.slice(slash + 1) }, pull);
  return result?.sources.map((s) => {
    const flags = [
      s.mirror ? 'mirror' : 'registry',
      ...(s.insecure ? ['insecure'] : []),
      ...(s.digestOnly ? ['digest-only'] : []),
      ...(s.fallback ? [] : ['final']),
    ];
    return `${s.domain}/${s.path} ${flags.join(' ')}`;
  });
}

// The example from containers-registries.conf(5).
const MAN_PAGE_EXAMPLE = `
unqualified-search-registries = ["example.com"]

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
`;

describe('registries.conf v2: the man page example', () => {
  const c = conf(MAN_PAGE_EXAMPLE);

  it('reads unqualified-search-registries', () => assert.deepEqual(c.unqualifiedSearchRegistries, ['example.com']));

  it('rewrites example.com/foo/image to each mirror, then the location', () => {
    assert.deepEqual(sources(c, 'example.com/foo/image', TAG), [
      'example-mirror-0.local/mirror-for-foo/image mirror',
      'example-mirror-1.local/mirrors/foo/image mirror insecure',
      'internal-registry-for-example.com/bar/image registry',
    ]);
  });

  it('does not apply to other repositories on the same host', () => {
    assert.equal(sources(c, 'example.com/other/image', TAG), undefined);
    assert.equal(sources(c, 'example.com/foobar/image', TAG), undefined);
  });

  it('names the file and prefix as the source', () => {
    const result = registriesConfSources(c, { domain: 'example.com', path: 'foo/image' }, TAG);
    assert.equal(result?.sources[2]?.source, `${FILE} [[registry]] prefix="example.com/foo"`);
    assert.equal(
      result?.sources[0]?.source,
      `${FILE} [[registry]] prefix="example.com/foo" mirror "example-mirror-0.local/mirror-for-foo"`,
    );
  });
});

describe('registries.conf v2: matching', () => {
  const c = conf(`
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "mirror.local/whole-host"

[[registry]]
prefix = "example.com/team"
location = "team-registry.local"

[[registry]]
prefix = "*.wild.example"
[[registry.mirror]]
location = "wild-mirror.local/cache"

[[registry]]
prefix = "exact.wild.example"
location = "exact.wild.example"
insecure = true

[[registry]]
prefix = "docker.io/library"
location = "hub-proxy.local/library"

[[registry]]
prefix = "quay.io"
location = "docker.io"
`);

  const cases: [string, string, PullKind, string[] | undefined][] = [
    ['host-wide entry', 'example.com/a/b', TAG, ['mirror.local/whole-host/a/b mirror', 'example.com/a/b registry']],
    ['longest prefix wins', 'example.com/team/app', TAG, ['team-registry.local/app registry']],
    ['a host-only prefix does not match another port (containers/image would)', 'example.com:5000/a', TAG, undefined],
    [
      'wildcard subdomain, not rewritten, its mirror rewritten',
      'a.wild.example/x/y',
      TAG,
      ['wild-mirror.local/cache/x/y mirror', 'a.wild.example/x/y registry'],
    ],
    [
      'wildcard with a deeper subdomain and a port',
      'a.b.wild.example:5000/x',
      TAG,
      ['wild-mirror.local/cache/x mirror', 'a.b.wild.example:5000/x registry'],
    ],
    [
      'a more specific prefix beats the wildcard',
      'exact.wild.example/x',
      TAG,
      ['exact.wild.example/x registry insecure'],
    ],
    ['the wildcard does not match the bare domain', 'wild.example/x', TAG, undefined],
    ['nor a look-alike host', 'evilwild.example/x', TAG, undefined],
    ['Docker Hub namespace', 'docker.io/library/nginx', TAG, ['hub-proxy.local/library/nginx registry']],
    ['no entry', 'ghcr.io/owner/app', TAG, undefined],
    [
      'location docker.io normalises a one-component path to library/',
      'quay.io/nginx',
      TAG,
      ['docker.io/library/nginx registry'],
    ],
  ];
  for (const [name, ref, pull, expected] of cases) {
    it(name, () => assert.deepEqual(sources(c, ref, pull), expected));
  }

  it('keeps entries sorted and unique by prefix', () => {
    assert.deepEqual(
      c.registries.map((r) => r.prefix),
      ['*.wild.example', 'docker.io/library', 'exact.wild.example', 'example.com', 'example.com/team', 'quay.io'],
    );
  });

  it('findRegistry accepts references with tags and digests', () => {
    assert.equal(findRegistry(c, 'example.com/team/app:1.0')?.prefix, 'example.com/team');
    assert.equal(findRegistry(c, 'example.com/team@sha256:abc')?.prefix, 'example.com/team');
  });
});

describe('prefixMatchLength', () => {
  const cases: [string, string, number][] = [
    ['example.com/a', 'example.com', 11],
    ['example.com', 'example.com', 11],
    ['example.com:5000/a', 'example.com', -1],
    ['example.com.evil/a', 'example.com', -1],
    ['example.com/foo:tag', 'example.com/foo', 15],
    ['example.com/foo@sha256:abc', 'example.com/foo', 15],
    ['example.com/foobar', 'example.com/foo', -1],
    ['example.com/foo/bar', 'example.com/foo', 15],
    ['example.co', 'example.com', -1],
    ['a.example.com/x', '*.example.com', 13],
    ['a.example.com:5000/x', '*.example.com', 18],
    ['example.com/x', '*.example.com', -1],
    ['x.com/a.example.com/y', '*.example.com', -1],
  ];
  for (const [ref, prefix, expected] of cases) {
    it(`${ref} vs ${prefix}`, () => assert.equal(prefixMatchLength(ref, prefix), expected));
  }
});

describe('registries.conf v2: digest and tag mirrors', () => {
  it('mirror-by-digest-only uses mirrors for digest pulls only', () => {
    const c = conf(`
[[registry]]
location = "registry.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror.local"
`);
    assert.deepEqual(sources(c, 'registry.example/app', TAG), ['registry.example/app registry']);
    assert.deepEqual(sources(c, 'registry.example/app', DIGEST), [
      'mirror.local/app mirror digest-only',
      'registry.example/app registry',
    ]);
  });

  it('pull-from-mirror per mirror', () => {
    const c = conf(`
[[registry]]
location = "registry.example"
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "all.local"
pull-from-mirror = "all"
fallback = false
`);
    assert.deepEqual(sources(c, 'registry.example/app', TAG), [
      'tags.local/app mirror',
      'all.local/app mirror final',
      'registry.example/app registry',
    ]);
    assert.deepEqual(sources(c, 'registry.example/app', DIGEST), [
      'digests.local/app mirror digest-only',
      'all.local/app mirror final',
      'registry.example/app registry',
    ]);
  });
});

describe('registries.conf: prefixes with a tag or digest', () => {
  const c = conf(`
[[registry]]
prefix = "example.com/app:pinned"
location = "pinned.local/app:pinned"
[[registry]]
prefix = "example.com/bad:1"
location = "other.local/bad:2"
`);

  it('match only that tag', () => {
    const repo = { domain: 'example.com', path: 'app' };
    assert.equal(registriesConfSources(c, repo, { byDigest: false, tag: 'latest' }), undefined);
    const result = registriesConfSources(c, repo, { byDigest: false, tag: 'pinned' });
    assert.deepEqual(
      result?.sources.map((s) => `${s.domain}/${s.path}`),
      ['pinned.local/app'],
    );
  });

  it('refuse to change the tag', () => {
    assert.throws(
      () => registriesConfSources(c, { domain: 'example.com', path: 'bad' }, { byDigest: false, tag: '1' }),
      (err: unknown) => err instanceof HostsConfigError && /would change the tag or digest/.test(err.message),
    );
  });
});

describe('registries.conf: blocked', () => {
  const c = conf(`
[[registry]]
prefix = "docker.io"
location = "docker.io"
blocked = true
[[registry]]
prefix = "docker.io/library"
location = "docker.io/library"
`);

  it('throws a typed error naming the repository, the prefix and the file', () => {
    assert.throws(
      () => registriesConfSources(c, { domain: 'docker.io', path: 'someone/app' }, TAG),
      (err: unknown) => {
        assert.ok(err instanceof RegistryBlockedError);
        assert.ok(isKimgError(err, 'ErrRegistryBlocked'));
        assert.equal(err.repository, 'docker.io/someone/app');
        assert.equal(err.prefix, 'docker.io');
        assert.equal(err.file, FILE);
        assert.match(err.message, /docker\.io\/someone\/app.*blocked.*"docker\.io".*registries\.conf/);
        return true;
      },
    );
  });

  it('a longer unblocked prefix still allows its repositories', () => {
    assert.deepEqual(sources(c, 'docker.io/library/nginx', TAG), ['docker.io/library/nginx registry']);
  });
});

describe('registries.conf v1', () => {
  it('converts search, insecure and block lists', () => {
    const c = conf(`
[registries.search]
registries = ['docker.io', 'quay.io']
[registries.insecure]
registries = ['localhost:5000', 'legacy.local/']
[registries.block]
registries = ['blocked.example']
`);
    assert.deepEqual(c.unqualifiedSearchRegistries, ['docker.io', 'quay.io']);
    assert.deepEqual(
      c.registries.map((r) => [r.prefix, r.location, r.insecure, r.blocked]),
      [
        ['blocked.example', 'blocked.example', false, true],
        ['legacy.local', 'legacy.local', true, false],
        ['localhost:5000', 'localhost:5000', true, false],
      ],
    );
  });
});

describe('registries.conf: other settings', () => {
  it('short-name-mode, aliases, credential-helpers', () => {
    const c = conf(`
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json", "secretservice"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"nginx" = "docker.io/library/nginx"
`);
    assert.equal(c.shortNameMode, 'enforcing');
    assert.deepEqual(c.aliases, { fedora: 'registry.fedoraproject.org/fedora', nginx: 'docker.io/library/nginx' });
    assert.deepEqual(c.credentialHelpers, ['containers-auth.json', 'secretservice']);
  });

  it('ignores keys it does not know', () => {
    assert.doesNotThrow(() => conf('something-new = 1\n[[registry]]\nlocation = "a.example"\nfuture-flag = true\n'));
  });
});

describe('registries.conf: errors name the file and the problem', () => {
  const cases: [string, string, RegExp, number?][] = [
    ['malformed TOML', '[[registry]]\nlocation = "a\n', /not valid TOML/, 2],
    [
      'scheme in location',
      '[[registry]]\nlocation = "https://a.example"\n',
      /registry\[0\]\.location "https:\/\/a\.example": URI schemes are not supported/,
    ],
    ['neither prefix nor location', '[[registry]]\ninsecure = true\n', /registry\[0\] has neither prefix nor location/],
    [
      'prefix without location',
      '[[registry]]\nprefix = "a.example/x"\n',
      /location is unset and the prefix is not of the form \*\.example\.com/,
    ],
    [
      'wildcard in the middle',
      '[[registry]]\nprefix = "a.*.example"\nlocation = "b.example"\n',
      /a wildcard is only allowed as \*\.domain/,
    ],
    [
      'wildcard with a path',
      '[[registry]]\nprefix = "*.example.com/foo"\n',
      /a wildcard is only allowed as \*\.domain/,
    ],
    [
      'pull-from-mirror on the registry',
      '[[registry]]\nlocation = "a.example"\npull-from-mirror = "all"\n',
      /pull-from-mirror is only for \[\[registry\.mirror\]\]/,
    ],
    [
      'bad pull-from-mirror',
      '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "sometimes"\n',
      /must be all, digest-only or tag-only/,
    ],
    [
      'digest-only twice',
      '[[registry]]\nlocation = "a.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "tag-only"\n',
      /cannot be set when the registry has mirror-by-digest-only/,
    ],
    [
      'mirror without location',
      '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\ninsecure = true\n',
      /registry\[0\]\.mirror\[0\]\.location is unset/,
    ],
    [
      'conflicting insecure',
      '[[registry]]\nprefix = "a.example/x"\nlocation = "a.example"\ninsecure = true\n[[registry]]\nprefix = "a.example/y"\nlocation = "a.example"\n',
      /defined several times with conflicting 'insecure'/,
    ],
    [
      'insecure not a boolean',
      '[[registry]]\nlocation = "a.example"\ninsecure = "yes"\n',
      /insecure must be true or false/,
    ],
    ['registry not an array of tables', 'registry = "a"\n', /registry must be an array of tables/],
    [
      'bad search registry',
      'unqualified-search-registries = ["docker.io/library"]\n',
      /unqualified-search-registries entry "docker\.io\/library" is not a host\[:port\]/,
    ],
    [
      'bad short-name-mode',
      'short-name-mode = "strict"\n',
      /short-name-mode must be enforcing, permissive or disabled/,
    ],
    [
      'v1 and v2 mixed',
      '[registries.search]\nregistries = ["docker.io"]\n[[registry]]\nlocation = "a.example"\n',
      /mixes version 1/,
    ],
    ['location without a host', '[[registry]]\nlocation = "/just/a/path"\n', /does not start with a registry host/],
  ];
  for (const [name, text, message, line] of cases) {
    it(name, () => {
      assert.throws(
        () => parseRegistriesConf(text, FILE),
        (err: unknown) => {
          assert.ok(err instanceof HostsConfigError, String(err));
          assert.equal(err.code, 'ErrHostsConfig');
          assert.equal(err.file, FILE);
          assert.ok(err.message.startsWith(FILE), err.message);
          assert.match(err.message, message);
          if (line !== undefined) assert.equal(err.line, line);
          return true;
        },
      );
    });
  }
});

describe('registries.conf files on disk', () => {
  let base: string;
  const write = async (path: string, text: string) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  };

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'kimg-registries-conf-'));
    await write(
      join(base, 'etc/registries.conf'),
      `
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "old-mirror.local"
[[registry]]
location = "quay.io"
insecure = true
`,
    );
    await write(
      join(base, 'etc/registries.conf.d/10-mirror.conf'),
      `
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "new-mirror.local"
`,
    );
    await write(join(base, 'etc/registries.conf.d/20-search.conf'), 'unqualified-search-registries = []\n');
    await write(join(base, 'etc/registries.conf.d/README'), 'not a .conf file: [[[');
    await write(
      join(base, 'user/registries.conf.d/30-user.conf'),
      '[[registry]]\nlocation = "ghcr.io"\nblocked = true\n',
    );
    await write(join(base, 'bad/registries.conf'), '[[registry]]\nlocation = \n');
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('merges drop-ins in order: same prefix replaced, search list replaced even by []', async () => {
    const c = await loadRegistriesConf({
      file: join(base, 'etc/registries.conf'),
      optional: false,
      dropInDirs: [join(base, 'etc/registries.conf.d'), join(base, 'user/registries.conf.d'), join(base, 'nope')],
    });
    assert.deepEqual(c.files, [
      join(base, 'etc/registries.conf'),
      join(base, 'etc/registries.conf.d/10-mirror.conf'),
      join(base, 'etc/registries.conf.d/20-search.conf'),
      join(base, 'user/registries.conf.d/30-user.conf'),
    ]);
    assert.deepEqual(c.unqualifiedSearchRegistries, []);
    assert.deepEqual(sources(c, 'docker.io/library/nginx', TAG), [
      'new-mirror.local/library/nginx mirror',
      'docker.io/library/nginx registry',
    ]);
    assert.deepEqual(sources(c, 'quay.io/x/y', TAG), ['quay.io/x/y registry insecure']);
    assert.throws(() => sources(c, 'ghcr.io/x/y', TAG), RegistryBlockedError);
  });

  it('a missing optional main file is an empty configuration', async () => {
    const c = await loadRegistriesConf({ file: join(base, 'missing.conf'), optional: true, dropInDirs: [] });
    assert.deepEqual(c, { files: [], registries: [], unqualifiedSearchRegistries: [], aliases: {} });
  });

  it('a missing required file is an error naming it', async () => {
    await assert.rejects(
      loadRegistriesConf({ file: join(base, 'missing.conf'), optional: false, dropInDirs: [] }),
      (err: unknown) =>
        err instanceof HostsConfigError &&
        err.file === join(base, 'missing.conf') &&
        /cannot read: ENOENT/.test(err.message),
    );
  });

  it('a malformed file is an error with its line', async () => {
    await assert.rejects(
      loadRegistriesConf({ file: join(base, 'bad/registries.conf'), optional: false, dropInDirs: [] }),
      (err: unknown) =>
        err instanceof HostsConfigError && err.file === join(base, 'bad/registries.conf') && err.line === 2,
    );
  });

  it('finds the files the way containers/image does', async () => {
    const home = join(base, 'home');
    assert.deepEqual(await defaultRegistriesConfPaths({}, home), {
      file: '/etc/containers/registries.conf',
      optional: true,
      dropInDirs: ['/etc/containers/registries.conf.d', join(home, '.config/containers/registries.conf.d')],
    });
    assert.deepEqual(await defaultRegistriesConfPaths({ CONTAINERS_REGISTRIES_CONF: '/tmp/r.conf' }, home), {
      file: '/tmp/r.conf',
      optional: false,
      dropInDirs: ['/etc/containers/registries.conf.d', join(home, '.config/containers/registries.conf.d')],
    });
    await write(join(home, '.config/containers/registries.conf'), '');
    assert.deepEqual(await defaultRegistriesConfPaths({}, home), {
      file: join(home, '.config/containers/registries.conf'),
      optional: true,
      dropInDirs: [join(home, '.config/containers/registries.conf.d')],
    });
  });
});
