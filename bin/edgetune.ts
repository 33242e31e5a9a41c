#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --max-old-space-size=128
// The shebang carries the agent's memory settings (runtime/agent/node-flags.ts) for an installed
// `edgetune`; `node dist/bin/edgetune.js` runs with Node's defaults.
import { main } from '../cli/main.js';

process.exitCode = await main(process.argv);
