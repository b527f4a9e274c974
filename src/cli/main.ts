import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { escapeControls } from './format.ts';
import { processIo, reportError, type Io } from './io.ts';

type Register = (program: Command, io: Io, setExit: (code: number) => void) => void;

/**
 * The commands, in help order, each loaded only when it runs (every one for help or an unknown
 * command): `kimg pull` should not pay at start-up for YAML, the webhook and the admission engine.
 */
const COMMANDS: readonly (readonly [name: string, load: () => Promise<Register>])[] = [
  ['ref', async () => (await import('./commands/ref.ts')).registerRef],
  ['pull', async () => (await import('./commands/pull.ts')).registerPull],
  ['push', async () => (await import('./commands/copy.ts')).registerPush],
  ['copy', async () => (await import('./commands/copy.ts')).registerCopy],
  ['relocate', async () => (await import('./commands/relocate.ts')).registerRelocate],
  ['resolve', async () => (await import('./commands/remote.ts')).registerResolve],
  ['tags', async () => (await import('./commands/remote.ts')).registerTags],
  ['manifest', async () => (await import('./commands/remote.ts')).registerManifest],
  ['config', async () => (await import('./commands/remote.ts')).registerConfig],
  ['images', async () => (await import('./commands/images.ts')).registerImages],
  ['inspect', async () => (await import('./commands/images.ts')).registerInspect],
  ['rmi', async () => (await import('./commands/images.ts')).registerRmi],
  ['save', async () => (await import('./commands/archive.ts')).registerSave],
  ['load', async () => (await import('./commands/archive.ts')).registerLoad],
  ['gc', async () => (await import('./commands/maintenance.ts')).registerGc],
  ['fsck', async () => (await import('./commands/maintenance.ts')).registerFsck],
  ['ensure', async () => (await import('./commands/ensure.ts')).registerEnsure],
  ['webhook', async () => (await import('./commands/webhook.ts')).registerWebhook],
  ['pin', async () => (await import('./commands/pin.ts')).registerPin],
  ['lint', async () => (await import('./commands/lint.ts')).registerLint],
  ['registry', async () => (await import('./commands/registry.ts')).registerRegistry],
  ['completion', async () => (await import('./commands/completion.ts')).registerCompletion],
];

/** Commands that need every other command registered (they describe the whole tree). */
const NEEDS_ALL: ReadonlySet<string> = new Set(['completion']);

/** package.json's version: two directories up from both src/cli/ and dist/cli/. */
export function kimgVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** The command word: the first argument that is neither an option nor `--store`'s value. */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--store' || arg === '--log-level') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** Runs the `kimg` command line with `argv` (without node and the script) and returns the exit
 * status; it never calls process.exit, so it can run in-process. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode = 0;
  const setExit = (code: number) => {
    exitCode = Math.max(exitCode, code);
  };
  const program = new Command('kimg')
    .description(
      "Kubernetes' container image handling: references, pulls into an OCI layout, the kubelet's pull policies, digest pinning",
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // commander's `error: …` in kimg's one error style; usage errors exit 2.
      outputError: (s, write) => write(`kimg: ${escapeControls(s.replace(/^error: /, ''), { keepNewlines: true })}`),
    })
    .version(kimgVersion(), '--version', 'print the version of kimg')
    .showHelpAfterError('(run with --help for usage)')
    .option(
      '--store <dir>',
      'the image store (an OCI layout); default $KIMG_STORE, else $XDG_DATA_HOME/kimg, else ~/.local/share/kimg',
    )
    .option('-v, --verbose', 'say which configuration was read and trace every registry request (--log-level debug)')
    .option('--log-level <level>', 'error, warn (default), info (configuration read) or debug (also HTTP requests)');
  const name = commandName(argv);
  const wanted = COMMANDS.filter(([command]) => command === name);
  const all = wanted.length === 0 || (name !== undefined && NEEDS_ALL.has(name));
  for (const [, load] of all ? COMMANDS : wanted) (await load())(program, io, setExit);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
        ? 0
        : 2;
    }
    return Math.max(exitCode, reportError(io, err));
  }
  return exitCode;
}

/**
 * Runs `kimg` as the process (bin/kimg.js, src/cli/bin.ts): sets the exit status, and ends
 * quietly with status 0 when the reader of standard output goes away (`kimg ref x | head -1`),
 * as a closed pipe is a normal end for a command-line tool.
 */
export async function runProcess(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const onStreamError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
    throw err;
  };
  process.stdout.on('error', onStreamError);
  process.stderr.on('error', onStreamError);
  process.exitCode = await main(argv);
}
