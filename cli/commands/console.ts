// `edgetune console`: the fleet console (broker, registry, merges, rollouts, web UI), and the admin verbs
// that work on its folder while it runs: add-device, devices.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { DeviceCredentials } from '../../deploy/console/credentials.js';
import { deviceViews } from '../../deploy/console/device-view.js';
import { Registry } from '../../deploy/console/registry.js';
import { ConsoleError, FleetConsole } from '../../deploy/console/service.js';
import { startConsoleWeb } from '../../deploy/console/web.js';
import { createLogger } from '../../runtime/agent/log.js';
import { checkId } from '../../runtime/sync/protocol.js';
import { formatTable, percent, printJson, UsageError } from '../output.js';

interface DirFlags {
  dir: string;
  fleet?: string;
}

function defaultDir(): string {
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'edgetune', 'console');
}

/** The fleet id is chosen once, on the console's first run, and kept in its folder. */
export function consoleFleet(flags: DirFlags): string {
  const file = join(flags.dir, 'console.json');
  if (existsSync(file)) {
    const saved = (JSON.parse(readFileSync(file, 'utf8')) as { fleet?: string }).fleet;
    if (!saved) throw new ConsoleError('CONSOLE_BAD_DIR', `${file}: field "fleet" is missing`);
    if (flags.fleet && flags.fleet !== saved) throw new UsageError(`${flags.dir} is the console of fleet "${saved}", not "${flags.fleet}" (use another --dir for another fleet)`);
    return saved;
  }
  const fleet = flags.fleet ?? 'fleet';
  checkId('fleet', fleet);
  mkdirSync(flags.dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ fleet }, null, 2)}\n`);
  return fleet;
}

function withDir(command: Command): Command {
  return command.option('--dir <dir>', 'the console folder: registry, credentials, fleet key', defaultDir()).option('--fleet <id>', 'fleet id, chosen on first run (default "fleet")');
}

interface StartFlags extends DirFlags {
  host: string;
  port: number;
  brokerUrl?: string;
  brokerUser?: string;
  brokerPasswordFile?: string;
  canary: string[];
  tolerance: number;
  webHost: string;
  webPort: number;
  web: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export function registerConsole(program: Command): void {
  const console_ = program
    .command('console')
    .description('the fleet console: MQTT broker, device registry, merged fleet heads, staged rollouts')
    .addHelpText(
      'after',
      `
First run (creates the folder, the fleet signing key and the registry):
  edgetune console start --fleet farm
Give each device its broker login and the fleet key (paste the snippet into the agent's config):
  edgetune console add-device pi-kitchen --url mqtt://console.local:1883
See the fleet:
  edgetune console devices --json`,
    );

  withDir(console_.command('start', { isDefault: true }))
    .description('run the console until Ctrl-C (logs are JSON lines on stdout)')
    .option('--host <addr>', 'embedded broker address', '0.0.0.0')
    .option('--port <port>', 'embedded broker port', (v) => Number(v), 1883)
    .option('--broker-url <url>', 'use this broker instead of the embedded one (e.g. mqtt://mosquitto:1883)')
    .option('--broker-user <name>', 'console login on the external broker')
    .option('--broker-password-file <file>', 'file holding the console password on the external broker')
    .option('--canary <device...>', 'devices that try every fleet head first', [])
    .option('--tolerance <x>', 'roll back when a canary loses more holdout accuracy than this', Number, 0.02)
    .option('--web-host <addr>', 'web console address (keep it on loopback; use an SSH tunnel or a TLS proxy)', '127.0.0.1')
    .option('--web-port <port>', 'web console port', (v) => Number(v), 8090)
    .option('--no-web', 'no web console')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addHelpText('after', '\nExamples:\n  edgetune console start --fleet farm --canary pi-1 pi-2\n  edgetune console start --broker-url mqtt://127.0.0.1:1883 --broker-user console --broker-password-file ~/.console-pass')
    .action(async (flags: StartFlags) => {
      const fleet = consoleFleet(flags);
      if (flags.brokerUrl && !(flags.brokerUser && flags.brokerPasswordFile)) throw new UsageError('--broker-url needs --broker-user and --broker-password-file');
      const log = createLogger(flags.logLevel);
      const running = await FleetConsole.start({
        dir: flags.dir,
        fleet,
        broker: { host: flags.host, port: flags.port },
        ...(flags.brokerUrl ? { externalBroker: { url: flags.brokerUrl, username: flags.brokerUser!, password: readFileSync(flags.brokerPasswordFile!, 'utf8').trim(), protocolVersion: 5 } } : {}),
        canaries: flags.canary,
        rollbackTolerance: flags.tolerance,
        log,
      });
      const web = flags.web ? await startConsoleWeb(running, { host: flags.webHost, port: flags.webPort, tokenFile: join(flags.dir, 'web-token'), log }) : undefined;
      if (web) log.info('web console', { url: web.url });
      await new Promise<void>((done) => {
        const onSignal = () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          log.info('console stopping');
          void (async () => {
            await web?.close();
            await running.stop();
          })().then(done, done);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
    });

  withDir(console_.command('add-device <id>'))
    .description("issue a device's broker login (again: a new password) and print the agent's fleet config")
    .option('--url <url>', 'the broker URL devices use', `mqtt://${hostname()}:1883`)
    .option('--public-key-file <path>', "where the fleet public key will be on the device", '/etc/edgetune/fleet.pub')
    .option('--json', 'print JSON (device, password, fleet config, public key PEM)')
    .addHelpText('after', '\nExample:\n  edgetune console add-device pi-kitchen --url mqtt://console.local:1883 >> /etc/edgetune/agent.yaml')
    .action((id: string, flags: DirFlags & { url: string; publicKeyFile: string; json?: boolean }) => {
      checkId('device', id);
      const fleet = consoleFleet(flags);
      const pub = join(flags.dir, 'fleet.pub');
      if (!existsSync(pub)) throw new ConsoleError('CONSOLE_NOT_STARTED', `${pub} does not exist: run "edgetune console start" once first (it creates the fleet key)`);
      const registry = new Registry(join(flags.dir, 'registry.db'));
      const credentials = new DeviceCredentials(join(flags.dir, 'registry.db'));
      try {
        const password = credentials.issue(id);
        registry.forgetKey(id);
        const config = { fleet: { url: flags.url, id: fleet, username: id, password, publicKeyFile: flags.publicKeyFile } };
        if (flags.json) return printJson({ device: id, password, ...config, publicKey: readFileSync(pub, 'utf8') });
        process.stdout.write(`# edgetune agent config for ${id}; copy ${pub} to ${flags.publicKeyFile} on the device\n${YAML.stringify(config)}`);
      } finally {
        registry.close();
        credentials.close();
      }
    });

  withDir(console_.command('devices'))
    .description('list the devices the console knows, with their last state')
    .option('--json', 'print JSON')
    .action((flags: DirFlags & { json?: boolean }) => {
      consoleFleet(flags);
      const registry = new Registry(join(flags.dir, 'registry.db'));
      try {
        const views = deviceViews(registry, []);
        if (flags.json) return printJson(views);
        const rows = views.map((d) => [
          d.id,
          d.online ? 'online' : 'offline',
          new Date(d.lastSeen).toISOString().replace('T', ' ').slice(0, 19),
          d.backbone ?? '-',
          d.headVersion ?? '-',
          d.fleetVersion ?? '-',
          Object.entries(d.perClass)
            .map(([k, v]) => `${k}:${v}`)
            .join(' ') || '-',
          d.holdoutAccuracy === null ? '-' : percent(d.holdoutAccuracy),
        ]);
        process.stdout.write(`${formatTable(['device', 'state', 'last seen (UTC)', 'backbone', 'head', 'fleet', 'samples per class', 'holdout'], rows)}\n`);
      } finally {
        registry.close();
      }
    });
}
