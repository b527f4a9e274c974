/**
 * The external programs integration tests run for real, the Debian packages that provide them,
 * and how to react when one is missing: skip a test (`requireTools`) or install it with apt-get
 * when running as root (`ensureTools`), failing with the exact command otherwise.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Binary → Debian package; `undefined` for tools that do not come from Debian. */
const PACKAGE_OF: Readonly<Record<string, string | undefined>> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  umoci: 'umoci',
  containerd: 'containerd',
  ctr: 'containerd',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  hyperfine: 'hyperfine',
  kubectl: undefined,
  kpt: undefined,
};

/** The absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function installHint(missing: readonly string[]): string {
  const packages = [...new Set(missing.map((name) => PACKAGE_OF[name]).filter((p): p is string => !!p))];
  const others = missing.filter((name) => !PACKAGE_OF[name]);
  const parts: string[] = [];
  if (packages.length) parts.push(`run: apt-get install -y ${packages.join(' ')}`);
  if (others.length) parts.push(`install ${others.join(', ')} (not a Debian package)`);
  return parts.join('; ');
}

/**
 * A skip reason naming the missing binaries and how to install them, or `undefined` when all
 * are present: `test('…', { skip: requireTools(['skopeo']) }, …)`.
 */
export function requireTools(names: readonly string[]): string | undefined {
  const missing = names.filter((name) => !which(name));
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(', ')}; ${installHint(missing)}`;
}

function aptGet(args: readonly string[]): boolean {
  const result = spawnSync('apt-get', args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

/**
 * Makes sure every binary in `names` is on PATH, installing the missing Debian packages with
 * apt-get when running as root (retrying after `apt-get update`). Throws with the exact command
 * to run when it cannot.
 */
export function ensureTools(names: readonly string[]): void {
  const missing = names.filter((name) => !which(name));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((name) => PACKAGE_OF[name]).filter((p): p is string => !!p))];
  const notDebian = missing.filter((name) => !PACKAGE_OF[name]);
  if (notDebian.length || process.getuid?.() !== 0 || !which('apt-get')) {
    throw new Error(`the kimg test harness needs ${missing.join(', ')}; ${installHint(missing)}`);
  }
  process.stderr.write(`kimg test harness: installing Debian packages ${packages.join(' ')}\n`);
  const install = ['install', '-y', '-q', ...packages];
  if (!aptGet(install) && !(aptGet(['update', '-q']) && aptGet(install))) {
    throw new Error(`apt-get could not install ${packages.join(' ')}; ${installHint(missing)}`);
  }
  const still = names.filter((name) => !which(name));
  if (still.length) throw new Error(`installed ${packages.join(' ')} but ${still.join(', ')} is still not on PATH`);
}
