/** The `kimg` command line, runnable in-process. */
export { main } from './main.ts';
export type { Io } from './io.ts';
