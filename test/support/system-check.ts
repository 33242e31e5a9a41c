// Run first by `npm test`, and the e2e project's global set-up: checks that the system packages the
// tests use (system-packages.txt) and the shared models are there. What is missing is named in one line
// with the command that installs it, instead of suites failing one by one.

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MODEL_DIR, REPO_ROOT } from './paths.js';

interface SystemPackage {
  name: string;
  probe: string;
}

export function systemPackages(env: NodeJS.ProcessEnv = process.env): SystemPackage[] {
  return readFileSync(join(REPO_ROOT, 'system-packages.txt'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [name, probe, override] = line.split(/\s+/) as [string, string, string | undefined];
      return { name, probe: (override && env[override]) || probe };
    });
}

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The one line to print when something is missing, or undefined when all is there. */
export function missingSystemParts(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const missing = systemPackages(env)
    .filter(({ probe }) => (probe.startsWith('/') ? !existsSync(probe) : !onPath(probe, env)))
    .map(({ name, probe }) => `${name} (${probe})`);
  if (missing.length)
    return `edgetune tests: missing system package${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: run ./setup.sh as root`;
  if (!existsSync(MODEL_DIR))
    return `edgetune tests: no models in ${MODEL_DIR}: set EDGETUNE_MODEL_DIR to the shared models folder (default ../shared/models)`;
  return undefined;
}

export function setup(): void {
  const problem = missingSystemParts();
  if (!problem) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

// `npm test` runs this file first, so a missing package stops it before the build and lint.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) setup();
