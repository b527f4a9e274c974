/**
 * Remote look-ups that pull nothing and write nothing to disk (crane `ls`/`digest`/`manifest`/
 * `config`, skopeo `inspect --raw`, regctl): `kimg tags`, `kimg manifest`, `kimg config`,
 * `kimg resolve` (also for a platform, and one reference per line from standard input).
 */
import type { Command } from 'commander';
import { isKimgError } from '../../errors/index.ts';
import { fetchRemoteConfig, fetchRemoteManifest, resolveRemote, type RemoteResolution } from '../../pull/index.ts';
import { parseNormalizedNamed } from '../../reference/index.ts';
import type { RegistryClient } from '../../registry/index.ts';
import {
  OUTPUT_OPTION,
  UsageError,
  choiceFlag,
  formatError,
  parseOutputFormat,
  readLines,
  recordPrinter,
  wholeNumberFlag,
  writeLine,
  type Io,
} from '../io.ts';
import { addRegistryFlags, registryFrom, type RegistryFlags } from '../registry-options.ts';

interface RemoteFlags extends RegistryFlags {
  readonly output: string;
  readonly platform?: string;
}

interface TagsFlags extends RegistryFlags {
  readonly output: string;
  readonly limit: string;
}

/** A failure as a JSON value: the stable code of a typed error, and its message. */
function errorJson(err: unknown): { code: string; message: string } {
  if (isKimgError(err)) return { code: err.code, message: err.message };
  return { code: 'Err', message: err instanceof Error ? err.message : String(err) };
}

/** `-o` of the commands that print a registry's bytes: those bytes, or a record around them. */
const RAW_FORMATS = ['raw', 'json', 'yaml'] as const;

/** References looked up at once by `kimg resolve -` (answers still print in input order). */
const BATCH_CONCURRENCY = 4;

function flagsOf<T>(flags: T, command: Command): T {
  return { ...command.optsWithGlobals(), ...flags } as T;
}

/** Runs `body` with a client, closing it afterwards whatever happens. */
async function withClient<T>(
  flags: RegistryFlags,
  io: Io,
  image: string | undefined,
  body: (client: RegistryClient) => Promise<T>,
): Promise<T> {
  const client = await registryFrom(flags, io, image);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** `repo@digest` for a resolution: the platform's manifest when one was asked for. */
function pinned(result: RemoteResolution): string {
  const digest = (result.platformManifest ?? result.descriptor).digest;
  return `${result.name.replace(/@.*$/, '')}@${digest}`;
}

/** The JSON shape of `kimg resolve -o json`: `digest`, `mediaType` and `size` describe what the text
 * form prints (the platform's manifest with `--platform`); `index` the index it was chosen from. */
function resolutionJson(result: RemoteResolution): Record<string, unknown> {
  const shown = result.platformManifest ?? result.descriptor;
  return {
    name: result.name,
    digest: shown.digest,
    mediaType: shown.mediaType,
    size: shown.size,
    via: result.via,
    ...(result.platform !== undefined && { platform: result.platform }),
    ...(result.platformManifest !== undefined &&
      result.platformManifest.digest !== result.descriptor.digest && {
        index: {
          digest: result.descriptor.digest,
          mediaType: result.descriptor.mediaType,
          size: result.descriptor.size,
        },
      }),
  };
}

/**
 * Yields each input with its settled result, in input order, running up to `limit` at once.
 */
async function* inOrder<T, R>(
  inputs: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (input: T) => Promise<R>,
): AsyncGenerator<{ input: T; result: PromiseSettledResult<R> }> {
  const window: { input: T; result: Promise<PromiseSettledResult<R>> }[] = [];
  const settle = (input: T) =>
    fn(input).then(
      (value): PromiseSettledResult<R> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<R> => ({ status: 'rejected', reason }),
    );
  for await (const input of inputs) {
    window.push({ input, result: settle(input) });
    if (window.length >= limit) {
      const first = window.shift();
      if (first !== undefined) yield { input: first.input, result: await first.result };
    }
  }
  for (const entry of window) yield { input: entry.input, result: await entry.result };
}

export function registerResolve(program: Command, io: Io, setExit: (code: number) => void): void {
  addRegistryFlags(
    program
      .command('resolve')
      .description(
        'print the digest a reference points at now, without downloading the image; "-" reads references one per line from standard input',
      )
      .argument('<image...>', 'image references; "-" reads them one per line from standard input')
      .option(
        '--platform <os/arch[/variant]>',
        "print the digest of this platform's manifest (the index is followed) instead of the index's",
      )
      .option(...OUTPUT_OPTION),
  ).action(async (images: string[], raw: RemoteFlags, command: Command) => {
    const flags = flagsOf(raw, command);
    const format = parseOutputFormat(flags.output);
    const batch = images.length === 1 && images[0] === '-';
    if (batch && flags.passwordStdin === true)
      throw new UsageError('resolve - reads references from standard input: --password-stdin cannot read it too');
    const print = format === 'text' ? undefined : recordPrinter(io, format);
    const inputs = batch ? readLines(io.stdin) : images;
    // `--creds` is for the registry of the (first) image named on the command line.
    await withClient(flags, io, batch ? undefined : images[0], async (client) => {
      const lookUp = (image: string) =>
        resolveRemote(client, image, flags.platform === undefined ? {} : { platform: flags.platform });
      for await (const { input, result } of inOrder(inputs, BATCH_CONCURRENCY, lookUp)) {
        if (result.status === 'rejected') {
          setExit(1);
          writeLine(io.stderr, formatError(result.reason));
          await print?.({ input, error: errorJson(result.reason) });
          continue;
        }
        if (print !== undefined) await print(resolutionJson(result.value));
        else writeLine(io.stdout, pinned(result.value));
      }
    });
  });
}

export function registerManifest(program: Command, io: Io): void {
  addRegistryFlags(
    program
      .command('manifest')
      .description(
        "print an image's manifest or index exactly as the registry serves it (verified against its digest), without pulling",
      )
      .argument('<image>', 'image reference')
      .option('--platform <os/arch[/variant]>', "follow an index to this platform's manifest")
      .option(
        '-o, --output <format>',
        'raw (the exact bytes, nothing added), json or yaml (the digest, media type, size and the parsed document)',
        'raw',
      ),
  ).action(async (image: string, raw: RemoteFlags, command: Command) => {
    const flags = flagsOf(raw, command);
    const format = choiceFlag('-o/--output', flags.output, RAW_FORMATS);
    await withClient(flags, io, image, async (client) => {
      const found = await fetchRemoteManifest(
        client,
        image,
        flags.platform === undefined ? {} : { platform: flags.platform },
      );
      if (format === 'raw') {
        io.stdout.write(found.bytes);
        return;
      }
      await recordPrinter(
        io,
        format,
      )({
        name: found.name,
        digest: found.descriptor.digest,
        mediaType: found.descriptor.mediaType,
        size: found.descriptor.size,
        ...(found.platform !== undefined && { platform: found.platform }),
        manifest: JSON.parse(Buffer.from(found.bytes).toString('utf8')) as unknown,
      });
    });
  });
}

export function registerConfig(program: Command, io: Io): void {
  addRegistryFlags(
    program
      .command('config')
      .description(
        "print an image's config blob exactly as the registry serves it (verified against its digest), without pulling",
      )
      .argument('<image>', 'image reference')
      .option(
        '--platform <os/arch[/variant]>',
        "platform to follow a multi-platform image to (default: this machine's)",
      )
      .option(
        '-o, --output <format>',
        'raw (the exact bytes, nothing added), json or yaml (the digests, media type, size and the parsed config)',
        'raw',
      ),
  ).action(async (image: string, raw: RemoteFlags, command: Command) => {
    const flags = flagsOf(raw, command);
    const format = choiceFlag('-o/--output', flags.output, RAW_FORMATS);
    await withClient(flags, io, image, async (client) => {
      const found = await fetchRemoteConfig(
        client,
        image,
        flags.platform === undefined ? {} : { platform: flags.platform },
      );
      if (format === 'raw') {
        io.stdout.write(found.bytes);
        return;
      }
      let config: unknown;
      try {
        config = JSON.parse(Buffer.from(found.bytes).toString('utf8'));
      } catch {
        throw new Error(`${found.name}: the config ${found.descriptor.digest} is not JSON; use -o raw`);
      }
      await recordPrinter(
        io,
        format,
      )({
        name: found.name,
        manifest: found.manifest.digest,
        digest: found.descriptor.digest,
        mediaType: found.descriptor.mediaType,
        size: found.descriptor.size,
        ...(found.platform !== undefined && { platform: found.platform }),
        config,
      });
    });
  });
}

export function registerTags(program: Command, io: Io): void {
  addRegistryFlags(
    program
      .command('tags')
      .description("list a repository's tags as its registry lists them (following pages), without pulling")
      .argument('<repository>', 'repository, e.g. busybox or registry.example.com/team/app (no tag)')
      .option('--limit <n>', 'stop after this many tags (a note on standard error says the list was cut)', '100000')
      .option(
        '-o, --output <format>',
        'text (one tag per line), json or yaml (one object: name, tags, truncated)',
        'text',
      ),
  ).action(async (repository: string, raw: TagsFlags, command: Command) => {
    const flags = flagsOf(raw, command);
    const format = parseOutputFormat(flags.output);
    const limit = wholeNumberFlag('--limit', flags.limit, 1);
    const ref = parseNormalizedNamed(repository);
    if (ref.tag !== undefined || ref.digest !== undefined)
      throw new UsageError(`kimg tags takes a repository, not an image: "${repository}" names a tag or digest`);
    await withClient(flags, io, repository, async (client) => {
      const list = await client.listTags({ registry: ref.domain, path: ref.path }, { maxTags: limit });
      const name = `${ref.domain}/${ref.path}`;
      if (format !== 'text') {
        await recordPrinter(io, format)({ name, tags: list.tags, truncated: list.truncated });
      } else {
        for (const tag of list.tags) writeLine(io.stdout, tag);
      }
      if (list.truncated)
        writeLine(io.stderr, `kimg: ${name}: listed the first ${list.tags.length} tags; the registry has more`);
    });
  });
}
