// A `kimg` process that loads the CLI, says `ready`, then runs the command line it reads as one
// JSON array on stdin, and exits with its status. Crash tests start these ahead of time, so that
// the moment they SIGKILL one is chosen by what the pull is doing, not by module loading.
import { createInterface } from 'node:readline';
import { main } from '../../src/cli/index.ts';

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  lines.close();
  const argv = JSON.parse(line) as string[];
  process.exit(await main(argv));
}
process.exit(2);
