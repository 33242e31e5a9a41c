// `edgetune deploy`: device bundles, flashing devices over SSH, SD-card first boot.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { buildBundle } from '../../deploy/bundle/build.js';
import { type BundleTarget, TARGETS } from '../../deploy/bundle/targets.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { type FleetProvisioning, type FlashProgress, flash } from '../../deploy/flash/flash.js';
import { type HostEntry, type InventoryError, parseHost, parseSize, readInventory } from '../../deploy/flash/inventory.js';
import { writeSdcard } from '../../deploy/sdcard/sdcard.js';
import { DeployError } from '../../core/errors.js';
import { port, positiveInt, positiveNumber } from '../number-options.js';
import { UsageError, formatTable, printJson } from '../output.js';
import { boardIds } from '../../devices/boards.js';
import { tryBundle } from '../../deploy/try/try.js';
import { defaultCacheDir } from '../../runtime/models/resolve.js';

export function registerDeploy(program: Command): void {
  const deploy = program
    .command('deploy')
    .description('put the agent on devices: bundles, SSH provisioning, SD-card first boot')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune deploy bundle --target linux-arm64 -o dist/\n  edgetune deploy flash pi@greenhouse-01.local --bundle dist/edgetune-0.1.0-linux-arm64.tar.gz',
    );

  deploy
    .command('bundle')
    .description('build a device bundle: the agent, native modules for the target, the backbone, systemd unit, install script')
    .requiredOption('--target <platform>', `${TARGETS.join(' or ')}`)
    .option('-o, --out <dir>', 'output folder', '.')
    .option('--release <version>', "release version (default: this edgetune's version)")
    .option('-m, --model <ref>', 'backbone: catalog id or model file (default: the default backbone)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune deploy bundle --target linux-arm64 -o dist/\n  edgetune deploy bundle --target linux-x64 --release 0.2.0-rc1 --json',
    )
    .action(async (flags: { target: string; out: string; release?: string; model?: string; json?: boolean }) => {
      if (!TARGETS.includes(flags.target as BundleTarget))
        throw new UsageError(`--target: "${flags.target}" is not one of ${TARGETS.join(', ')}`);
      const bundle = await buildBundle({
        target: flags.target as BundleTarget,
        outDir: flags.out,
        ...(flags.release ? { version: flags.release } : {}),
        ...(flags.model ? { backbone: flags.model } : {}),
        log: (msg) => process.stderr.write(`${msg}\n`),
      });
      if (flags.json) return printJson(bundle);
      process.stdout.write(
        `${bundle.file}\n  ${(bundle.bytes / 2 ** 20).toFixed(1)} MB (${(bundle.manifest.unpackedBytes / 2 ** 20).toFixed(1)} MB unpacked, ${bundle.manifest.files} files), sha256 ${bundle.sha256}\n`,
      );
    });

  deploy
    .command('flash')
    .description('install a bundle on devices over SSH: preflight, upload, install, credentials, health check, rollback')
    .argument('[hosts...]', '[user@]host[:port] [key=value...] (or --inventory)')
    .requiredOption('--bundle <file>', 'the bundle (edgetune deploy bundle)')
    .option('--inventory <file>', 'one device a line: [user@]host[:port] id=... (see docs/deploy.md)')
    .option('-u, --user <name>', 'SSH user for hosts that name none', 'pi')
    .option('-i, --identity <file>', 'SSH private key (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa, or the SSH agent)')
    .option('--known-hosts <file>', 'host keys to check against', join(homedir(), '.ssh', 'known_hosts'))
    .option('--trust-on-first-use', "add an unknown host's key to known_hosts instead of refusing it")
    .option('--root <dir>', 'install prefix on the devices', '/')
    .option('--service <manager>', 'systemd, or process where there is no systemd', 'systemd')
    .option('--http-port <n>', "the agent's HTTP port (health check)", port('--http-port'), 8080)
    .option('--min-free <size>', 'disk space to leave free after install', '100M')
    .option('--sudo <when>', 'run as root through sudo: auto (a login that is not root and cannot write the prefix), yes, no', 'auto')
    .option('--concurrency <n>', 'devices at once', positiveInt('--concurrency'), 4)
    .option('--health-timeout <s>', 'seconds for the agent to become healthy', positiveNumber('--health-timeout', 'seconds'), 90)
    .option('--console <dir>', "join the fleet of the console in this folder (its registry issues each device's MQTT login)")
    .option('--fleet <id>', 'fleet id (with --console)')
    .option('--broker <url>', 'the broker as devices reach it (with --console)')
    .option(
      '--console-user <name>',
      "the console's broker login, to see each device's first state message (password: EDGETUNE_CONSOLE_PASSWORD)",
    )
    .option('--rotate-credentials', 'issue new MQTT passwords even to devices that have one')
    .option('--json', 'print the results as JSON')
    .addHelpText(
      'after',
      `
Examples:
  edgetune deploy flash pi@192.168.1.21 pi@192.168.1.22 --bundle edgetune-0.1.0-linux-arm64.tar.gz
  edgetune deploy flash --inventory fleet.txt --bundle edgetune-0.1.0-linux-arm64.tar.gz \\
      --console ./console --fleet greenhouse --broker mqtt://console.local:1883 --trust-on-first-use

Exit code 1 when any device failed; the summary names each one's error. Re-running is safe.`,
    )
    .action(async (hostArgs: string[], flags: FlashFlags) => {
      const { hosts, invalid } = collectHosts(hostArgs, flags);
      if (hosts.length + invalid.length === 0) throw new UsageError('no devices: give hosts or --inventory FILE');
      const fleet = fleetOptions(flags);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      const view = progressView(hosts, Boolean(flags.json));
      try {
        const results = await flash({
          bundle: resolve(flags.bundle),
          hosts,
          invalid,
          hostKeys: { knownHostsFile: flags.knownHosts, trustOnFirstUse: Boolean(flags.trustOnFirstUse) },
          ...(flags.identity ? { privateKey: readFileSync(flags.identity) } : {}),
          ...fleet,
          concurrency: flags.concurrency,
          root: flags.root,
          service: flags.service === 'process' ? 'process' : 'systemd',
          httpPort: flags.httpPort,
          minFreeBytes: parseSize(flags.minFree),
          sudo: flags.sudo === 'yes' || flags.sudo === 'no' ? flags.sudo : 'auto',
          healthTimeoutMs: flags.healthTimeout * 1000,
          rotateCredentials: Boolean(flags.rotateCredentials),
          signal: controller.signal,
          onProgress: view.update,
        });
        view.stop();
        if (flags.json) printJson(results);
        else {
          const rows = results.map((r) => [
            r.device || '-',
            r.host,
            r.ok ? r.status : `FAILED (${r.code})`,
            r.version,
            r.previous ?? '-',
            r.seconds.toFixed(1),
            r.ok ? (r.resumedFrom ? `upload resumed at ${r.resumedFrom} bytes` : '') : `${r.rolledBack ? '[rolled back] ' : ''}${r.error}`,
          ]);
          process.stdout.write(`${formatTable(['device', 'host', 'result', 'release', 'was', 'seconds', 'detail'], rows)}\n`);
          const failed = results.filter((r) => !r.ok).length;
          process.stdout.write(
            `${results.length - failed} of ${results.length} devices on ${results[0]?.version ?? '?'}${failed ? `, ${failed} failed` : ''}\n`,
          );
        }
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      } finally {
        view.stop();
        process.off('SIGINT', onSignal);
      }
    });
  registerSdcard(deploy);
  registerTry(deploy);
}

function registerTry(deploy: Command): void {
  deploy
    .command('try')
    .description("run a bundle's own edgetune here, under qemu-user for another CPU, seeing a chosen board's /proc files")
    .argument('<bundle>', 'the bundle (edgetune deploy bundle)')
    .argument('[args...]', 'edgetune arguments for the bundle, after --')
    .option('--board <id>', `board to present: ${boardIds().join(', ')} (default: rpi-4 for arm64, rpi-3 for armv7)`)
    .option('--cache-dir <dir>', 'where unpacked bundles are kept (default $XDG_CACHE_HOME/edgetune/try)')
    .addHelpText(
      'after',
      `
Needs root (a private mount namespace), qemu-user-static and the target's loader libraries
(libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross libatomic1-arm64-cross, or the armhf ones).

Examples:
  edgetune deploy try edgetune-0.1.0-linux-arm64.tar.gz --board rpi-4 -- device info
  edgetune deploy try edgetune-0.1.0-linux-armv7.tar.gz --board rpi-zero-2w -- embed --json photo.jpg
  edgetune deploy try edgetune-0.1.0-linux-arm64.tar.gz -- agent --config agent.json`,
    )
    .action(async (bundle: string, args: string[], flags: { board?: string; cacheDir?: string }) => {
      if (args.length === 0)
        throw new UsageError('deploy try needs edgetune arguments for the bundle after --, for example -- device info');
      process.exitCode = await tryBundle({
        bundle: resolve(bundle),
        args,
        cacheDir: flags.cacheDir ?? join(defaultCacheDir(), 'try'),
        ...(flags.board ? { board: flags.board } : {}),
      });
    });
}

function registerSdcard(deploy: Command): void {
  deploy
    .command('sdcard')
    .description('write first-boot files to a Raspberry Pi OS boot partition: the bundle installs and joins the fleet on first boot')
    .requiredOption('--boot <path>', 'the mounted boot partition (bootfs)')
    .requiredOption('--bundle <file>', 'a linux-arm64 bundle (edgetune deploy bundle)')
    .requiredOption('--device <id>', "this card's device id (also its host name)")
    .option('--mode <mode>', 'cloud-init (Raspberry Pi OS Trixie) or firstrun (Bookworm: systemd.run in cmdline.txt)', 'cloud-init')
    .option('--http-port <n>', "the agent's HTTP port", port('--http-port'), 8080)
    .option('--console <dir>', "join the fleet of the console in this folder (issues the device's MQTT login now)")
    .option('--fleet <id>', 'fleet id (with --console)')
    .option('--broker <url>', 'the broker as the device reaches it (with --console)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  edgetune deploy sdcard --boot /media/$USER/bootfs --bundle edgetune-0.1.0-linux-arm64.tar.gz --device greenhouse-01 \\\n      --console ./console --fleet greenhouse --broker mqtt://console.local:1883',
    )
    .action(
      (flags: {
        boot: string;
        bundle: string;
        device: string;
        mode: string;
        httpPort: number;
        console?: string;
        fleet?: string;
        broker?: string;
        json?: boolean;
      }) => {
        if (flags.mode !== 'cloud-init' && flags.mode !== 'firstrun')
          throw new UsageError(`--mode: "${flags.mode}" is not cloud-init or firstrun`);
        const result = writeSdcard({
          boot: flags.boot,
          bundle: flags.bundle,
          device: flags.device,
          mode: flags.mode,
          httpPort: flags.httpPort,
          ...fleetOptions(flags),
        });
        if (flags.json) return printJson(result);
        const hostname = `host name ${result.hostname.set}${result.hostname.replaced ? ` (was ${result.hostname.replaced} in user-data)` : ''}`;
        process.stdout.write(
          `${flags.boot}: ${result.device} installs edgetune ${result.version} on first boot (${result.mode}), ${hostname}\n${result.files.map((f) => `  ${f}`).join('\n')}\n`,
        );
      },
    );
}

interface FlashFlags {
  bundle: string;
  inventory?: string;
  user: string;
  identity?: string;
  knownHosts: string;
  trustOnFirstUse?: boolean;
  root: string;
  service: string;
  httpPort: number;
  minFree: string;
  sudo: string;
  concurrency: number;
  healthTimeout: number;
  console?: string;
  fleet?: string;
  broker?: string;
  consoleUser?: string;
  rotateCredentials?: boolean;
  json?: boolean;
}

function collectHosts(args: string[], flags: FlashFlags): { hosts: HostEntry[]; invalid: InventoryError[] } {
  const hosts: HostEntry[] = [];
  const invalid: InventoryError[] = [];
  if (flags.inventory) {
    const inventory = readInventory(flags.inventory, { username: flags.user });
    hosts.push(...inventory.hosts);
    invalid.push(...inventory.errors);
  }
  for (const arg of args) {
    try {
      hosts.push(parseHost(arg, { username: flags.user }));
    } catch (err) {
      // A host on the command line is a usage error (exit 2); a bad line of an inventory file is the data's.
      throw new UsageError(`host "${arg}": ${(err as Error).message}`);
    }
  }
  return { hosts, invalid };
}

function fleetOptions(flags: { console?: string; fleet?: string; broker?: string; consoleUser?: string }): { fleet?: FleetProvisioning } {
  if (!flags.console) return {};
  if (!flags.fleet || !flags.broker) throw new UsageError('--console needs --fleet and --broker (the broker URL devices connect to)');
  const password = process.env.EDGETUNE_CONSOLE_PASSWORD;
  if (flags.consoleUser && !password) throw new UsageError('--console-user needs the password in EDGETUNE_CONSOLE_PASSWORD');
  const dir = resolve(flags.console);
  let publicKeyPem: string;
  try {
    publicKeyPem = readFileSync(join(dir, 'fleet.pub'), 'utf8');
  } catch {
    throw new DeployError(
      'DEPLOY_NO_CONSOLE',
      `${dir}/fleet.pub: not found; start the console once in that folder to create the fleet key`,
    );
  }
  const credentials = new DeviceCredentials(join(dir, 'registry.db'));
  return {
    fleet: {
      fleet: flags.fleet,
      brokerUrl: flags.broker,
      publicKeyPem,
      issueCredentials: (device) => credentials.issue(device),
      ...(flags.consoleUser && password ? { watch: { url: flags.broker, username: flags.consoleUser, password } } : {}),
    },
  };
}

/** One live bar a device on a terminal; a line a phase in logs; nothing with --json unless a terminal. */
function progressView(hosts: HostEntry[], json: boolean): { update: (e: FlashProgress) => void; stop: () => void } {
  if (json && !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const multi = new cliProgress.MultiBar(
      { stream: process.stderr, format: '{device} [{bar}] {percentage}% {phase}', hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    const width = Math.max(...hosts.map((h) => h.id.length), 6);
    const bars = new Map(hosts.map((h) => [h.name, multi.create(1, 0, { device: h.id.padEnd(width), phase: 'waiting' })]));
    let stopped = false;
    return {
      update: (e) => {
        const bar = bars.get(e.host);
        if (!bar || stopped) return;
        if (e.phase === 'upload' && e.total) bar.setTotal(e.total);
        const value =
          e.phase === 'upload'
            ? (e.sent ?? 0)
            : e.phase === 'done' || e.phase === 'failed'
              ? bar.getTotal()
              : bar.getProgress() * bar.getTotal();
        bar.update(value, { phase: e.phase === 'failed' ? `FAILED ${e.detail?.slice(0, 60) ?? ''}` : e.phase });
      },
      stop: () => {
        if (!stopped) multi.stop();
        stopped = true;
      },
    };
  }
  const lastPercent = new Map<string, number>();
  return {
    update: (e) => {
      if (e.phase === 'upload' && e.total) {
        const percent = Math.floor(((e.sent ?? 0) / e.total) * 4) * 25;
        if (lastPercent.get(e.host) === percent) return;
        lastPercent.set(e.host, percent);
        process.stderr.write(`${e.device}: upload ${percent}%\n`);
      } else process.stderr.write(`${e.device}: ${e.phase}${e.detail ? ` ${e.detail}` : ''}\n`);
    },
    stop: () => {},
  };
}
