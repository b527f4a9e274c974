import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKimgError } from '../errors/index.ts';
import {
  InvalidPlatformError,
  PlatformNotFoundError,
  describeAvailable,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatcher,
  platformPreferences,
  selectPlatform,
  type HostInfo,
  type Platform,
} from './platform.ts';

const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' };

describe('parsePlatform', () => {
  const cases: [string, Platform][] = [
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
    ['Linux/X86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86-64', { os: 'linux', architecture: 'amd64' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['linux/aarch64/v8.2', { os: 'linux', architecture: 'arm64', variant: 'v8.2' }],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/arm/7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/arm/V6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/i386', { os: 'linux', architecture: '386' }],
    ['linux/i686', { os: 'linux', architecture: '386' }],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }],
    ['linux/riscv64', { os: 'linux', architecture: 'riscv64' }],
    ['macos/arm64', { os: 'darwin', architecture: 'arm64' }],
    ['windows(10.0.17763)/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }],
    [
      'windows(10.0.17763+win32k)/amd64',
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763', 'os.features': ['win32k'] },
    ],
    ['windows(+win32k)/amd64', { os: 'windows', architecture: 'amd64', 'os.features': ['win32k'] }],
    ['windows(10.0%2B1)/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0+1' }],
    // Architectures Go does not know are accepted with an explicit OS (containerd does the same).
    ['linux/future64', { os: 'linux', architecture: 'future64' }],
  ];
  for (const [input, expected] of cases) {
    it(input, () => assert.deepEqual(parsePlatform(input), expected));
  }

  const host: Platform = { os: 'linux', architecture: 'arm', variant: 'v6' };
  const single: [string, Platform][] = [
    ['linux', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['windows', { os: 'windows', architecture: 'arm', variant: 'v6' }],
    ['arm64', { os: 'linux', architecture: 'arm64' }],
    ['aarch64', { os: 'linux', architecture: 'arm64' }],
    ['armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['amd64', { os: 'linux', architecture: 'amd64' }],
  ];
  for (const [input, expected] of single) {
    it(`${input} (one word, completed from the host)`, () => assert.deepEqual(parsePlatform(input, host), expected));
  }

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['linux/', /must be letters/],
    ['/amd64', /not an operating system/],
    ['linux/amd64/v8/extra', /expected os\/arch\[\/variant\]/],
    ['linux/*', /wildcards/],
    ['nosuchthing', /unknown operating system or architecture/],
    ['linux/am d64', /must be letters/],
    ['linux(10.0/amd64', /not an operating system/],
    ['windows(%zz)/amd64', /bad %-escape/],
    ['amd64(1.0)', /unknown operating system/],
  ];
  for (const [input, reason] of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parsePlatform(input),
        (err: unknown) => {
          assert.ok(err instanceof InvalidPlatformError);
          assert.ok(isKimgError(err, 'ErrInvalidPlatform'));
          assert.equal(err.input, input);
          assert.match(err.message, reason);
          assert.ok(err.message.includes(JSON.stringify(input)), err.message);
          return true;
        },
      );
    });
  }

  it('truncates a huge input in the message but keeps it whole on the error', () => {
    const input = 'x'.repeat(5000);
    assert.throws(
      () => parsePlatform(input),
      (err: unknown) => err instanceof InvalidPlatformError && err.input === input && err.message.length < 400,
    );
  });
});

describe('formatPlatform', () => {
  const cases: [Platform, string][] = [
    [{ os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    [{ os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2113' }, 'windows(10.0.20348.2113)/amd64'],
    [
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763', 'os.features': ['win32k'] },
      'windows(10.0.17763+win32k)/amd64',
    ],
    [{ os: 'windows', architecture: 'amd64', 'os.version': 'a+b' }, 'windows(a%2Bb)/amd64'],
    [{ os: '', architecture: '' }, 'unknown/unknown'],
  ];
  for (const [platform, expected] of cases) {
    it(expected, () => {
      assert.equal(formatPlatform(platform), expected);
      if (platform.os !== '') assert.deepEqual(parsePlatform(expected), platform);
    });
  }
});

describe('hostPlatform', () => {
  const cases: [HostInfo, Platform][] = [
    [
      { platform: 'linux', arch: 'x64' },
      { os: 'linux', architecture: 'amd64' },
    ],
    [
      { platform: 'linux', arch: 'ia32' },
      { os: 'linux', architecture: '386' },
    ],
    [
      { platform: 'linux', arch: 'arm64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { platform: 'linux', arch: 'arm', armVersion: '7' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ],
    [
      { platform: 'linux', arch: 'arm', armVersion: 6 },
      { os: 'linux', architecture: 'arm', variant: 'v6' },
    ],
    [
      { platform: 'linux', arch: 'arm' },
      { os: 'linux', architecture: 'arm' },
    ],
    [
      { platform: 'linux', arch: 'ppc64', endianness: 'LE' },
      { os: 'linux', architecture: 'ppc64le' },
    ],
    [
      { platform: 'aix', arch: 'ppc64', endianness: 'BE' },
      { os: 'aix', architecture: 'ppc64' },
    ],
    [
      { platform: 'linux', arch: 's390x' },
      { os: 'linux', architecture: 's390x' },
    ],
    [
      { platform: 'linux', arch: 'riscv64' },
      { os: 'linux', architecture: 'riscv64' },
    ],
    [
      { platform: 'linux', arch: 'loong64' },
      { os: 'linux', architecture: 'loong64' },
    ],
    [
      { platform: 'linux', arch: 'mipsel' },
      { os: 'linux', architecture: 'mipsle' },
    ],
    [
      { platform: 'darwin', arch: 'arm64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { platform: 'freebsd', arch: 'x64' },
      { os: 'freebsd', architecture: 'amd64' },
    ],
    [
      { platform: 'win32', arch: 'x64', release: '10.0.20348' },
      { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348' },
    ],
  ];
  for (const [host, expected] of cases) {
    it(`${host.platform}/${host.arch}`, () => assert.deepEqual(hostPlatform(host), expected));
  }

  it('describes this process without throwing', () => {
    const p = hostPlatform();
    assert.ok(p.os.length > 0 && p.architecture.length > 0);
    assert.notEqual(p.architecture, 'x64');
  });
});

describe('normalizePlatform', () => {
  const cases: [Platform, Platform][] = [
    [
      { os: 'Linux', architecture: 'AArch64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { os: 'linux', architecture: 'arm64', variant: '8' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { os: 'linux', architecture: 'arm64', variant: 'v8.0' },
      { os: 'linux', architecture: 'arm64' },
    ],
    [
      { os: 'linux', architecture: 'arm64', variant: 'v9.0' },
      { os: 'linux', architecture: 'arm64', variant: 'v9' },
    ],
    [
      { os: 'linux', architecture: 'arm64', variant: 'v8.2' },
      { os: 'linux', architecture: 'arm64', variant: 'v8.2' },
    ],
    [
      { os: 'linux', architecture: 'x86_64' },
      { os: 'linux', architecture: 'amd64' },
    ],
    [
      { os: 'linux', architecture: 'amd64', variant: 'v1' },
      { os: 'linux', architecture: 'amd64' },
    ],
    [
      { os: 'linux', architecture: 'amd64', variant: 'v3' },
      { os: 'linux', architecture: 'amd64', variant: 'v3' },
    ],
    [
      { os: 'linux', architecture: 'i386' },
      { os: 'linux', architecture: '386' },
    ],
    [
      { os: 'linux', architecture: 'arm' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ],
    [
      { os: 'linux', architecture: 'arm', variant: '6' },
      { os: 'linux', architecture: 'arm', variant: 'v6' },
    ],
    [
      { os: 'linux', architecture: 'armhf' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ],
    [
      { os: 'linux', architecture: 'armel' },
      { os: 'linux', architecture: 'arm', variant: 'v6' },
    ],
    [
      { os: 'macos', architecture: 'arm64' },
      { os: 'darwin', architecture: 'arm64' },
    ],
    [
      { os: 'windows', architecture: 'amd64', 'os.features': ['b', 'a', 'b'] },
      { os: 'windows', architecture: 'amd64', 'os.features': ['a', 'b'] },
    ],
  ];
  for (const [input, expected] of cases) {
    it(formatPlatform(input), () => assert.deepEqual(normalizePlatform(input), expected));
  }
});

describe('platformPreferences', () => {
  const cases: [string, string[], boolean?][] = [
    ['linux/amd64', ['linux/amd64']],
    ['linux/amd64', ['linux/amd64', 'linux/386'], true],
    ['linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v5', ['linux/arm/v5']],
    ['linux/arm64', ['linux/arm64']],
    ['linux/arm64', ['linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'], true],
    ['linux/arm64/v8.2', ['linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64']],
    [
      'linux/arm64/v9.1',
      [
        'linux/arm64/v9.1',
        'linux/arm64/v9',
        'linux/arm64/v8.6',
        'linux/arm64/v8.5',
        'linux/arm64/v8.4',
        'linux/arm64/v8.3',
        'linux/arm64/v8.2',
        'linux/arm64/v8.1',
        'linux/arm64',
      ],
    ],
    ['linux/386', ['linux/386']],
    ['linux/s390x', ['linux/s390x']],
  ];
  for (const [want, expected, allow32Bit] of cases) {
    it(`${want}${allow32Bit ? ' (allow32Bit)' : ''}`, () => {
      assert.deepEqual(platformPreferences(parsePlatform(want), { allow32Bit }).map(formatPlatform), expected);
    });
  }
});

// The cases of containerd's platforms.Only test table, adjusted for kimg's two differences: no
// fallback to 32-bit siblings unless allow32Bit, so they appear under `allow32Bit` instead.
describe('platformMatcher (containerd Only cases)', () => {
  const table: { want: string; match: string[]; noMatch: string[]; only32: string[] }[] = [
    {
      want: 'linux/amd64',
      match: ['linux/amd64'],
      noMatch: ['linux/amd64/v2', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'],
      only32: ['linux/386'],
    },
    {
      want: 'linux/amd64/v2',
      match: ['linux/amd64', 'linux/amd64/v1', 'linux/amd64/v2'],
      noMatch: ['linux/amd64/v3', 'linux/amd64/v4', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'],
      only32: ['linux/386'],
    },
    {
      want: 'linux/386',
      match: ['linux/386'],
      noMatch: ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'],
      only32: [],
    },
    {
      want: 'windows/amd64',
      match: ['windows/amd64', 'windows(10.0.17763)/amd64'],
      noMatch: ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/arm'],
      only32: [],
    },
    {
      want: 'linux/arm/v8',
      match: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'],
      noMatch: ['linux/amd64', 'linux/arm/v4', 'linux/arm64', 'windows/amd64', 'windows/arm'],
      only32: [],
    },
    {
      want: 'linux/arm/v7',
      match: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7'],
      noMatch: ['linux/amd64', 'linux/arm/v4', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'],
      only32: [],
    },
    {
      want: 'linux/arm/v6',
      match: ['linux/arm/v5', 'linux/arm/v6'],
      noMatch: [
        'linux/amd64',
        'linux/arm',
        'linux/arm/v4',
        'linux/arm/v7',
        'linux/arm/v8',
        'linux/arm64',
        'windows/amd64',
        'windows/arm',
      ],
      only32: [],
    },
    {
      want: 'linux/arm/v5',
      match: ['linux/arm/v5'],
      noMatch: [
        'linux/amd64',
        'linux/arm',
        'linux/arm/v4',
        'linux/arm/v6',
        'linux/arm/v7',
        'linux/arm/v8',
        'linux/arm64',
        'windows/amd64',
        'windows/arm',
      ],
      only32: [],
    },
    {
      want: 'linux/arm/v4',
      match: ['linux/arm/v4'],
      noMatch: [
        'linux/amd64',
        'linux/arm',
        'linux/arm/v5',
        'linux/arm/v6',
        'linux/arm/v7',
        'linux/arm/v8',
        'linux/arm64',
        'windows/amd64',
        'windows/arm',
      ],
      only32: [],
    },
    {
      want: 'linux/arm64/v9',
      match: [
        'linux/arm64',
        'linux/arm64/v8',
        'linux/arm64/v8.1',
        'linux/arm64/v8.2',
        'linux/arm64/v8.3',
        'linux/arm64/v8.4',
        'linux/arm64/v8.5',
        'linux/arm64/v9',
        'linux/arm64/v9.0',
      ],
      noMatch: ['linux/amd64', 'linux/arm/v4', 'windows/amd64', 'windows/arm', 'linux/arm64/v8.6', 'linux/arm64/v9.1'],
      only32: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'],
    },
    {
      want: 'linux/arm64/v8.1',
      match: ['linux/arm64', 'linux/arm64/v8', 'linux/arm64/v8.1'],
      noMatch: [
        'linux/amd64',
        'linux/arm/v4',
        'linux/arm/v9',
        'linux/arm64/v9',
        'linux/arm64/v8.2',
        'windows/amd64',
        'windows/arm',
      ],
      only32: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'],
    },
    {
      want: 'linux/arm64',
      match: ['linux/arm64', 'linux/arm64/v8', 'linux/aarch64'],
      noMatch: [
        'linux/amd64',
        'linux/arm/v4',
        'linux/arm/v9',
        'linux/arm64/v9',
        'linux/arm64/v8.1',
        'windows/amd64',
        'windows/arm',
      ],
      only32: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'],
    },
  ];
  for (const { want, match, noMatch, only32 } of table) {
    it(want, () => {
      const strict = platformMatcher(parsePlatform(want));
      const loose = platformMatcher(parsePlatform(want), { allow32Bit: true });
      for (const c of match) {
        assert.notEqual(strict(parsePlatform(c)), undefined, `${want} should match ${c}`);
        assert.notEqual(loose(parsePlatform(c)), undefined, `${want} (allow32Bit) should match ${c}`);
      }
      for (const c of noMatch) {
        assert.equal(strict(parsePlatform(c)), undefined, `${want} should not match ${c}`);
        assert.equal(loose(parsePlatform(c)), undefined, `${want} (allow32Bit) should not match ${c}`);
      }
      for (const c of only32) {
        assert.equal(strict(parsePlatform(c)), undefined, `${want} should not match ${c} without allow32Bit`);
        assert.notEqual(loose(parsePlatform(c)), undefined, `${want} (allow32Bit) should match ${c}`);
      }
    });
  }

  it('never matches attestation entries or missing platforms', () => {
    const m = platformMatcher({ os: 'unknown', architecture: 'unknown' });
    assert.equal(m({ os: 'unknown', architecture: 'unknown' }), undefined);
    assert.equal(m(undefined), undefined);
  });

  it('matches Windows builds on major.minor.build', () => {
    const m = platformMatcher({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2113' });
    assert.notEqual(m({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1970' }), undefined);
    assert.equal(m({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.5122' }), undefined);
    assert.notEqual(m({ os: 'windows', architecture: 'amd64' }), undefined);
  });

  it('requires OS features the candidate needs', () => {
    const plain = platformMatcher({ os: 'windows', architecture: 'amd64' });
    const win32k = platformMatcher({ os: 'windows', architecture: 'amd64', 'os.features': ['win32k'] });
    const needs = { os: 'windows', architecture: 'amd64', 'os.features': ['win32k'] };
    assert.equal(plain(needs), undefined);
    assert.notEqual(win32k(needs), undefined);
    assert.notEqual(win32k({ os: 'windows', architecture: 'amd64' }), undefined);
  });
});

interface Entry {
  readonly digest: string;
  readonly platform?: Platform;
}

function entry(digest: string, platform?: string): Entry {
  if (platform === undefined) return { digest };
  const [os = '', architecture = '', variant] = platform.split('/');
  return { digest, platform: variant === undefined ? { os, architecture } : { os, architecture, variant } };
}

// Shaped like docker.io/library/nginx's index: images followed by BuildKit attestation manifests.
const NGINX_LIKE: Entry[] = [
  entry('amd64', 'linux/amd64'),
  entry('att-amd64', 'unknown/unknown'),
  entry('arm-v5', 'linux/arm/v5'),
  entry('att-arm-v5', 'unknown/unknown'),
  entry('arm-v7', 'linux/arm/v7'),
  entry('arm64-v8', 'linux/arm64/v8'),
  entry('386', 'linux/386'),
  entry('ppc64le', 'linux/ppc64le'),
  entry('s390x', 'linux/s390x'),
  entry('att-s390x', 'unknown/unknown'),
];

describe('selectPlatform', () => {
  const pick = (entries: Entry[], want: string, allow32Bit = false): string | undefined => {
    const i = selectPlatform(entries, parsePlatform(want), { allow32Bit });
    return i === undefined ? undefined : entries[i]?.digest;
  };

  const cases: [string, Entry[], string, string | undefined, boolean?][] = [
    ['exact amd64', NGINX_LIKE, 'linux/amd64', 'amd64'],
    ['arm64 ⇔ arm64/v8', NGINX_LIKE, 'linux/arm64', 'arm64-v8'],
    ['aarch64 spelled by the user', NGINX_LIKE, 'linux/aarch64', 'arm64-v8'],
    ['arm/v7 exact', NGINX_LIKE, 'linux/arm/v7', 'arm-v7'],
    ['arm/v6 falls back to v5, not v7', NGINX_LIKE, 'linux/arm/v6', 'arm-v5'],
    ['s390x', NGINX_LIKE, 'linux/s390x', 's390x'],
    ['missing platform', NGINX_LIKE, 'linux/riscv64', undefined],
    ['windows not offered', NGINX_LIKE, 'windows/amd64', undefined],
    ['386 exact', NGINX_LIKE, 'linux/386', '386'],
    ['amd64 never becomes 386 by default', [entry('386', 'linux/386')], 'linux/amd64', undefined],
    ['amd64 → 386 when asked', [entry('386', 'linux/386')], 'linux/amd64', '386', true],
    ['amd64 prefers itself over 386 when asked', NGINX_LIKE, 'linux/amd64', 'amd64', true],
    [
      'amd64/v3 prefers v3',
      [entry('v1', 'linux/amd64'), entry('v3', 'linux/amd64/v3'), entry('v2', 'linux/amd64/v2')],
      'linux/amd64/v3',
      'v3',
    ],
    [
      'amd64/v3 takes v2 before v1',
      [entry('v1', 'linux/amd64'), entry('v2', 'linux/amd64/v2')],
      'linux/amd64/v3',
      'v2',
    ],
    [
      'plain amd64 host never takes v3',
      [entry('v3', 'linux/amd64/v3'), entry('v2', 'linux/amd64/v2')],
      'linux/amd64',
      undefined,
    ],
    ['arm/v7 takes v6 before v5', [entry('v5', 'linux/arm/v5'), entry('v6', 'linux/arm/v6')], 'linux/arm/v7', 'v6'],
    ['arm/v7 never takes v8', [entry('v8', 'linux/arm/v8')], 'linux/arm/v7', undefined],
    ['arm/v6 never takes unqualified arm (= v7)', [entry('arm', 'linux/arm')], 'linux/arm/v6', undefined],
    ['arm/v7 takes unqualified arm', [entry('arm', 'linux/arm')], 'linux/arm/v7', 'arm'],
    ['arm64 never becomes arm by default', [entry('v7', 'linux/arm/v7')], 'linux/arm64', undefined],
    ['arm64 → arm/v7 when asked', [entry('v7', 'linux/arm/v7')], 'linux/arm64', 'v7', true],
    [
      'arm64/v9.2 takes compatible v8.7 before v8',
      [entry('v8', 'linux/arm64'), entry('v8.7', 'linux/arm64/v8.7'), entry('v8.8', 'linux/arm64/v8.8')],
      'linux/arm64/v9.2',
      'v8.7',
    ],
    [
      'arm64/v9 prefers v9 over v8',
      [entry('v8', 'linux/arm64/v8'), entry('v9', 'linux/arm64/v9')],
      'linux/arm64/v9',
      'v9',
    ],
    ['arm64/v8 never takes v9', [entry('v9', 'linux/arm64/v9')], 'linux/arm64', undefined],
    [
      'duplicates: first in index order',
      [entry('first', 'linux/amd64'), entry('second', 'linux/amd64')],
      'linux/amd64',
      'first',
    ],
    ['entries without platform are skipped', [entry('none'), entry('amd64', 'linux/amd64')], 'linux/amd64', 'amd64'],
    ['an index of only attestations', [entry('att', 'unknown/unknown')], 'linux/amd64', undefined],
    ['empty index', [], 'linux/amd64', undefined],
  ];
  for (const [name, entries, want, expected, allow32Bit] of cases) {
    it(name, () => assert.equal(pick(entries, want, allow32Bit), expected));
  }

  it('prefers the exact Windows os.version among compatible builds', () => {
    const entries = [
      { digest: 'ltsc2019', platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.5122' } },
      { digest: 'ltsc2022-old', platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1970' } },
      { digest: 'ltsc2022', platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2113' } },
    ];
    const i = selectPlatform(entries, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2113' });
    assert.equal(i, 2);
    const j = selectPlatform(entries, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9999' });
    assert.equal(j, 1);
  });
});

describe('describeAvailable and PlatformNotFoundError', () => {
  it('lists offered platforms as written, without attestations or duplicates', () => {
    assert.deepEqual(describeAvailable([...NGINX_LIKE, entry('again', 'linux/amd64'), entry('none')]), [
      'linux/amd64',
      'linux/arm/v5',
      'linux/arm/v7',
      'linux/arm64/v8',
      'linux/386',
      'linux/ppc64le',
      'linux/s390x',
    ]);
  });

  it('names the image, the wanted platform and what is available', () => {
    const entries = [entry('a', 'linux/amd64'), entry('att', 'unknown/unknown'), entry('b', 'linux/arm64/v8')];
    const wanted = parsePlatform('linux/s390x');
    const err = new PlatformNotFoundError('docker.io/library/nginx:1.25', wanted, describeAvailable(entries));
    assert.ok(isKimgError(err, 'ErrPlatformNotFound'));
    assert.equal(err.name, 'PlatformNotFoundError');
    assert.equal(
      err.message,
      'no manifest for platform linux/s390x in docker.io/library/nginx:1.25; available: linux/amd64, linux/arm64/v8',
    );
    assert.deepEqual(err.wanted, wanted);
    assert.deepEqual(err.available, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(err.image, 'docker.io/library/nginx:1.25');
  });

  it('says so when the index offers nothing usable', () => {
    const err = new PlatformNotFoundError('example.com/x:1', LINUX_AMD64, []);
    assert.equal(err.message, 'no manifest for platform linux/amd64 in example.com/x:1; it lists no platforms');
  });
});
