// Ctrl-C and SIGTERM during a long command (a pull): the work is aborted through an AbortSignal
// so that the command's own cleanup runs (the terminal restored, partial downloads kept), and
// the process exits as shells expect from a signal: 128 + the signal number.

/** The exit status of a process ended by `signal`, as a shell reports it. */
export const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

export interface Interruption {
  /** Aborted at the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** The signal received, once one was. */
  readonly received: 'SIGINT' | 'SIGTERM' | undefined;
  /** Stops listening (the command finished). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM while a command runs. The first aborts `signal`; a second one,
 * or a command that has not finished `graceMs` after the first, runs `restore` (put the terminal
 * back) and exits at once.
 */
export function listenForInterrupt(restore: () => void, graceMs = 5000): Interruption {
  const controller = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  let timer: NodeJS.Timeout | undefined;
  const hardExit = () => {
    restore();
    process.exit(SIGNAL_EXIT[received ?? 'SIGINT']);
  };
  const on = (signal: 'SIGINT' | 'SIGTERM') => () => {
    if (received !== undefined) return hardExit();
    received = signal;
    controller.abort(new Error(`interrupted by ${signal}`));
    timer = setTimeout(hardExit, graceMs).unref();
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
