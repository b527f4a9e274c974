// `npm run bench`: speed and memory figures, each next to a peer measured in the same run.
// Figures vary between runs on a shared machine; compare the ratios, not the absolute numbers.
import { runCopyBench } from './copy.bench.ts';
import { runPullBench } from './pull.bench.ts';
import { runReferenceBench } from './reference.bench.ts';
import { runServeBench } from './serve.bench.ts';
import { runWebhookBench } from './webhook.bench.ts';

const only = process.argv.slice(2);
const suites: [string, () => Promise<void>][] = [
  ['reference', runReferenceBench],
  ['pull', runPullBench],
  ['webhook', runWebhookBench],
  ['serve', runServeBench],
  ['copy', runCopyBench],
];

for (const [name, run] of suites) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`\n### ${name}`);
  await run();
}
