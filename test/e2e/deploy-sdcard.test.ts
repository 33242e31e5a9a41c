import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type BuiltBundle, buildBundle } from '../../deploy/bundle/build.js';
import { emulatorFor } from '../../deploy/try/emulator.js';
import { type RunningBroker, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { releaseLayout } from '../../runtime/release/layout.js';
import { localExec } from '../../runtime/release/local.js';
import { processManager } from '../../runtime/release/service.js';
import { loadOrCreateFleetKey, publicKeyPem } from '../../runtime/sync/signing.js';
import { runCli } from '../support/cli.js';
import { connectMqtt, freeLoopbackPort } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// `edgetune deploy sdcard` writes a boot partition; its first-boot script then runs for real against a
// temp folder as the device root (--prefix; the process service manager, no systemd here): the bundle
// installs, the agent starts from it and appears in the fleet with the login the console issued.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-sdcard-');
const consoleDir = join(tmp.path, 'console');
const consoleLogin = { username: 'console', password: 'console-secret-123' };
const states = new Map<string, Record<string, unknown>>();
const roots: string[] = [];
const clients: MqttClient[] = [];
let broker: RunningBroker;
let credentials: DeviceCredentials;
let bundle: BuiltBundle;

const CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait';

function bootPartition(name: string, userData?: string): string {
  const boot = join(tmp.path, name);
  mkdirSync(boot, { recursive: true });
  writeFileSync(join(boot, 'cmdline.txt'), `${CMDLINE}\n`);
  writeFileSync(join(boot, 'config.txt'), '[all]\narm_64bit=1\n');
  if (userData) writeFileSync(join(boot, 'user-data'), userData);
  return boot;
}

const firstBoot = (boot: string, root: string, env: NodeJS.ProcessEnv = process.env) =>
  promisify(execFile)('sh', [join(boot, 'edgetune/firstboot.sh'), '--prefix', root, '--service', 'process'], {
    timeout: env.EDGETUNE_EMULATOR ? 400_000 : 120_000,
    env,
  });

beforeAll(async () => {
  mkdirSync(consoleDir, { recursive: true });
  credentials = new DeviceCredentials(join(consoleDir, 'registry.db'));
  writeFileSync(join(consoleDir, 'fleet.pub'), publicKeyPem(loadOrCreateFleetKey(join(consoleDir, 'fleet.key')).publicKey));
  broker = await startBroker({ fleet: 'farm', port: 0, credentials, console: consoleLogin });
  const client = await connectMqtt(broker.url, consoleLogin.username, consoleLogin.password, 4, clients);
  client.on(
    'message',
    (topic, bytes: Buffer) => bytes.length && states.set(topic.split('/')[3]!, JSON.parse(bytes.toString()) as Record<string, unknown>),
  );
  await client.subscribeAsync('edgetune/farm/device/+/state', { qos: 1 });
  // This machine is the "Pi" of the first-boot run, so the card gets the bundle for its CPU.
  bundle = await buildBundle({ target: 'linux-x64', outDir: join(tmp.path, 'bundles') });
}, 120_000);

afterAll(async () => {
  for (const root of roots) await localExec.run(processManager.stop(releaseLayout(root)));
  for (const c of clients) c.end(true);
  await broker?.close();
  credentials?.close();
  tmp.remove();
}, 60_000);

describe('edgetune deploy sdcard', () => {
  it('cloud-init: adds its first-boot command to the user-data the Imager wrote, and first boot installs the bundle and joins the fleet', async () => {
    const imager =
      '#cloud-config\nhostname: greenhouse-01\nusers:\n  - name: pi\n    groups: users,adm,video\nruncmd:\n  - [ sed, -i, "s/^#NTP=/NTP=/", /etc/systemd/timesyncd.conf ]\n';
    const boot = bootPartition('bootfs', imager);
    const port = await freeLoopbackPort();
    const cli = await runCli([
      'deploy',
      'sdcard',
      '--boot',
      boot,
      '--bundle',
      bundle.file,
      '--device',
      'pi-sd',
      '--http-port',
      String(port),
      '--console',
      consoleDir,
      '--fleet',
      'farm',
      '--broker',
      broker.url,
      '--json',
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const userData = readFileSync(join(boot, 'user-data'), 'utf8');
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    expect(JSON.parse(cli.stdout).hostname).toEqual({ set: 'pi-sd', replaced: 'greenhouse-01' });
    expect(parseYaml(userData)).toEqual({
      hostname: 'pi-sd',
      users: [{ name: 'pi', groups: 'users,adm,video' }],
      runcmd: [
        ['sed', '-i', 's/^#NTP=/NTP=/', '/etc/systemd/timesyncd.conf'],
        ['sh', '/boot/firmware/edgetune/firstboot.sh'],
      ],
    });
    const config = JSON.parse(readFileSync(join(boot, 'edgetune/agent.json'), 'utf8'));
    expect(config.fleet).toMatchObject({ id: 'farm', username: 'pi-sd', url: broker.url });
    expect(await credentials.verify('pi-sd', config.fleet.password)).toBe(true);
    expect(readFileSync(join(boot, 'cmdline.txt'), 'utf8').trim()).toBe(CMDLINE);

    // First boot, as cloud-init's runcmd would run it (as root, on the device).
    const root = join(tmp.path, 'pi-sd-root');
    roots.push(root);
    // Asynchronously: the broker this device joins runs in this process.
    await firstBoot(boot, root);
    const layout = releaseLayout(root);
    expect(readFileSync(join(layout.current, 'manifest.json'), 'utf8')).toContain('"version": "0.1.0"');
    expect(statSync(layout.config).mode & 0o777).toBe(0o600);
    expect(statSync(layout.publicKey).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(layout.config, 'utf8'))).toMatchObject({
      data: { dir: `${root}/var/lib/edgetune` },
      release: { prefix: `${root}/`, service: 'process' },
    });
    expect(existsSync(join(boot, 'edgetune')), 'the password is gone from the FAT partition').toBe(false);
    expect(readFileSync(join(root, 'etc/hostname'), 'utf8')).toBe('pi-sd\n');
    const state = await until('the device in the console', () => states.get('pi-sd')?.online === true && states.get('pi-sd'));
    expect(state).toMatchObject({ device: 'pi-sd', release: '0.1.0' });
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', device: 'pi-sd', release: '0.1.0', fleet: { connected: true } });
  }, 150_000);

  it('firstrun: runs once from the kernel command line and takes itself off it; refuses a card with another first-run script', async () => {
    const boot = bootPartition('bootfs-bookworm');
    const port = await freeLoopbackPort();
    const args = [
      'deploy',
      'sdcard',
      '--boot',
      boot,
      '--bundle',
      bundle.file,
      '--device',
      'pi-bookworm',
      '--mode',
      'firstrun',
      '--http-port',
      String(port),
    ];
    expect((await runCli(args)).code).toBe(0);
    const withRun = `${CMDLINE} systemd.run=/boot/firmware/edgetune/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target`;
    expect(readFileSync(join(boot, 'cmdline.txt'), 'utf8').trim()).toBe(withRun);
    expect((await runCli(args)).code).toBe(0);
    expect(readFileSync(join(boot, 'cmdline.txt'), 'utf8').trim()).toBe(withRun);

    const root = join(tmp.path, 'pi-bookworm-root');
    roots.push(root);
    await firstBoot(boot, root);
    expect(readFileSync(join(boot, 'cmdline.txt'), 'utf8').trim()).toBe(CMDLINE);
    // No cloud-init here: the first-boot script sets the host name itself.
    expect(readFileSync(join(root, 'etc/hostname'), 'utf8')).toBe('pi-bookworm\n');
    expect(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>).release).toBe('0.1.0');

    const taken = bootPartition('bootfs-taken');
    writeFileSync(join(taken, 'cmdline.txt'), `${CMDLINE} systemd.run=/boot/firstrun.sh\n`);
    const refused = await runCli(['deploy', 'sdcard', '--boot', taken, '--bundle', bundle.file, '--device', 'pi-x', '--mode', 'firstrun']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('another first-run script is set (systemd.run=/boot/firstrun.sh)');
  }, 150_000);

  it('a 32-bit card: the linux-armv7 bundle installs on first boot and its own Node, under qemu-user, joins the fleet', async () => {
    const armv7 = await buildBundle({ target: 'linux-armv7', outDir: join(tmp.path, 'bundles-armv7') });
    const boot = bootPartition('bootfs-armv7', '#cloud-config\nhostname: greenhouse-32\n');
    const port = await freeLoopbackPort();
    const args = ['deploy', 'sdcard', '--boot', boot, '--bundle', armv7.file, '--device', 'pi-armv7', '--http-port', String(port)];
    const cli = await runCli([...args, '--console', consoleDir, '--fleet', 'farm', '--broker', broker.url]);
    expect(cli.code, cli.stderr).toBe(0);
    const root = join(tmp.path, 'pi-armv7-root');
    roots.push(root);
    // What binfmt_misc does on a real armv7 board's absence: every start of the bundle's Node goes
    // through qemu-arm (bin/edgetune and the health probe honour EDGETUNE_EMULATOR).
    await firstBoot(boot, root, { ...process.env, EDGETUNE_EMULATOR: emulatorFor('linux-armv7').command.join(' ') });
    expect(JSON.parse(readFileSync(join(releaseLayout(root).current, 'manifest.json'), 'utf8'))).toMatchObject({
      target: 'linux-armv7',
      node: { version: '20.11.0' },
    });
    const state = await until(
      'the armv7 device in the console',
      () => states.get('pi-armv7')?.online === true && states.get('pi-armv7'),
      60_000,
    );
    expect(state).toMatchObject({ device: 'pi-armv7', release: '0.1.0' });
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', device: 'pi-armv7', engine: 'tflite', fleet: { connected: true } });
  }, 600_000);

  it("a first boot that fails still takes the device's password off the boot partition", async () => {
    const boot = bootPartition('bootfs-broken');
    const args = ['deploy', 'sdcard', '--boot', boot, '--bundle', bundle.file, '--device', 'pi-broken', '--mode', 'firstrun'];
    args.push('--console', consoleDir, '--fleet', 'farm', '--broker', broker.url);
    expect((await runCli(args)).code).toBe(0);
    const folder = join(boot, 'edgetune');
    expect(readFileSync(join(folder, 'agent.json'), 'utf8')).toContain('"password"');
    // A damaged copy of the bundle on the card: the install fails.
    const bundleOnCard = readdirSync(folder).find((f) => f.endsWith('.tar.gz'))!;
    writeFileSync(join(folder, bundleOnCard), 'not a bundle');
    await expect(firstBoot(boot, join(tmp.path, 'pi-broken-root'))).rejects.toThrow();
    expect(existsSync(join(folder, 'agent.json'))).toBe(false);
    expect(existsSync(join(folder, bundleOnCard))).toBe(true);
  }, 60_000);
});
