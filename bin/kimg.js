#!/usr/bin/env node
// The published entry point runs the compiled CLI (built by `npm run build`, run by `npm ci`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
