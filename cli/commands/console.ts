// `edgetune console`: the fleet console (broker, registry, merges, rollouts, web UI), and the admin verbs
// that work on its folder while it runs: add-device, devices.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { DeviceCredentials } from '../../console/credentials.js';
import { deviceViews } from '../../console/device-view.js';
import { SettingError, settingsToValues, splitSetting } from '../../console/config-settings.js';
import { FleetClasses } from '../../console/fleet-classes.js';
import { writeMosquittoConfig } from '../../console/mosquitto.js';
import { Quarantine } from '../../console/quarantine.js';
import { Registry } from '../../console/registry.js';
import { ConsoleError, FleetConsole, openFleetKey } from '../../console/service.js';
import { startConsoleWeb } from '../../console/web.js';
import type { RolloutProgress } from '../../console/rollout-progress.js';
import type { MergeJson } from '../../console/api-types.js';
import { consoleApi, followRollout } from './console-api.js';
import { deviceSamples, sampleFileName } from '../../console/exports.js';
import { writeDurably } from '../../core/durable.js';
import { createLogger } from '../../core/log.js';
import { checkId } from '../../runtime/sync/protocol.js';
import { port, positiveInt, positiveNumber } from '../number-options.js';
import { formatTable, percent, printJson, UsageError } from '../output.js';
import { runUntilSignal } from '../signals.js';

interface DirFlags {
  dir: string;
  fleet?: string;
}

function defaultDir(): string {
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'edgetune', 'console');
}

/** The fleet id is chosen once, on the console's first run, and kept in its folder. Only the verbs that
 * may come first (start, add-device, mosquitto-config, accept-class, refuse-class) make the folder;
 * the others read a console that is there, and a missing one is an error naming it. */
export function consoleFleet(flags: DirFlags, folder: 'create' | 'existing' = 'existing'): string {
  const file = join(flags.dir, 'console.json');
  if (folder === 'existing' && !existsSync(file))
    throw new ConsoleError(
      'CONSOLE_NO_DIR',
      `${flags.dir}: ${existsSync(flags.dir) ? 'not a console folder (no console.json)' : 'no such folder'}; start the console there first (edgetune console start --dir ${flags.dir}) or give the --dir of one`,
    );
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

/** The canaries of the last `console start`, kept in console.json so that `console devices` marks them. */
function saveCanaries(dir: string, canaries: string[]): void {
  const file = join(dir, 'console.json');
  writeFileSync(file, `${JSON.stringify({ ...readConsoleFile(file), canaries }, null, 2)}\n`);
}

function savedCanaries(dir: string): string[] {
  const file = join(dir, 'console.json');
  const canaries = existsSync(file) ? readConsoleFile(file).canaries : undefined;
  return Array.isArray(canaries) ? canaries.filter((c): c is string => typeof c === 'string') : [];
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

function mergePolicyFlags(flags: { mergeAfterHeads?: number; mergeEvery?: number }): { afterHeads?: number; everyMs?: number } {
  return {
    ...(flags.mergeAfterHeads === undefined ? {} : { afterHeads: flags.mergeAfterHeads }),
    ...(flags.mergeEvery === undefined ? {} : { everyMs: Math.round(flags.mergeEvery * 60_000) }),
  };
}

interface StartFlags extends DirFlags {
  mergeAfterHeads?: number;
  mergeEvery?: number;
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
Examples:
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
    .option('--port <port>', 'embedded broker port', port('--port', true), 1883)
    .option('--broker-url <url>', 'use this broker instead of the embedded one (e.g. mqtt://mosquitto:1883)')
    .option('--broker-user <name>', 'console login on the external broker')
    .option('--broker-password-file <file>', 'file holding the console password on the external broker')
    .option('--canary <device...>', 'devices that try every fleet head first', [])
    .option('--tolerance <x>', 'roll back when a canary loses more holdout accuracy than this', Number, 0.02)
    .option(
      '--merge-after-heads <n>',
      'merge and roll out on its own once this many new device heads arrived',
      positiveInt('--merge-after-heads'),
    )
    .option(
      '--merge-every <minutes>',
      'merge and roll out on its own this often, when there are new device heads',
      positiveNumber('--merge-every', 'minutes'),
    )
    .option('--web-host <addr>', 'web console address (keep it on loopback; use an SSH tunnel or a TLS proxy)', '127.0.0.1')
    .option('--web-port <port>', 'web console port', port('--web-port', true), 8090)
    .option('--no-web', 'no web console')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune console start --fleet farm --canary pi-1 pi-2\n  edgetune console start --broker-url mqtt://127.0.0.1:1883 --broker-user console --broker-password-file ~/.console-pass',
    )
    .action(async (flags: StartFlags) => {
      const fleet = consoleFleet(flags, 'create');
      saveCanaries(flags.dir, flags.canary);
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
        mergePolicy: mergePolicyFlags(flags),
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
      const fleet = consoleFleet(flags, 'create');
      // The first add-device may come before the first start: the fleet key is made here then.
      openFleetKey(flags.dir);
      const pub = join(flags.dir, 'fleet.pub');
      const registry = new Registry(join(flags.dir, 'registry.db'));
      const credentials = new DeviceCredentials(join(flags.dir, 'registry.db'));
      try {
        const password = credentials.issue(id);
        registry.forgetKey(id);
        // The device id is bound to the login: the broker lets a device write only under its own id.
        const config = {
          device: { id },
          fleet: { url: flags.url, id: fleet, username: id, password, publicKeyFile: flags.publicKeyFile },
        };
        if (flags.json) return printJson({ device: id, password, fleet: config.fleet, config, publicKey: readFileSync(pub, 'utf8') });
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
    .option('--tag <tag>', 'only the devices with this tag')
    .option('--stage-timeout <seconds>', 'how long each stage may take', positiveNumber('--stage-timeout', 'seconds'), 600)
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  edgetune deploy bundle --target linux-arm64 -o dist/ && edgetune console push-update dist/edgetune-0.2.0-linux-arm64.tar.gz --canary pi-1',
    )
    .action(async (bundle: string, flags: DirFlags & { canary?: string[]; tag?: string; stageTimeout: number; json?: boolean }) => {
      consoleFleet(flags);
      const api = consoleApi(flags.dir, readConsoleFile);
      const { body } = await api.call<{ progress: RolloutProgress }>('POST', '/api/agent-update', {
        bundle: resolve(bundle),
        wait: false,
        stageTimeoutMs: Math.round(flags.stageTimeout * 1000),
        ...(flags.canary ? { canaries: flags.canary } : {}),
        ...(flags.tag ? { tag: flags.tag } : {}),
      });
      if (!flags.json) process.stderr.write(`pushing ${body.progress.subject} through ${api.origin}\n`);
      const done = await followRollout(api, body.progress.id, (line) => {
        if (!flags.json) process.stderr.write(`${line}\n`);
      });
      if (flags.json) printJson(done);
      else {
        const last = new Map<string, { status: string; detail: string | null; stage: string }>();
        for (const stage of done.stages) for (const d of stage.devices) last.set(d.device, { ...d, stage: stage.name });
        process.stdout.write(
          `${formatTable(
            ['device', 'stage', 'status', 'detail'],
            [
              ...[...last].map(([device, d]) => [device, d.stage, d.status, d.detail ?? '']),
              ...done.unable.map((u) => [u.device, '-', 'cannot take it', u.reason]),
            ],
          )}\n`,
        );
        for (const stage of done.stages) process.stdout.write(`${stage.summary}\n`);
        process.stdout.write(`${done.summary}\n`);
      }
      if (!done.ok) process.exitCode = 1;
    });

  withDir(console_.command('merge'))
    .description("merge the devices' newest heads into a fleet head and roll it out through the running console: canaries first")
    .option('--canary <device...>', "devices that judge it first (default: the console's canaries, or some it picks)")
    .option('--tag <tag>', 'only the devices with this tag get it (the retained fleet head every device takes stays as it was)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  edgetune console merge\n  edgetune console merge --tag north --canary pi-3')
    .action(async (flags: DirFlags & { canary?: string[]; tag?: string; json?: boolean }) => {
      consoleFleet(flags);
      const api = consoleApi(flags.dir, readConsoleFile);
      const { body } = await api.call<MergeJson & { summaries?: string[] }>('POST', '/api/merge', {
        ...(flags.canary ? { canaries: flags.canary } : {}),
        ...(flags.tag ? { tag: flags.tag } : {}),
      });
      if (flags.json) return printJson(body);
      process.stdout.write(
        `fleet head v${body.version} from ${body.merged.join(', ')}: ${body.status}${body.reason ? ` (${body.reason})` : ''}\n`,
      );
      for (const line of body.summaries ?? []) process.stdout.write(`${line}\n`);
      if (body.status === 'rolled-back') process.exitCode = 1;
    });

  withDir(console_.command('export-head'))
    .description('download a head from the running console as a file edgetune predict --head reads')
    .option('--device <id>', "a device's head (its newest, or --version)")
    .option('--version <n>', 'the head version of the device', positiveInt('--version'))
    .option('--fleet-version <n>', 'a fleet head the console made', positiveInt('--fleet-version'))
    .requiredOption('-o, --out <file>', 'where to write it')
    .option('--json', 'print JSON (file, bytes)')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune console export-head --fleet-version 7 -o fleet-v7.head\n  edgetune console export-head --device pi-1 -o pi-1.head',
    )
    .action(async (flags: DirFlags & { device?: string; version?: number; fleetVersion?: number; out: string; json?: boolean }) => {
      consoleFleet(flags);
      if ((flags.device === undefined) === (flags.fleetVersion === undefined))
        throw new UsageError('give either --device or --fleet-version');
      const api = consoleApi(flags.dir, readConsoleFile);
      const path =
        flags.device !== undefined
          ? `/api/heads/device/${encodeURIComponent(flags.device)}${flags.version === undefined ? '' : `?version=${flags.version}`}`
          : `/api/heads/fleet/${flags.fleetVersion}`;
      const bytes = await api.download(path);
      writeDurably(resolve(flags.out), bytes);
      if (flags.json) return printJson({ file: resolve(flags.out), bytes: bytes.length });
      process.stdout.write(`${flags.out}: ${bytes.length} bytes\n`);
    });

  withDir(console_.command('export-samples <device>'))
    .description("fetch a device's labelled photos through the running console into a class-per-folder dataset (edgetune eval reads it)")
    .requiredOption('-o, --out <dir>', 'the dataset folder: <dir>/<label>/<id>.jpg')
    .option('--json', 'print JSON (device, folder, photos, photos per class)')
    .addHelpText('after', '\nExample:\n  edgetune console export-samples pi-1 -o ~/datasets/pi-1 && edgetune eval ~/datasets/pi-1')
    .action(async (device: string, flags: DirFlags & { out: string; json?: boolean }) => {
      consoleFleet(flags);
      checkId('device', device);
      const api = consoleApi(flags.dir, readConsoleFile);
      const counts = new Map<string, number>();
      const samples = deviceSamples(
        async (args) =>
          (await api.call<Record<string, unknown>>('GET', `/api/devices/${device}/samples?offset=${String(args.offset)}`)).body,
      );
      for await (const s of samples) {
        const image = Buffer.from(s.image, 'base64');
        mkdirSync(join(flags.out, s.label), { recursive: true });
        writeDurably(join(flags.out, s.label, sampleFileName(s.id, image)), image);
        counts.set(s.label, (counts.get(s.label) ?? 0) + 1);
      }
      const perClass = [...counts].sort();
      const photos = [...counts.values()].reduce((a, b) => a + b, 0);
      if (flags.json) return printJson({ device, out: resolve(flags.out), photos, perClass: Object.fromEntries(perClass) });
      process.stdout.write(`${formatTable(['class', 'photos'], perClass)}\n`);
      process.stdout.write(`${photos} photos of ${device} in ${flags.out}\n`);
    });

  withDir(console_.command('config <scope> <settings...>'))
    .description(
      'set agent settings for the fleet, a tag or one device (scope fleet, tag:NAME, device:ID), shown as a diff per device, then pushed',
    )
    .option('--dry-run', 'only show what would change on each device')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      "\nSettings are FIELD=VALUE with the agent config's names (docs/agent.md); VALUE is JSON or a plain string.\nExamples:\n  edgetune console config fleet head.unknownThreshold=0.6 --dry-run\n  edgetune console config tag:north model.workers=2 queue.drop=newest",
    )
    .action(async (scope: string, settings: string[], flags: DirFlags & { dryRun?: boolean; json?: boolean }) => {
      consoleFleet(flags);
      let values: Record<string, unknown>;
      try {
        values = settingsToValues(settings.map(splitSetting));
      } catch (err) {
        if (err instanceof SettingError) throw new UsageError(err.message);
        throw err;
      }
      const api = consoleApi(flags.dir, readConsoleFile);
      const { body } = await api.call<{
        targets: {
          device: string;
          status: string;
          diff: { field: string; from: unknown; to: unknown }[];
          restartRequired?: string[];
          error?: string;
        }[];
      }>('POST', '/api/config', { scope, values, dryRun: flags.dryRun === true });
      if (flags.json) return printJson(body);
      const rows = body.targets.map((t) => [
        t.device,
        t.status,
        t.diff.map((c) => `${c.field}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join('; ') || '-',
        t.error ?? (t.restartRequired?.length ? `takes effect after a restart: ${t.restartRequired.join(', ')}` : ''),
      ]);
      process.stdout.write(`${formatTable(['device', 'status', 'changes', 'note'], rows)}\n`);
      if (body.targets.some((t) => t.status === 'failed')) process.exitCode = 1;
    });

  withDir(console_.command('tag <device> [tags...]'))
    .description('set the tags (and groups) of a device, through the running console; no tags clears them')
    .option('--json', 'print JSON (device, tags)')
    .addHelpText('after', '\nExample:\n  edgetune console tag pi-1 north greenhouse-2')
    .action(async (device: string, tags: string[], flags: DirFlags & { json?: boolean }) => {
      consoleFleet(flags);
      const api = consoleApi(flags.dir, readConsoleFile);
      const { body } = await api.call<{ tags: string[] }>('POST', `/api/devices/${encodeURIComponent(device)}/tags`, { tags });
      if (flags.json) return printJson({ device, tags: body.tags });
      process.stdout.write(`${device}: ${body.tags.join(' ') || '(no tags)'}\n`);
    });

  withDir(console_.command('mosquitto-config'))
    .description("write mosquitto's config, password file and ACL for this fleet (again after add-device; then SIGHUP mosquitto)")
    .requiredOption('--out <dir>', 'where mosquitto.conf, passwords and acl go')
    .option('--port <port>', 'the port mosquitto listens on', port('--port'), 1883)
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
        const fleet = consoleFleet(flags, 'create');
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
    .addHelpText('after', '\nExample:\n  edgetune console quarantine --json')
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
    .addHelpText('after', '\nExample:\n  edgetune console release pi-3')
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
      .addHelpText('after', `\nExample:\n  edgetune console ${verb} tulip`)
      .action((label: string, flags: DirFlags) => {
        consoleFleet(flags, 'create');
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
    .addHelpText('after', '\nExample:\n  edgetune console classes --json')
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
    .addHelpText('after', '\nExample:\n  edgetune console devices --json')
    .action((flags: DirFlags & { json?: boolean }) => {
      consoleFleet(flags);
      const registry = new Registry(join(flags.dir, 'registry.db'));
      const credentials = new DeviceCredentials(join(flags.dir, 'registry.db'));
      try {
        const views = deviceViews(registry, savedCanaries(flags.dir), credentials.issued());
        if (flags.json) return printJson(views);
        const rows = views.map((d) => [
          d.id + (d.canary ? ' (canary)' : ''),
          d.status,
          d.lastSeen === null ? '-' : new Date(d.lastSeen).toISOString().replace('T', ' ').slice(0, 19),
          d.release ?? '-',
          d.update ? `${d.update.version} ${d.update.status}` : '-',
          d.backbone ?? '-',
          d.headVersion ?? '-',
          d.fleetVersion ?? '-',
          Object.entries(d.perClass)
            .map(([k, v]) => `${k}:${v}`)
            .join(' ') || '-',
          d.holdoutAccuracy === null ? '-' : percent(d.holdoutAccuracy),
        ]);
        process.stdout.write(
          `${formatTable(['device', 'state', 'last seen (UTC)', 'release', 'update', 'backbone', 'head', 'fleet', 'samples per class', 'holdout'], rows)}\n`,
        );
      } finally {
        registry.close();
        credentials.close();
      }
    });
}
