/**
 * Where the user's credential files are, and reading them (the file I/O edge). Environment and
 * home directory are injectable so tests and servers never depend on the real user.
 */
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDockerConfigFile, type DockerConfigFile } from './docker-config.ts';
import { DockerConfigError } from './errors.ts';

export interface CredentialFileLocations {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly home?: string;
}

/** Bigger than any real config, small enough that a hostile file cannot exhaust memory. */
export const MAX_CREDENTIAL_FILE_BYTES = 4 * 1024 * 1024;

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(locations: CredentialFileLocations = {}): string {
  const env = locations.env ?? process.env;
  const dir = nonEmpty(env['DOCKER_CONFIG']);
  return dir !== undefined ? join(dir, 'config.json') : join(locations.home ?? homedir(), '.docker', 'config.json');
}

/**
 * containers auth.json files in lookup order: `$REGISTRY_AUTH_FILE` alone when set (as
 * containers/image does), else `$XDG_RUNTIME_DIR/containers/auth.json` then
 * `~/.config/containers/auth.json`.
 */
export function containersAuthPaths(locations: CredentialFileLocations = {}): string[] {
  const env = locations.env ?? process.env;
  const explicit = nonEmpty(env['REGISTRY_AUTH_FILE']);
  if (explicit !== undefined) return [explicit];
  const paths: string[] = [];
  const runtimeDir = nonEmpty(env['XDG_RUNTIME_DIR']);
  if (runtimeDir !== undefined) paths.push(join(runtimeDir, 'containers', 'auth.json'));
  paths.push(join(locations.home ?? homedir(), '.config', 'containers', 'auth.json'));
  return paths;
}

/** Default order: Docker's config (docs/semantics.md registry §7), then the containers auth files. */
export function defaultCredentialFilePaths(locations: CredentialFileLocations = {}): string[] {
  return [dockerConfigPath(locations), ...containersAuthPaths(locations)];
}

/**
 * Reads and parses the files that exist, in order. Missing files are skipped; unreadable,
 * oversized or malformed files throw a DockerConfigError naming the file.
 */
export async function loadCredentialFiles(paths: readonly string[]): Promise<DockerConfigFile[]> {
  const files: DockerConfigFile[] = [];
  for (const path of paths) {
    const text = await readBoundedText(path);
    if (text !== undefined) files.push(parseDockerConfigFile(text, path));
  }
  return files;
}

/** The file's text, or undefined when it does not exist. */
export async function readBoundedText(path: string, maxBytes = MAX_CREDENTIAL_FILE_BYTES): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DockerConfigError(path, `cannot be read (${code ?? 'unknown error'})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new DockerConfigError(path, 'is not a regular file');
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new DockerConfigError(path, `is larger than ${maxBytes} bytes`);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof DockerConfigError) throw err;
    throw new DockerConfigError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`);
  } finally {
    await handle.close();
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
