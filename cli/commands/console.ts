// `edgetune console`: the fleet console (broker, registry, merges, rollouts, web UI), and the admin verbs
// that work on its folder while it runs: add-device, devices.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { DeviceCredentials } from '../../console/credentials.js';
import { deviceViews } from '../../console/device-view.js';
import { FleetClasses } from '../../console/fleet-classes.js';
import { writeMosquittoConfig } from '../../console/mosquitto.js';
import { Quarantine } from '../../console/quarantine.js';
import { Registry } from '../../console/registry.js';
import { ConsoleError, FleetConsole } from '../../console/service.js';
import { startConsoleWeb } from '../../console/web.js';
import type { RolloutReport } from '../../console/agent-update-rollout.js';
import { errorCodeOr } from '../../core/error-catalogue.js';
import { createLogger } from '../../core/log.js';
import { checkId } from '../../runtime/sync/protocol.js';
import { formatTable, percent, printJson, UsageError } from '../output.js';
import { runUntilSignal } from '../signals.js';

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
    const saved = readConsoleFile(file).fleet;
    if (typeof saved !== 'string' || saved === '') throw new ConsoleError('CONSOLE_BAD_DIR', `${file}: field "fleet" is missing`);
    if (flags.fleet && flags.fleet !== saved)
      throw new UsageError(`${flags.dir} is the console of fleet "${saved}", not "${flags.fleet}" (use another --dir for another fleet)`);
    return saved;
  }
  const fleet = flags.fleet ?? 'fleet';
  checkId('fleet', fleet);
  mkdirSync(flags.dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ fleet }, null, 2)}\n`);
  return fleet;
}

/** A small JSON file of the console folder; a damaged one is an error naming it. */
function readConsoleFile(file: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (err) {
    throw new ConsoleError('CONSOLE_BAD_DIR', `${file}: not JSON (${(err as Error).message})`);
  }
  throw new ConsoleError('CONSOLE_BAD_DIR', `${file}: not a JSON object`);
}

function withDir(command: Command): Command {
  return command
    .option('--dir <dir>', 'the console folder: registry, credentials, fleet key', defaultDir())
    .option('--fleet <id>', 'fleet id, chosen on first run (default "fleet")');
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
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune console start --fleet farm --canary pi-1 pi-2\n  edgetune console start --broker-url mqtt://127.0.0.1:1883 --broker-user console --broker-password-file ~/.console-pass',
    )
    .action(async (flags: StartFlags) => {
      const fleet = consoleFleet(flags);
      if (flags.brokerUrl && !(flags.brokerUser && flags.brokerPasswordFile))
        throw new UsageError('--broker-url needs --broker-user and --broker-password-file');
      const log = createLogger(flags.logLevel);
      const running = await FleetConsole.start({
        dir: flags.dir,
        fleet,
        broker: { host: flags.host, port: flags.port },
        ...(flags.brokerUrl
          ? {
              externalBroker: {
                url: flags.brokerUrl,
                username: flags.brokerUser!,
                password: readFileSync(flags.brokerPasswordFile!, 'utf8').trim(),
                protocolVersion: 5,
              },
            }
          : {}),
        canaries: flags.canary,
        rollbackTolerance: flags.tolerance,
        log,
      });
      const web = flags.web
        ? await startConsoleWeb(running, { host: flags.webHost, port: flags.webPort, tokenFile: join(flags.dir, 'web-token'), log })
        : undefined;
      if (web) {
        log.info('web console', { url: web.url });
        // Where the other verbs (push-update) find the running console.
        writeFileSync(join(flags.dir, 'web.json'), `${JSON.stringify({ origin: web.origin, pid: process.pid })}\n`);
      }
      await runUntilSignal(async () => {
        log.info('console stopping');
        rmSync(join(flags.dir, 'web.json'), { force: true });
        await web?.close();
        await running.stop();
      });
    });

  withDir(console_.command('add-device <id>'))
    .description("issue a device's broker login (again: a new password) and print the agent's fleet config")
    .option('--url <url>', 'the broker URL devices use', `mqtt://${hostname()}:1883`)
    .option('--public-key-file <path>', 'where the fleet public key will be on the device', '/etc/edgetune/fleet.pub')
    .option('--json', 'print JSON (device, password, fleet config, public key PEM)')
    .addHelpText(
      'after',
      '\nExample:\n  edgetune console add-device pi-kitchen --url mqtt://console.local:1883 >> /etc/edgetune/agent.yaml',
    )
    .action((id: string, flags: DirFlags & { url: string; publicKeyFile: string; json?: boolean }) => {
      checkId('device', id);
      const fleet = consoleFleet(flags);
      const pub = join(flags.dir, 'fleet.pub');
      if (!existsSync(pub))
        throw new ConsoleError(
          'CONSOLE_NOT_STARTED',
          `${pub} does not exist: run "edgetune console start" once first (it creates the fleet key)`,
        );
      const registry = new Registry(join(flags.dir, 'registry.db'));
      const credentials = new DeviceCredentials(join(flags.dir, 'registry.db'));
      try {
        const password = credentials.issue(id);
        registry.forgetKey(id);
        const config = { fleet: { url: flags.url, id: fleet, username: id, password, publicKeyFile: flags.publicKeyFile } };
        if (flags.json) return printJson({ device: id, password, ...config, publicKey: readFileSync(pub, 'utf8') });
        process.stdout.write(
          `# edgetune agent config for ${id}; copy ${pub} to ${flags.publicKeyFile} on the device\n${YAML.stringify(config)}`,
        );
      } finally {
        registry.close();
        credentials.close();
      }
    });

  withDir(console_.command('push-update <bundle>'))
    .description('push an agent bundle to the fleet over MQTT through the running console: canaries first, then everyone')
    .option('--canary <device...>', "devices that take it first (default: the console's canaries)")
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  edgetune deploy bundle --target linux-arm64 -o dist/ && edgetune console push-update dist/edgetune-0.2.0-linux-arm64.tar.gz --canary pi-1',
    )
    .action(async (bundle: string, flags: DirFlags & { canary?: string[]; json?: boolean }) => {
      consoleFleet(flags);
      const where = join(flags.dir, 'web.json');
      if (!existsSync(where))
        throw new ConsoleError(
          'CONSOLE_NOT_RUNNING',
          `${where} does not exist: start the console with its web API (edgetune console start) first`,
        );
      const { origin } = readConsoleFile(where);
      if (typeof origin !== 'string') throw new ConsoleError('CONSOLE_BAD_DIR', `${where}: field "origin" is missing`);
      const token = readFileSync(join(flags.dir, 'web-token'), 'utf8').trim();
      if (!flags.json) process.stderr.write(`pushing ${bundle} through ${origin} (canaries first; this waits for the devices)\n`);
      const response = await fetch(new URL('/api/agent-update', origin), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ bundle: resolve(bundle), ...(flags.canary ? { canaries: flags.canary } : {}) }),
      });
      const body = (await response.json()) as RolloutReport & { error?: string; code?: string };
      if (!response.ok) throw new ConsoleError(errorCodeOr(body.code, 'CONSOLE_REFUSED'), body.error ?? `HTTP ${response.status}`);
      if (flags.json) printJson(body);
      else {
        process.stdout.write(
          `${formatTable(
            ['device', 'release', 'updated', 'status', 'error'],
            body.devices.map((d) => [d.device, d.release ?? '-', d.updated ? 'yes' : 'no', d.status ?? '-', d.error ?? '']),
          )}\n`,
        );
        process.stdout.write(`agent ${body.update.version}: ${body.ok ? 'every device updated' : `stopped at the ${body.stage} stage`}\n`);
      }
      if (!body.ok) process.exitCode = 1;
    });

  withDir(console_.command('mosquitto-config'))
    .description("write mosquitto's config, password file and ACL for this fleet (again after add-device; then SIGHUP mosquitto)")
    .requiredOption('--out <dir>', 'where mosquitto.conf, passwords and acl go')
    .option('--port <port>', 'the port mosquitto listens on', (v) => Number(v), 1883)
    .option('--host <addr>', 'the address mosquitto listens on', '0.0.0.0')
    .requiredOption('--broker-user <name>', "the console's own login on mosquitto (keep it secret, like its password)")
    .requiredOption('--broker-password-file <file>', "file holding the console's password on mosquitto")
    .option('--user <name>', 'the user mosquitto drops to when started as root')
    .addHelpText(
      'after',
      '\nExample:\n  edgetune console mosquitto-config --out /etc/mosquitto/edgetune --broker-user console-7f3 --broker-password-file ~/.console-pass\n  mosquitto -c /etc/mosquitto/edgetune/mosquitto.conf',
    )
    .action(
      (flags: DirFlags & { out: string; port: number; host: string; brokerUser: string; brokerPasswordFile: string; user?: string }) => {
        const fleet = consoleFleet(flags);
        const credentials = new DeviceCredentials(join(flags.dir, 'registry.db'));
        try {
          const files = writeMosquittoConfig(resolve(flags.out), {
            fleet,
            host: flags.host,
            port: flags.port,
            credentials,
            console: { username: flags.brokerUser, password: readFileSync(flags.brokerPasswordFile, 'utf8').trim() },
            ...(flags.user ? { user: flags.user } : {}),
          });
          process.stdout.write(`wrote ${files.config}, ${files.passwords} (0600) and ${files.acl} (0600)\n`);
        } finally {
          credentials.close();
        }
      },
    );

  withDir(console_.command('quarantine'))
    .description('list the devices whose heads are refused after repeated bad heads')
    .option('--json', 'print JSON')
    .action((flags: DirFlags & { json?: boolean }) => {
      consoleFleet(flags);
      const quarantine = new Quarantine(join(flags.dir, 'registry.db'));
      try {
        const list = quarantine.list();
        if (flags.json) return printJson(list);
        const rows = list.map((q) => [q.device, new Date(q.since).toISOString().replace('T', ' ').slice(0, 19), q.reason]);
        process.stdout.write(`${formatTable(['device', 'since (UTC)', 'reason'], rows)}\n`);
      } finally {
        quarantine.close();
      }
    });

  withDir(console_.command('release <device>'))
    .description('trust a quarantined device again: its next heads are checked and merged as before')
    .action((device: string, flags: DirFlags) => {
      checkId('device', device);
      consoleFleet(flags);
      const quarantine = new Quarantine(join(flags.dir, 'registry.db'));
      try {
        if (!quarantine.release(device)) throw new ConsoleError('CONSOLE_NOT_QUARANTINED', `device "${device}" is not quarantined`);
        process.stdout.write(`${device} released from quarantine\n`);
      } finally {
        quarantine.close();
      }
    });

  for (const [verb, decision] of [
    ['accept-class', 'accepted'],
    ['refuse-class', 'refused'],
  ] as const) {
    withDir(console_.command(`${verb} <label>`))
      .description(
        decision === 'accepted'
          ? 'let a class that devices have into the fleet head (at the next merge)'
          : 'keep a class out of the fleet head, whatever devices have it',
      )
      .action((label: string, flags: DirFlags) => {
        consoleFleet(flags);
        const classes = new FleetClasses(join(flags.dir, 'registry.db'));
        try {
          classes.decide(label, decision);
          process.stdout.write(`class "${label}" ${decision}; it takes effect at the next merge\n`);
        } finally {
          classes.close();
        }
      });
  }

  withDir(console_.command('classes'))
    .description("the operator's decisions on classes (the running console's page and /api/classes also show pending ones)")
    .option('--json', 'print JSON')
    .action((flags: DirFlags & { json?: boolean }) => {
      consoleFleet(flags);
      const classes = new FleetClasses(join(flags.dir, 'registry.db'));
      try {
        const decisions = [...classes.decisions()].map(([label, decision]) => ({ label, decision }));
        if (flags.json) return printJson(decisions);
        process.stdout.write(
          `${formatTable(
            ['class', 'decision'],
            decisions.map((d) => [d.label, d.decision]),
          )}\n`,
        );
      } finally {
        classes.close();
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
        process.stdout.write(
          `${formatTable(['device', 'state', 'last seen (UTC)', 'backbone', 'head', 'fleet', 'samples per class', 'holdout'], rows)}\n`,
        );
      } finally {
        registry.close();
      }
    });
}
