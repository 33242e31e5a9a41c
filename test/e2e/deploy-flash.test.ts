import { appendFileSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltBundle, type BundlePayload, bundlePayload, writeBundle } from '../../deploy/bundle/build.js';
import { type RunningBroker, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { type FlashOptions, type HostResult, flash } from '../../deploy/flash/flash.js';
import { parseHost } from '../../deploy/flash/inventory.js';
import { releaseLayout } from '../../runtime/release/layout.js';
import { localExec } from '../../runtime/release/local.js';
import { processManager } from '../../runtime/release/service.js';
import { loadOrCreateFleetKey, publicKeyPem } from '../../runtime/sync/signing.js';
import { topics } from '../../runtime/sync/protocol.js';
import { runCli } from '../support/cli.js';
import { emulatedDevice } from '../support/emulated-device.js';
import { connectMqtt, freeLoopbackPort } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { type Sshd, startSshd } from '../support/sshd.js';

// `edgetune deploy flash` against a real OpenSSH server on loopback: the "device" is this machine, its
// root a temp folder used as the install prefix, the agent a real process started from the installed
// release (the process service manager: there is no systemd here), joined to a real broker.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-flash-');
const consoleLogin = { username: 'console', password: 'console-secret-123' };
const roots: string[] = [];
let sshd: Sshd;
let broker: RunningBroker;
let credentials: DeviceCredentials;
let payload: BundlePayload;
const bundles: Record<string, BuiltBundle> = {};
let publicKey: string;
let knownHosts: string;

function bundleOf(version: string): BuiltBundle {
  bundles[version] ??= writeBundle({ ...payload, version }, join(tmp.path, 'bundles'));
  return bundles[version];
}

beforeAll(async () => {
  sshd = await startSshd(join(tmp.path, 'sshd'));
  knownHosts = join(tmp.path, 'known_hosts');
  writeFileSync(knownHosts, sshd.knownHostsLine);
  credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
  broker = await startBroker({ fleet: 'farm', port: 0, credentials, console: consoleLogin });
  publicKey = publicKeyPem(loadOrCreateFleetKey(join(tmp.path, 'fleet.key')).publicKey);
  payload = await bundlePayload({ target: 'linux-x64' });
}, 120_000);

afterAll(async () => {
  // The agents run detached, as on a device: stop each one by its pid file.
  for (const root of roots) await localExec.run(processManager.stop(releaseLayout(root)));
  await sshd?.stop();
  await broker?.close();
  credentials?.close();
  tmp.remove();
}, 60_000);

async function device(id: string): Promise<{ id: string; root: string; port: number; line: string }> {
  const root = join(tmp.path, 'devices', id);
  roots.push(root);
  const port = await freeLoopbackPort();
  return { id, root, port, line: `${sshd.user}@127.0.0.1:${sshd.port} id=${id} root=${root} http_port=${port} service=process` };
}

function options(version: string, lines: string[], extra: Partial<FlashOptions> = {}): FlashOptions {
  return {
    bundle: bundleOf(version).file,
    hosts: lines.map((l) => parseHost(l, { username: sshd.user })),
    hostKeys: { knownHostsFile: knownHosts, trustOnFirstUse: false },
    privateKey: sshd.clientKey,
    fleet: {
      fleet: 'farm',
      brokerUrl: broker.url,
      publicKeyPem: publicKey,
      issueCredentials: (id) => credentials.issue(id),
      watch: { url: broker.url, ...consoleLogin },
    },
    healthTimeoutMs: 60_000,
    ...extra,
  };
}

async function health(port: number): Promise<Record<string, unknown>> {
  return (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
}

function current(root: string): string {
  return (
    readFileSync(join(root, 'opt/edgetune/current/manifest.json'), 'utf8') &&
    JSON.parse(readFileSync(join(root, 'opt/edgetune/current/manifest.json'), 'utf8')).version
  );
}

function agentCommandLine(root: string): string {
  const pid = readFileSync(join(root, 'opt/edgetune/run/agent.pid'), 'utf8').trim();
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe('edgetune deploy flash over SSH (real sshd, real agent, real broker)', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  let pi1: Awaited<ReturnType<typeof device>>;

  step(
    'installs, switches current, writes credentials with mode 0600 and passes its health check with the agent started from the installed release',
    async () => {
      pi1 = await device('pi-1');
      const started = Date.now();
      const [result] = await flash(options('0.1.0', [pi1.line]));
      expect(result).toMatchObject({
        ok: true,
        status: 'installed',
        device: 'pi-1',
        version: '0.1.0',
        previous: null,
        rolledBack: false,
        resumedFrom: 0,
      });
      expect(result!.uploadedBytes).toBe(bundleOf('0.1.0').bytes);
      console.log(
        `deploy of ${(bundleOf('0.1.0').bytes / 2 ** 20).toFixed(1)} MB to one host: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      expect(readFileSync(join(pi1.root, 'opt/edgetune/current/manifest.json'), 'utf8')).toContain('"version": "0.1.0"');
      expect(current(pi1.root)).toBe('0.1.0');
      const layout = releaseLayout(pi1.root);
      expect(mode(layout.config)).toBe(0o600);
      expect(mode(layout.publicKey)).toBe(0o600);
      expect(mode(join(layout.data, 'device.key'))).toBe(0o600);
      const config = JSON.parse(readFileSync(layout.config, 'utf8'));
      expect(config).toMatchObject({ device: { id: 'pi-1' }, fleet: { id: 'farm', username: 'pi-1', url: broker.url } });
      expect(await credentials.verify('pi-1', config.fleet.password)).toBe(true);
      expect(readFileSync(layout.publicKey, 'utf8')).toBe(publicKey);
      // The agent really runs from the installed release and is in the fleet.
      expect(agentCommandLine(pi1.root)).toContain(`${pi1.root}/opt/edgetune/releases/0.1.0/edgetune.js agent --config ${layout.config}`);
      expect(await health(pi1.port)).toMatchObject({
        status: 'ok',
        device: 'pi-1',
        release: '0.1.0',
        fleet: { connected: true, queued: 0 },
      });
    },
    120_000,
  );

  step(
    'a re-run is idempotent: nothing uploaded, nothing restarted, the same MQTT login',
    async () => {
      const before = readFileSync(releaseLayout(pi1.root).config, 'utf8');
      const pid = readFileSync(join(pi1.root, 'opt/edgetune/run/agent.pid'), 'utf8');
      const [result] = await flash(options('0.1.0', [pi1.line]));
      expect(result).toMatchObject({ ok: true, status: 'unchanged', uploadedBytes: 0 });
      expect(readFileSync(releaseLayout(pi1.root).config, 'utf8')).toBe(before);
      expect(readFileSync(join(pi1.root, 'opt/edgetune/run/agent.pid'), 'utf8')).toBe(pid);
    },
    60_000,
  );

  step(
    'a second deploy installs the new version beside the first and switches to it',
    async () => {
      const deviceKey = readFileSync(join(releaseLayout(pi1.root).data, 'device.key'));
      const [result] = await flash(options('0.2.0', [pi1.line]));
      expect(result).toMatchObject({ ok: true, status: 'installed', version: '0.2.0', previous: '0.1.0' });
      expect(current(pi1.root)).toBe('0.2.0');
      expect(readdirSync(join(pi1.root, 'opt/edgetune/releases')).sort()).toEqual(['0.1.0', '0.2.0']);
      expect(readFileSync(join(pi1.root, 'opt/edgetune/previous'), 'utf8').trim()).toBe('0.1.0');
      expect(await health(pi1.port)).toMatchObject({ status: 'ok', release: '0.2.0', fleet: { connected: true } });
      expect(agentCommandLine(pi1.root)).toContain('/opt/edgetune/releases/0.2.0/edgetune.js');
      // Same identity, same samples: the data folder is not part of a release.
      expect(readFileSync(join(releaseLayout(pi1.root).data, 'device.key')).equals(deviceKey)).toBe(true);
    },
    120_000,
  );

  step(
    'a release whose agent fails its health check is rolled back to the previous one',
    async () => {
      const broken = new Map(payload.files);
      broken.set('edgetune.js', { data: Buffer.from("console.error('release 0.3.0: cannot start'); process.exit(3);\n") });
      bundles['0.3.0'] = writeBundle({ ...payload, version: '0.3.0', files: broken }, join(tmp.path, 'bundles'));
      const [result] = await flash(options('0.3.0', [pi1.line]));
      expect(result).toMatchObject({ ok: false, status: 'failed', code: 'DEPLOY_HEALTH_FAILED', rolledBack: true, previous: '0.2.0' });
      expect(result!.error).toMatch(/release 0\.3\.0 failed: the agent exited .*cannot start.*; rolled back to 0\.2\.0/);
      expect(current(pi1.root)).toBe('0.2.0');
      expect(await health(pi1.port)).toMatchObject({ status: 'ok', release: '0.2.0' });
    },
    120_000,
  );

  step(
    'an interrupted upload, run again, resumes where it stopped and completes',
    async () => {
      const bundle = bundleOf('0.4.0');
      const controller = new AbortController();
      const [stopped] = await flash(
        options('0.4.0', [pi1.line], {
          signal: controller.signal,
          onProgress: (e) => {
            if (e.phase === 'upload' && (e.sent ?? 0) >= bundle.bytes / 3) controller.abort();
          },
        }),
      );
      expect(stopped).toMatchObject({ ok: false, code: 'DEPLOY_INTERRUPTED', phase: 'upload' });
      const part = join(pi1.root, 'opt/edgetune/incoming', `${bundle.sha256}.tar.gz.part`);
      const kept = statSync(part).size;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(bundle.bytes);
      expect(current(pi1.root)).toBe('0.2.0');
      const [resumed] = await flash(options('0.4.0', [pi1.line]));
      expect(resumed).toMatchObject({
        ok: true,
        status: 'installed',
        resumedFrom: kept,
        uploadedBytes: bundle.bytes - kept,
        previous: '0.2.0',
      });
      expect(current(pi1.root)).toBe('0.4.0');
      expect(await health(pi1.port)).toMatchObject({ release: '0.4.0' });
      expect(readdirSync(join(pi1.root, 'opt/edgetune/incoming'))).toEqual([]);
      // Two releases stay on the device: the current one and the one to roll back to.
      expect(readdirSync(join(pi1.root, 'opt/edgetune/releases')).sort()).toEqual(['0.2.0', '0.4.0']);
    },
    120_000,
  );

  step(
    'refuses an unknown host key, trusts it only with --trust-on-first-use, and refuses a changed one always',
    async () => {
      const empty = join(tmp.path, 'known_hosts.empty');
      writeFileSync(empty, '');
      const [refused] = await flash(options('0.4.0', [pi1.line], { hostKeys: { knownHostsFile: empty, trustOnFirstUse: false } }));
      expect(refused).toMatchObject({ ok: false, code: 'HOST_KEY_UNKNOWN', phase: 'connect' });
      expect(refused!.error).toMatch(/unknown host key ssh-ed25519 SHA256:.* re-run with --trust-on-first-use/);
      const [trusted] = await flash(options('0.4.0', [pi1.line], { hostKeys: { knownHostsFile: empty, trustOnFirstUse: true } }));
      expect(trusted).toMatchObject({ ok: true, status: 'unchanged' });
      expect(readFileSync(empty, 'utf8')).toMatch(/^\|1\|\S+ ssh-ed25519 \S+\n$/);
      const other = join(tmp.path, 'other-host-key');
      const { execFileSync } = await import('node:child_process');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      const changed = join(tmp.path, 'known_hosts.changed');
      writeFileSync(changed, `[127.0.0.1]:${sshd.port} ${readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
      const [mitm] = await flash(options('0.4.0', [pi1.line], { hostKeys: { knownHostsFile: changed, trustOnFirstUse: true } }));
      expect(mitm).toMatchObject({ ok: false, code: 'HOST_KEY_CHANGED' });
      // Pinned with an ECDSA key, the host offers only ed25519 (an impostor without the pinned key): still
      // refused, even with --trust-on-first-use, and the pinned file is untouched.
      execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', `${other}-ecdsa`]);
      const pinned = join(tmp.path, 'known_hosts.ecdsa');
      const pinnedLine = `[127.0.0.1]:${sshd.port} ${readFileSync(`${other}-ecdsa.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`;
      writeFileSync(pinned, pinnedLine);
      const [impostor] = await flash(options('0.4.0', [pi1.line], { hostKeys: { knownHostsFile: pinned, trustOnFirstUse: true } }));
      expect(impostor).toMatchObject({ ok: false, code: 'HOST_KEY_CHANGED' });
      expect(impostor!.error).toMatch(/host key ssh-ed25519 SHA256:\S+ does not match .*known_hosts.ecdsa:1 \(ecdsa-sha2-nistp256\)/);
      expect(readFileSync(pinned, 'utf8')).toBe(pinnedLine);
    },
    60_000,
  );

  step(
    'through sudo (a login like "pi"): the bundle goes to the login\'s own folder, files are installed as root',
    async () => {
      const pi = await device('pi-sudo');
      const [result] = await flash(options('0.1.0', [`${pi.line} sudo=yes`]));
      expect(result).toMatchObject({ ok: true, status: 'installed' });
      const staging = `/var/tmp/edgetune-upload-${sshd.user}`;
      expect(statSync(staging).mode & 0o777).toBe(0o700);
      expect(readdirSync(staging)).toEqual([]);
      expect(statSync(releaseLayout(pi.root).config)).toMatchObject({ uid: 0, gid: 0 });
      expect(mode(releaseLayout(pi.root).config)).toBe(0o600);
      expect(await health(pi.port)).toMatchObject({ status: 'ok', device: 'pi-sudo', release: '0.1.0' });
    },
    60_000,
  );

  step(
    'bad input: a malformed inventory line, an unreachable host, a full disk and a wrong password fail each with its own error; the good host still deploys',
    async () => {
      const good = await device('pi-2');
      const full = await device('pi-full');
      const closed = await freeLoopbackPort();
      const inventory = join(tmp.path, 'inventory.txt');
      writeFileSync(
        inventory,
        [
          '# the greenhouse',
          good.line,
          'pi@@nowhere id=bad',
          `${sshd.user}@127.0.0.1:${closed} id=pi-offline`,
          `${full.line} min_free=100T`,
          `${sshd.user}@127.0.0.1:${sshd.port} id=pi-password root=${join(tmp.path, 'devices/pi-password')} password=wrong-password`,
          '',
        ].join('\n'),
      );
      writeFileSync(join(tmp.path, 'client_key'), sshd.clientKey, { mode: 0o600 });
      const cli = await runCli([
        'deploy',
        'flash',
        '--inventory',
        inventory,
        '--bundle',
        bundleOf('0.1.0').file,
        '--known-hosts',
        knownHosts,
        '-i',
        join(tmp.path, 'client_key'),
        '--health-timeout',
        '60',
        '--json',
      ]);
      expect(cli.code, cli.stderr).toBe(1);
      const results = JSON.parse(cli.stdout) as HostResult[];
      const by = (device: string) => results.find((r) => r.device === device || r.host.endsWith(device));
      expect(results).toHaveLength(5);
      expect(by('pi-2')).toMatchObject({ ok: true, status: 'installed' });
      expect(by('inventory.txt:3')).toMatchObject({ ok: false, code: 'INVENTORY_BAD_LINE' });
      expect(by('inventory.txt:3')!.error).toContain('inventory.txt:3: "pi@@nowhere" is not [user@]host[:port]');
      expect(by('pi-offline')).toMatchObject({ ok: false, code: 'DEPLOY_UNREACHABLE' });
      expect(by('pi-offline')!.error).toContain(`127.0.0.1:${closed}: unreachable (ECONNREFUSED)`);
      expect(by('pi-full')).toMatchObject({ ok: false, code: 'DEPLOY_DISK_FULL', phase: 'preflight' });
      expect(by('pi-full')!.error).toMatch(/disk full: \d+ MB free under .*pi-full, the release needs \d+ MB/);
      expect(by('pi-password')).toMatchObject({ ok: false, code: 'DEPLOY_AUTH_FAILED' });
      expect(by('pi-password')!.error).toContain('authentication failed (tried password)');
      expect(await health(good.port)).toMatchObject({ status: 'ok', device: 'pi-2', release: '0.1.0' });
    },
    150_000,
  );
});

describe('edgetune deploy flash to an arm64 Raspberry Pi 4 (its own Node under qemu-user)', () => {
  it("installs the linux-arm64 bundle over SSH; the agent that passes the health check is the bundle's ARM build on the presented board", async () => {
    // The "device" behind this sshd: a Pi 4's /proc, `uname -m` aarch64, the bundle's Node under qemu-aarch64.
    const pi = emulatedDevice('linux-arm64', 'rpi-4', join(tmp.path, 'rpi-4'));
    const armSshd = await startSshd(join(tmp.path, 'sshd-rpi-4'), { prefix: pi.prefix, env: pi.env });
    const clients: MqttClient[] = [];
    try {
      appendFileSync(knownHosts, armSshd.knownHostsLine);
      const bundle = writeBundle(await bundlePayload({ target: 'linux-arm64' }), join(tmp.path, 'bundles-arm64'));
      const root = join(tmp.path, 'devices', 'pi-arm64');
      roots.push(root);
      const port = await freeLoopbackPort();
      const line = `${armSshd.user}@127.0.0.1:${armSshd.port} id=pi-arm64 root=${root} http_port=${port} service=process`;
      const started = Date.now();
      const [result] = await flash({
        ...options('0.1.0', [line]),
        bundle: bundle.file,
        privateKey: armSshd.clientKey,
        healthTimeoutMs: 300_000,
      });
      console.log(
        `deploy of the ${(bundle.bytes / 2 ** 20).toFixed(1)} MB arm64 bundle to an emulated Pi 4: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      expect(result, result?.error).toMatchObject({ ok: true, status: 'installed', device: 'pi-arm64', version: '0.1.0' });
      // The agent process is qemu-aarch64 running the release's own arm64 Node.
      expect(agentCommandLine(root)).toMatch(
        new RegExp(
          `^\\S*qemu-aarch64\\S* -L /usr/aarch64-linux-gnu ${root}/opt/edgetune/releases/0\\.1\\.0/node/bin/node .*edgetune\\.js agent`,
        ),
      );
      const log = readFileSync(releaseLayout(root).log, 'utf8');
      const startedLine = log
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'agent started');
      expect(startedLine).toMatchObject({ profile: 'rpi-4', engine: 'onnx' });
      // What the console sees of it: an arm64 device, on the bundle's release.
      const watcher = await connectMqtt(broker.url, consoleLogin.username, consoleLogin.password, 4, clients);
      const state = new Promise<Record<string, unknown>>((resolve) =>
        watcher.on('message', (_topic, bytes: Buffer) => resolve(JSON.parse(bytes.toString()) as Record<string, unknown>)),
      );
      await watcher.subscribeAsync(topics.device('farm', 'pi-arm64', 'state'), { qos: 1 });
      expect(await state).toMatchObject({ device: 'pi-arm64', release: '0.1.0', engine: 'onnx', vitals: { target: 'linux-arm64' } });
      expect(await health(port)).toMatchObject({ status: 'ok', device: 'pi-arm64', release: '0.1.0', fleet: { connected: true } });
      // The installed release's own `device info`, run on the device, names the board.
      const info = await pi.exec.run(`${root}/opt/edgetune/current/bin/edgetune device info --json`);
      expect(info.code, info.stderr).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({
        profile: { id: 'rpi-4', engine: 'onnx' },
        facts: { arch: 'arm64', model: 'Raspberry Pi 4 Model B Rev 1.4' },
      });
    } finally {
      for (const c of clients) c.end(true);
      await armSshd.stop();
    }
  }, 600_000);
});
