import { Command, CommanderError } from 'commander';
import { registerEnsure } from './commands/ensure.ts';
import { registerImages, registerInspect, registerRmi } from './commands/images.ts';
import { registerLint } from './commands/lint.ts';
import { registerFsck, registerGc } from './commands/maintenance.ts';
import { registerPin } from './commands/pin.ts';
import { registerPull, registerResolve } from './commands/pull.ts';
import { registerRef } from './commands/ref.ts';
import { registerWebhook } from './commands/webhook.ts';
import { formatError, processIo, type Io } from './io.ts';

/** Runs the `kimg` command line with `argv` (without node and the script) and returns the exit
 * status; it never calls process.exit, so it can run in-process. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode = 0;
  const setExit = (code: number) => {
    exitCode = Math.max(exitCode, code);
  };
  const program = new Command('kimg')
    .description("Kubernetes' container image handling: references, pulls into an OCI layout, the kubelet's pull policies, digest pinning")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .option('--store <dir>', 'the image store (an OCI layout); default $KIMG_STORE, else $XDG_DATA_HOME/kimg, else ~/.local/share/kimg');
  registerRef(program, io, setExit);
  registerPull(program, io);
  registerResolve(program, io);
  registerImages(program, io);
  registerInspect(program, io);
  registerRmi(program, io);
  registerGc(program, io);
  registerFsck(program, io);
  registerEnsure(program, io, setExit);
  registerWebhook(program, io, setExit);
  registerPin(program, io, setExit);
  registerLint(program, io, setExit);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
    }
    io.stderr.write(`${formatError(err)}\n`);
    return 1;
  }
  return exitCode;
}

