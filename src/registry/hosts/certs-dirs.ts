/**
 * Per-host certificate directories in Docker's layout (`<root>/<host[:port]>/*.crt`, `*.cert`,
 * `*.key`), which containers/image reads for every registry it contacts: by default
 * `~/.config/containers/certs.d` (rootless), `/etc/containers/certs.d`, `/etc/docker/certs.d`.
 * containerd reads the same layout through its hosts directories instead (see containerd.ts).
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { certFilesHostSpec } from './containerd.ts';
import { HostsConfigError } from './errors.ts';
import type { ClientCertificate } from './types.ts';

export interface CertFiles {
  readonly dir: string;
  readonly caFiles: readonly string[];
  readonly clientCerts: readonly ClientCertificate[];
}

export interface CertsDirs {
  readonly roots: readonly { readonly root: string; readonly dirs: ReadonlyMap<string, CertFiles> }[];
}

/** containers/image's search order; the per-user directory only for non-root users. */
export function defaultCertsDirRoots(home: string = homedir(), uid: number | undefined = process.getuid?.()): string[] {
  const system = ['/etc/containers/certs.d', '/etc/docker/certs.d'];
  return uid === 0 ? system : [join(home, '.config/containers/certs.d'), ...system];
}

export async function loadCertsDirs(roots: readonly string[]): Promise<CertsDirs> {
  const loaded: { root: string; dirs: Map<string, CertFiles> }[] = [];
  for (const root of roots) {
    const subdirs = await list(root);
    if (subdirs === undefined) continue;
    const dirs = new Map<string, CertFiles>();
    for (const entry of subdirs) {
      const dir = join(root, entry.name);
      if (
        !entry.isDirectory() &&
        !(
          entry.isSymbolicLink() &&
          (await stat(dir).then(
            (s) => s.isDirectory(),
            () => false,
          ))
        )
      ) {
        continue;
      }
      const files = (await list(dir)) ?? [];
      const spec = certFilesHostSpec(
        dir,
        files.filter((f) => !f.isDirectory()).map((f) => f.name),
      );
      dirs.set(entry.name, { dir, caFiles: spec.caFiles ?? [], clientCerts: spec.clientCerts ?? [] });
    }
    loaded.push({ root, dirs });
  }
  return { roots: loaded };
}

async function list(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new HostsConfigError(dir, `cannot list: ${code ?? String(err)}`, { cause: err });
  }
}

/** The first root's directory named exactly `host[:port]`. */
export function certsFor(certs: CertsDirs, host: string): CertFiles | undefined {
  for (const { dirs } of certs.roots) {
    const found = dirs.get(host);
    if (found !== undefined) return found;
  }
  return undefined;
}
