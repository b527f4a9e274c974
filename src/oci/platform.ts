/**
 * Platforms (`os/arch[/variant]`): parsing user input, the host's platform, containerd-compatible
 * normalisation, and choosing an index child for a wanted platform (docs/semantics.md registry §11).
 *
 * Matching follows containerd's `platforms.Only` preference vectors with two deliberate
 * differences: falling back to a 32-bit sibling (`amd64` → `386`, `arm64` → `arm`) happens only
 * when asked (`allow32Bit`), because many 64-bit machines cannot run 32-bit code (Graviton 3+,
 * Apple silicon); and index entries without a platform are never chosen, since nothing says they
 * would run here.
 */
import { endianness, release } from 'node:os';
import { KimgError } from '../errors/index.ts';
import type { Platform } from './types.ts';

export type { Platform } from './types.ts';

/** A platform string kimg cannot read; `input` is the string as given. */
export class InvalidPlatformError extends KimgError<'ErrInvalidPlatform'> {
  readonly input: string;
  readonly reason: string;

  constructor(input: string, reason: string) {
    super('ErrInvalidPlatform', `invalid platform ${JSON.stringify(truncate(input))}: ${reason}`);
    this.input = input;
    this.reason = reason;
  }
}

/** An index has no child for the wanted platform; `available` lists what it offers. */
export class PlatformNotFoundError extends KimgError<'ErrPlatformNotFound'> {
  readonly image: string;
  readonly wanted: Platform;
  readonly available: readonly string[];

  constructor(image: string, wanted: Platform, available: readonly string[]) {
    const offered = available.length > 0 ? `available: ${available.join(', ')}` : 'it lists no platforms';
    super('ErrPlatformNotFound', `no manifest for platform ${formatPlatform(wanted)} in ${image}; ${offered}`);
    this.image = image;
    this.wanted = wanted;
    this.available = available;
  }
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}… (${s.length} characters)` : s;
}

// Go's syslist (GOOS / GOARCH values): a single-word specifier is an OS if it is one of these,
// else an architecture if it is one of those.
const KNOWN_OS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'wasip1',
  'windows',
  'zos',
]);
const KNOWN_ARCH = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'ppc64',
  'ppc64le',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);

const COMPONENT = /^[A-Za-z0-9_.-]+$/;
// `<os>[(<os.version>[+<feature>]*)]`, containerd's syntax; `%` escapes `+()/%` in the values.
const OS_COMPONENT = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$/;

/**
 * Reads `os[(os.version[+feature…])]/arch[/variant]`, or a single `os` or `arch` (the other part
 * taken from `host`). Architecture aliases are resolved (`aarch64` → `arm64`, `x86_64` →
 * `amd64`, `armhf` → `arm/v7`); a variant is kept as written (`linux/arm64/v8` stays `v8`;
 * matching treats it as equal to `linux/arm64`).
 */
export function parsePlatform(input: string, host: Platform = hostPlatform()): Platform {
  const fail = (reason: string): never => {
    throw new InvalidPlatformError(input, reason);
  };
  if (input === '') return fail('empty');
  if (input.includes('*')) return fail('wildcards are not supported');
  const parts = input.split('/');
  if (parts.length > 3) return fail('expected os/arch[/variant]');

  const osMatch = OS_COMPONENT.exec(parts[0] ?? '');
  if (osMatch === null) return fail(`${JSON.stringify(parts[0])} is not an operating system`);
  for (const part of parts.slice(1)) {
    if (!COMPONENT.test(part)) return fail(`${JSON.stringify(part)} must be letters, digits, '_', '.' or '-'`);
  }
  const os = normalizeOs(osMatch[1] ?? '');
  const osVersion = decodeOsOption(osMatch[2] ?? '', fail);
  const features = (osMatch[3] ?? '')
    .split('+')
    .filter((f) => f !== '')
    .map((f) => decodeOsOption(f, fail));
  const extras: Pick<Platform, 'os.version' | 'os.features'> = {
    ...(osVersion !== '' ? { 'os.version': osVersion } : {}),
    ...(features.length > 0 ? { 'os.features': features } : {}),
  };

  if (parts.length === 1) {
    if (KNOWN_OS.has(os)) {
      return withVariant({ os, architecture: host.architecture, ...extras }, host.variant);
    }
    if (osMatch[2] !== undefined) return fail(`unknown operating system ${JSON.stringify(os)}`);
    const { architecture, variant } = normalizeArch(parts[0] ?? '', undefined);
    if (!KNOWN_ARCH.has(architecture)) return fail('unknown operating system or architecture');
    return withVariant({ os: host.os, architecture }, variant);
  }
  const { architecture, variant } = normalizeArch(parts[1] ?? '', parts[2]);
  return withVariant({ os, architecture, ...extras }, variant);
}

function decodeOsOption(value: string, fail: (reason: string) => never): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return fail(`bad %-escape in ${JSON.stringify(value)}`);
  }
}

function encodeOsOption(value: string): string {
  return value.replace(/[%+()/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function withVariant(platform: Platform, variant: string | undefined): Platform {
  return variant === undefined || variant === '' ? platform : { ...platform, variant };
}

/**
 * `os[(os.version[+feature…])]/arch[/variant]`, as written (not normalised), so an error lists
 * platforms the way the index spells them. Round-trips through parsePlatform.
 */
export function formatPlatform(platform: Platform): string {
  const version = platform['os.version'] ?? '';
  const features = platform['os.features'] ?? [];
  const options = encodeOsOption(version) + features.map((f) => `+${encodeOsOption(f)}`).join('');
  const os = (platform.os || 'unknown') + (options !== '' ? `(${options})` : '');
  const parts = [os, platform.architecture || 'unknown'];
  if (platform.variant) parts.push(platform.variant);
  return parts.join('/');
}

/** What hostPlatform reads; injectable for tests. */
export interface HostInfo {
  /** `process.platform`. */
  readonly platform: string;
  /** `process.arch`. */
  readonly arch: string;
  /** Node's `arm_version` build variable ('6', '7') on 32-bit arm. */
  readonly armVersion?: string | number;
  /** `os.endianness()`; tells ppc64le from ppc64 (Node calls both `ppc64`). */
  readonly endianness?: 'BE' | 'LE';
  /** `os.release()`; becomes `os.version` on Windows. */
  readonly release?: string;
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc: 'ppc',
  s390: 's390',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mipsel: 'mipsle',
  mips64el: 'mips64le',
};

// macOS (and Android) hosts run Linux containers (in a VM or natively); no darwin images exist in
// practice, so defaulting to darwin would make every pull fail.
const NODE_OS: Readonly<Record<string, string>> = {
  win32: 'windows',
  darwin: 'linux',
  android: 'linux',
  sunos: 'solaris',
};

function currentHost(): HostInfo {
  const variables = process.config.variables as unknown as Readonly<Record<string, unknown>>;
  const armVersion = variables['arm_version'];
  return {
    platform: process.platform,
    arch: process.arch,
    ...(typeof armVersion === 'string' || typeof armVersion === 'number' ? { armVersion } : {}),
    endianness: endianness(),
    release: release(),
  };
}

/**
 * The platform whose images this host runs: OCI names for Node's `process.platform` /
 * `process.arch` (x64 → amd64, ia32 → 386, arm → arm/v<arm_version>), `linux` on macOS.
 * No amd64 micro-architecture level is guessed (v1 runs everywhere); ask for `amd64/v3`
 * explicitly to prefer it.
 */
export function hostPlatform(host: HostInfo = currentHost()): Platform {
  const os = NODE_OS[host.platform] ?? host.platform;
  let architecture = NODE_ARCH[host.arch] ?? host.arch;
  if (host.arch === 'ppc64') architecture = host.endianness === 'BE' ? 'ppc64' : 'ppc64le';
  if (host.arch === 'mips') architecture = host.endianness === 'LE' ? 'mipsle' : 'mips';
  let variant: string | undefined;
  if (architecture === 'arm' && host.armVersion !== undefined && `${host.armVersion}` !== '') {
    variant = `v${host.armVersion}`;
  }
  const platform = withVariant({ os, architecture }, variant);
  if (os === 'windows' && host.release) return { ...platform, 'os.version': host.release };
  return platform;
}

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** Architecture aliases and variant spellings as containerd writes them in its matcher. */
function normalizeArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  const a = arch.toLowerCase();
  let v = variant?.toLowerCase();
  switch (a) {
    case 'i386':
    case 'i486':
    case 'i586':
    case 'i686':
    case 'x86':
      return { architecture: '386' };
    case 'x86_64':
    case 'x86-64':
      return withOptional('amd64', v);
    case 'aarch64':
      return withOptional('arm64', v);
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
    case 'arm64':
    case 'amd64':
      if (v !== undefined && /^[0-9]/.test(v)) v = `v${v}`;
      return withOptional(a, v);
    default:
      return withOptional(a, v);
  }
}

function withOptional(architecture: string, variant: string | undefined): { architecture: string; variant?: string } {
  return variant === undefined || variant === '' ? { architecture } : { architecture, variant };
}

/**
 * The canonical form used for comparison (containerd's `Normalize`): lower case, aliases
 * resolved, `amd64/v1` ≡ `amd64`, `arm64/v8` ≡ `arm64`, `arm` ≡ `arm/v7`, `vN.0` ≡ `vN`,
 * `os.features` sorted and deduplicated.
 */
export function normalizePlatform(platform: Platform): Platform {
  const os = normalizeOs(platform.os);
  const normalized = normalizeArch(platform.architecture, platform.variant);
  const architecture = normalized.architecture;
  let variant = normalized.variant;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  if (architecture === 'arm64' && variant !== undefined) {
    variant = variant.replace(/^(v\d+)\.0$/, '$1');
    if (variant === 'v8') variant = undefined;
  }
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  const result: Platform = withVariant({ os, architecture }, variant);
  const extras: { 'os.version'?: string; 'os.features'?: readonly string[] } = {};
  if (platform['os.version']) extras['os.version'] = platform['os.version'];
  const features = platform['os.features'];
  if (features !== undefined && features.length > 0) extras['os.features'] = [...new Set(features)].sort();
  return { ...result, ...extras };
}

export interface PlatformMatchOptions {
  /**
   * Also accept the 32-bit sibling as a last resort: `386` for `amd64`, `arm/v8…v5` for
   * `arm64`. Off by default: many 64-bit CPUs cannot run 32-bit code.
   */
  readonly allow32Bit?: boolean;
}

type Slot = Pick<Platform, 'os' | 'architecture' | 'variant'>;

function parseLevel(variant: string | undefined, fallback: string): { major: number; minor: number } | undefined {
  const m = /^v(\d+)(?:\.(\d+))?$/.exec(variant ?? fallback);
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: m[2] === undefined ? 0 : Number(m[2]) };
}

function armSlots(os: string, variant: string | undefined): Slot[] {
  const slots: Slot[] = [{ os, architecture: 'arm', ...(variant !== undefined ? { variant } : {}) }];
  const level = parseLevel(variant, 'v7');
  if (level !== undefined && level.minor === 0) {
    for (let v = level.major - 1; v >= 5; v--) slots.push({ os, architecture: 'arm', variant: `v${v}` });
  }
  return slots;
}

function arm64Variant(major: number, minor: number): string | undefined {
  if (major === 8 && minor === 0) return undefined;
  return minor === 0 ? `v${major}` : `v${major}.${minor}`;
}

/**
 * The platforms acceptable for `want`, best first (containerd's preference vector):
 * `amd64/v3` → `v2` → `v1`; `arm/v7` → `v6` → `v5`; `arm64/v9.x` → `v9.(x-1)` … `v9` →
 * `v8.(x+5)` … `v8` (v9.0 forked from v8.5); `arm64/v8.x` → … `v8`. Anything else: itself.
 * All returned in normalised form.
 */
export function platformPreferences(want: Platform, options: PlatformMatchOptions = {}): Slot[] {
  const n = normalizePlatform(want);
  const os = n.os;
  const slots: Slot[] = [];
  switch (n.architecture) {
    case 'amd64': {
      const level = parseLevel(n.variant, 'v1');
      if (level === undefined || level.minor !== 0) {
        slots.push({ os, architecture: 'amd64', ...(n.variant !== undefined ? { variant: n.variant } : {}) });
      } else {
        for (let v = level.major; v >= 2; v--) slots.push({ os, architecture: 'amd64', variant: `v${v}` });
        slots.push({ os, architecture: 'amd64' });
      }
      if (options.allow32Bit) slots.push({ os, architecture: '386' });
      break;
    }
    case 'arm':
      slots.push(...armSlots(os, n.variant));
      break;
    case 'arm64': {
      const level = parseLevel(n.variant, 'v8');
      if (level === undefined || level.major < 8) {
        slots.push({ os, architecture: 'arm64', ...(n.variant !== undefined ? { variant: n.variant } : {}) });
        break;
      }
      let { major, minor } = level;
      if (major === 9) {
        for (let m = minor; m >= 0; m--) slots.push({ os, architecture: 'arm64', variant: arm64Variant(9, m) });
        major = 8;
        minor += 5;
      } else if (major > 9) {
        // No published compatibility mapping beyond v9: only the exact variant.
        slots.push({ os, architecture: 'arm64', ...(n.variant !== undefined ? { variant: n.variant } : {}) });
        break;
      }
      for (let m = minor; m >= 0; m--) {
        const variant = arm64Variant(major, m);
        slots.push({ os, architecture: 'arm64', ...(variant !== undefined ? { variant } : {}) });
      }
      if (options.allow32Bit) slots.push(...armSlots(os, 'v8'));
      break;
    }
    default:
      slots.push({ os, architecture: n.architecture, ...(n.variant !== undefined ? { variant: n.variant } : {}) });
  }
  return slots.map((s) => (s.variant === undefined ? { os: s.os, architecture: s.architecture } : s));
}

/** True for the `unknown/unknown` entries BuildKit adds for attestations. */
export function isAttestationPlatform(platform: Platform | undefined): boolean {
  return platform?.os === 'unknown' && platform.architecture === 'unknown';
}

// Windows images are tied to the host build: `major.minor.build` must agree (the revision after
// it may differ). An unspecified version on either side matches.
function osVersionMatches(want: string | undefined, have: string | undefined): boolean {
  if (!want || !have) return true;
  const build = (v: string) => v.split('.').slice(0, 3).join('.');
  return build(want) === build(have);
}

// A candidate requiring OS features (e.g. Windows `win32k`) matches only if the wanted platform
// has all of them.
function osFeaturesMatch(want: readonly string[] | undefined, have: readonly string[] | undefined): boolean {
  if (have === undefined || have.length === 0) return true;
  const wanted = new Set(want ?? []);
  return have.every((f) => wanted.has(f));
}

/**
 * A ranking function for `want`: the preference rank of a candidate platform (0 = best), or
 * undefined when it does not match. Attestation entries (`unknown/unknown`) never match.
 */
export function platformMatcher(
  want: Platform,
  options: PlatformMatchOptions = {},
): (candidate: Platform | undefined) => number | undefined {
  const slots = platformPreferences(want, options);
  const wantNormalized = normalizePlatform(want);
  return (candidate) => {
    if (candidate === undefined || isAttestationPlatform(candidate)) return undefined;
    const c = normalizePlatform(candidate);
    if (!osVersionMatches(wantNormalized['os.version'], c['os.version'])) return undefined;
    if (!osFeaturesMatch(wantNormalized['os.features'], c['os.features'])) return undefined;
    const rank = slots.findIndex((s) => s.os === c.os && s.architecture === c.architecture && s.variant === c.variant);
    return rank === -1 ? undefined : rank;
  };
}

/**
 * The index of the best child of an index for `want`, or undefined. Entries without a platform
 * and attestation entries are skipped; among equally ranked entries an exact `os.version`
 * match wins, then index order.
 */
export function selectPlatform(
  manifests: readonly { readonly platform?: Platform }[],
  want: Platform,
  options: PlatformMatchOptions = {},
): number | undefined {
  const rank = platformMatcher(want, options);
  let best: { index: number; rank: number; exactVersion: boolean } | undefined;
  manifests.forEach((entry, index) => {
    const r = rank(entry.platform);
    if (r === undefined) return;
    const exactVersion = want['os.version'] !== undefined && entry.platform?.['os.version'] === want['os.version'];
    if (best === undefined || r < best.rank || (r === best.rank && exactVersion && !best.exactVersion)) {
      best = { index, rank: r, exactVersion };
    }
  });
  return best?.index;
}

/**
 * The platforms an index offers, formatted and deduplicated in index order, for an error that
 * lists them. Attestation entries and entries without a platform are left out.
 */
export function describeAvailable(manifests: readonly { readonly platform?: Platform }[]): string[] {
  const seen = new Set<string>();
  for (const { platform } of manifests) {
    if (platform === undefined || isAttestationPlatform(platform)) continue;
    seen.add(formatPlatform(platform));
  }
  return [...seen];
}
