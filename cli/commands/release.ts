// `edgetune release`: the device side of releases (what a bundle's own edgetune runs on the device).
// `activate` switches `current`, restarts the agent and rolls back when the new release is not healthy;
// an agent update pushed over MQTT runs it detached from the agent it replaces.

import type { Command } from 'commander';
import { applyUpdate } from '../../agent/updater.js';
import { activateRelease, currentVersion } from '../../runtime/release/activate.js';
import { releaseLayout } from '../../runtime/release/layout.js';
import { localExec } from '../../runtime/release/local.js';
import { serviceManager } from '../../runtime/release/service.js';
import { printJson } from '../output.js';

export function registerRelease(program: Command): void {
  const release = program.command('release').description('on a device: the installed edgetune releases');
  release
    .command('activate')
    .description('switch to an installed release, restart the agent, roll back if it is not healthy')
    .requiredOption('--version <version>', 'the release (a folder in <prefix>/opt/edgetune/releases)')
    .option('--prefix <dir>', 'install prefix', '/')
    .option('--service <manager>', 'systemd or process', 'systemd')
    .option('--port <n>', "the agent's HTTP port", (v) => Number(v), 8080)
    .option('--fleet', 'the agent must also be connected to its broker')
    .option('--timeout <s>', 'seconds to wait for a healthy agent', (v) => Number(v), 60)
    .option('--json', 'print the result as JSON')
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
    .option('--timeout <s>', 'seconds to wait for a healthy agent', (v) => Number(v), 120)
    .action(async (flags: { prefix: string; service: string; timeout: number }) => {
      const result = await applyUpdate(
        releaseLayout(flags.prefix),
        flags.service === 'process' ? 'process' : 'systemd',
        flags.timeout * 1000,
      );
      process.stdout.write(result ? `release ${result.version} is running\n` : 'no update requested\n');
    });
  release
    .command('status')
    .description('the current release')
    .option('--prefix <dir>', 'install prefix', '/')
    .action(async (flags: { prefix: string }) => {
      process.stdout.write(`${(await currentVersion(localExec, releaseLayout(flags.prefix))) ?? 'none'}\n`);
    });
}
