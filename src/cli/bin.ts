// Entry point for running the CLI from source (`node --import tsx src/cli/bin.ts`).
import { runProcess } from './main.ts';

await runProcess();
