#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 node --max-semi-space-size=1 --max-old-space-size=128
// The shebang carries the agent's memory settings (runtime/release/node-flags.ts; the trim threshold is
// left out to stay under the 127-byte shebang limit of older kernels such as Jetson Nano's 4.9) for an
// installed `edgetune`; `node dist/bin/edgetune.js` runs with Node's defaults.
import { main } from '../cli/main.js';

process.exitCode = await main(process.argv);
