#!/usr/bin/env node
// `npm run bench -- <name> [options]`: runs the compiled bench/<name>.js.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const compiled = join(here, '..', 'dist', 'bench');
const names = readdirSync(here)
  .filter(
    (f) =>
      f.endsWith('.ts') &&
      ![
        'table.ts',
        'synthetic-heads.ts',
        'agent-process.ts',
        'embedded.ts',
        'free-port.ts',
        'mqtt-wire.ts',
        'fleet-sim-devices.ts',
      ].includes(f),
  )
  .map((f) => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || !names.includes(name)) {
  console.log(
    `usage: npm run bench -- <name> [options]\n\nbenchmarks: ${names.join(', ')}\n(each prints a table; --json prints the same figures for scripts)`,
  );
  process.exit(name && name !== '--help' ? 2 : 0);
}
const script = join(compiled, `${name}.js`);
if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build`);
const result = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
