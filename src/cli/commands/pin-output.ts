// Writing what `kimg pin` and `kimg relocate` produced: one stream on standard output, records, or
// files replaced atomically.
import { randomBytes } from 'node:crypto';
import { open, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { formatImageLock, makeImageLock, type LockEntry, type PinnedFile } from '../../manifests/index.ts';
import { printRecords, writeLine, type Io } from '../io.ts';

/**
 * Several files as one YAML stream, in order: each file's text as it is, with `---` between
 * files (a newline first when a file lacks its final one; no extra `---` when the next file
 * starts with one), in the next file's line endings. A later file's byte-order mark is dropped:
 * it may only start a stream.
 */
export function concatenateStreams(texts: readonly string[]): string {
  let out = '';
  for (const raw of texts) {
    const text = out === '' ? raw : raw.replace(/^\uFEFF/, '');
    if (out !== '' && text !== '') {
      const newline = /\r\n/.test(text) ? '\r\n' : '\n';
      if (!out.endsWith('\n')) out += newline;
      // Directives (`%YAML`) may follow only a document end marker, never `---`.
      if (text.startsWith('%')) out += `...${newline}`;
      else if (!/^---(?:[ \t\r\n]|$)/.test(text)) out += `---${newline}`;
    }
    out += text;
  }
  return out;
}

export interface FileWrite {
  readonly path: string;
  readonly text: string;
}

/**
 * Replaces files so that each is either entirely old or entirely new, and none changes unless
 * all new contents were written: every new text goes to a temporary file beside its target
 * (same directory, same mode, fsynced) first, then each is renamed over its target. A symbolic
 * link is written through (its target is replaced, the link stays).
 */
export async function writeFilesAtomically(files: readonly FileWrite[]): Promise<void> {
  const staged: { temp: string; target: string }[] = [];
  try {
    for (const file of files) {
      let target = file.path;
      let mode: number | undefined;
      try {
        target = await realpath(file.path);
        mode = (await stat(target)).mode & 0o7777;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const temp = join(
        dirname(target),
        `.${basename(target)}.kimg-${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
      );
      const handle = await open(temp, 'wx', mode ?? 0o666);
      staged.push({ temp, target });
      try {
        await handle.writeFile(file.text, 'utf8');
        // A new file gets the umask's mode; a replaced one keeps its own.
        if (mode !== undefined) await handle.chmod(mode);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    while (staged.length > 0) {
      const { temp, target } = staged[0] as { temp: string; target: string };
      await rename(temp, target);
      staged.shift();
    }
  } finally {
    await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
  }
}

/** What a rewrite of manifests produced, and where the user asked for it. */
export interface RewriteOutput {
  readonly files: readonly PinnedFile[];
  /** For `--lock`. */
  readonly resolutions: readonly LockEntry[];
  readonly resolveMode: string;
  /** `-w`: replace the files instead of printing them. */
  readonly write: boolean;
  readonly lock: string | undefined;
  readonly format: 'text' | 'json' | 'yaml';
  /** The verb of the records' new-value field and of the `-w` lines: `pinned`, `relocated`. */
  readonly verb: 'pinned' | 'relocated';
}

/**
 * Writes a finished rewrite: `-w` files and the `--lock` file together, all or none; then one
 * record per changed slot (`-o json|yaml`, docs/cli-output.md), a line per rewritten file on
 * stderr (`-w`), or the rewritten manifests as one stream on stdout.
 */
export async function writeRewrite(io: Io, out: RewriteOutput): Promise<void> {
  const writes: FileWrite[] = [];
  if (out.write) writes.push(...out.files.filter((f) => f.changed).map((f) => ({ path: f.file, text: f.text })));
  if (out.lock !== undefined)
    writes.push({ path: out.lock, text: formatImageLock(makeImageLock(out.resolveMode, out.resolutions)) });
  await writeFilesAtomically(writes);
  if (out.format !== 'text') {
    await printRecords(
      io,
      out.format,
      out.files.flatMap((f) =>
        f.changes.map(({ slot, image }) => ({
          file: slot.file,
          line: slot.line,
          column: slot.column,
          path: slot.path,
          image: slot.image,
          [out.verb]: image,
        })),
      ),
    );
  } else if (out.write) {
    for (const f of out.files)
      if (f.changed)
        writeLine(io.stderr, `${f.file}: ${out.verb} ${f.changes.length} image${f.changes.length === 1 ? '' : 's'}`);
  } else {
    io.stdout.write(concatenateStreams(out.files.map((f) => f.text)));
  }
}
