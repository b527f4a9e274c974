// Reading manifests for `kimg pin` and `kimg lint`: files, directories (their *.yaml, *.yml and
// *.json files, not recursive, as `kubectl -f DIR`), and `-` for standard input.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ManifestFileError, ManifestSource } from '../../manifests/index.ts';
import { UsageError, type Io } from '../io.ts';

export { UsageError } from '../io.ts';

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function unreadable(file: string, err: unknown): ManifestFileError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
  return new ManifestFileError('ErrManifestUnreadable', `${file}: cannot read: ${why}`, { file, cause: err });
}

/** The files named (directories expanded in name order), each once, `-` at most once. */
export async function expandInputs(names: readonly string[]): Promise<string[]> {
  if (names.length === 0) throw new UsageError('no input: give manifests with -f FILE (or -f - for standard input)');
  if (names.filter((n) => n === '-').length > 1) throw new UsageError('-f - (standard input) can be given once');
  const out: string[] = [];
  for (const name of names) {
    if (name === '-') {
      out.push(name);
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(name)).isDirectory();
    } catch (err) {
      throw unreadable(name, err);
    }
    if (!isDirectory) {
      out.push(name);
      continue;
    }
    let entries: string[];
    try {
      entries = (await readdir(name, { withFileTypes: true }))
        .filter((e) => e.isFile() && MANIFEST_FILE.test(e.name))
        .map((e) => e.name);
    } catch (err) {
      throw unreadable(name, err);
    }
    out.push(...entries.sort().map((e) => join(name, e)));
  }
  return [...new Set(out)];
}

/** Reads and parses every input; the first unreadable or unparseable one throws (exit 2). */
export async function readManifests(names: readonly string[], io: Io): Promise<ManifestSource[]> {
  const files = await expandInputs(names);
  const sources: ManifestSource[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = file === '-' ? await readAll(io.stdin) : await readFile(file);
    } catch (err) {
      throw unreadable(file, err);
    }
    sources.push(ManifestSource.fromBytes(file, bytes));
  }
  return sources;
}
