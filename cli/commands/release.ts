// `edgetune release`: the device side of releases (what a bundle's own edgetune runs on the device).
// `activate` switches `current`, restarts the agent and rolls back when the new release is not healthy;
// an agent update pushed over MQTT runs it detached from the agent it replaces.

import type { Command } from 'commander';
import { applyUpdate } from '../../agent/updater.js';
import { activateRelease, currentVersion } from '../../runtime/release/activate.js';
import { releaseLayout } from '../../runtime/release/layout.js';
import { localExec } from '../../runtime/release/local.js';
import { serviceManager } from '../../runtime/release/service.js';
import { port, positiveNumber } from '../number-options.js';
import { printJson } from '../output.js';
import { existsSync, readdirSync } from 'node:fs';

/** The release folders under <prefix>/opt/edgetune/releases, sorted. */
function installedReleases(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort()
    : [];
}

export function registerRelease(program: Command): void {
  const release = program
    .command('release')
    .description('on a device: the installed edgetune releases')
    .addHelpText('after', '\nExamples:\n  edgetune release status --json\n  sudo edgetune release activate --version 0.2.0');
  release
    .command('activate')
    .description('switch to an installed release, restart the agent, roll back if it is not healthy')
    .requiredOption('--version <version>', 'the release (a folder in <prefix>/opt/edgetune/releases)')
    .option('--prefix <dir>', 'install prefix', '/')
    .option('--service <manager>', 'systemd or process', 'systemd')
    .option('--port <n>', "the agent's HTTP port", port('--port'), 8080)
    .option('--fleet', 'the agent must also be connected to its broker')
    .option('--timeout <s>', 'seconds to wait for a healthy agent', positiveNumber('--timeout', 'seconds'), 60)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  sudo edgetune release activate --version 0.2.0 --fleet')
    .action(
      async (flags: {
        version: string;
        prefix: string;
        service: string;
        port: number;
        fleet?: boolean;
        timeout: number;
        json?: boolean;
      }) => {
        const result = await activateRelease(localExec, {
          layout: releaseLayout(flags.prefix),
          version: flags.version,
          service: serviceManager(flags.service),
          health: { port: flags.port, fleet: flags.fleet ?? false, timeoutMs: flags.timeout * 1000 },
        });
        if (flags.json) printJson(result);
        else
          process.stdout.write(
            `${result.changed ? `switched to ${result.version} (was ${result.previous ?? 'none'})` : `${result.version} is already current`}; healthy\n`,
          );
      },
    );
  release
    .command('apply-update')
    .description('install and activate the agent update the agent downloaded (systemd starts this through edgetune-update.path)')
    .option('--prefix <dir>', 'install prefix', '/')
    .option('--service <manager>', 'systemd or process', 'systemd')
    .option('--timeout <s>', 'seconds to wait for a healthy agent', positiveNumber('--timeout', 'seconds'), 120)
    .option('--json', 'print the result as JSON ({"applied": false} when no update was requested)')
    .addHelpText('after', '\nExample:\n  sudo edgetune release apply-update --prefix / --service systemd')
    .action(async (flags: { prefix: string; service: string; timeout: number; json?: boolean }) => {
      const result = await applyUpdate(
        releaseLayout(flags.prefix),
        flags.service === 'process' ? 'process' : 'systemd',
        flags.timeout * 1000,
      );
      if (flags.json) printJson(result ? { applied: true, ...result } : { applied: false });
      else process.stdout.write(result ? `release ${result.version} is running\n` : 'no update requested\n');
    });
  release
    .command('status')
    .description('the current release')
    .option('--prefix <dir>', 'install prefix', '/')
    .option('--json', 'print {"current": V, "installed": [...]} (current is null before the first activation)')
    .addHelpText('after', '\nExample:\n  edgetune release status --json')
    .action(async (flags: { prefix: string; json?: boolean }) => {
      const layout = releaseLayout(flags.prefix);
      const current = await currentVersion(localExec, layout);
      if (flags.json) printJson({ current, installed: installedReleases(layout.releases) });
      else process.stdout.write(`${current ?? 'none'}\n`);
    });
}
