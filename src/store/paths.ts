import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseDigest, type ParsedDigest } from '../digest/index.ts';

/**
 * Where the store lives when no `--store` is given: `$KIMG_STORE`, else `$XDG_DATA_HOME/kimg`,
 * else `~/.local/share/kimg`. A relative `$XDG_DATA_HOME` is ignored, as the XDG spec says.
 */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const explicit = env.KIMG_STORE;
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const xdg = env.XDG_DATA_HOME;
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'kimg');
  return join(home, '.local', 'share', 'kimg');
}

export const OCI_LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const BLOBS_DIR = 'blobs';
/** Partial downloads, their metadata and the locks; not part of the OCI layout, readers ignore it. */
export const INGEST_DIR = 'ingest';
export const INDEX_LOCK = 'index.lock';
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';

/** The only way a digest becomes a path: validated first (throws DigestError otherwise). */
export function blobRelativePath(digest: string): { parsed: ParsedDigest; dir: string; file: string } {
  const parsed = parseDigest(digest);
  return { parsed, dir: join(BLOBS_DIR, parsed.algorithm), file: join(BLOBS_DIR, parsed.algorithm, parsed.encoded) };
}

/** Ingest files of one digest: `ingest/<alg>-<hex>.{data,json,lock}`; the digest is validated. */
export function ingestBaseName(parsed: ParsedDigest): string {
  return `${parsed.algorithm}-${parsed.encoded}`;
}
