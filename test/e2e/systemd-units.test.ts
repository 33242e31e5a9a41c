import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltBundle, bundlePayload, writeBundle } from '../../deploy/bundle/build.js';
import { commandWrapper, systemdUnit, updateUnits } from '../../deploy/bundle/templates.js';
import { writeSdcard } from '../../deploy/sdcard/sdcard.js';
import { FleetConsole } from '../../console/service.js';
import { freeLoopbackPort } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { type SystemdContainer, bootSystemd } from '../support/systemd-container.js';
import { until } from '../support/until.js';

// The units a bundle installs, checked by systemd's own parser (systemd-analyze verify, from the systemd
// package). Their ExecStart is /opt/edgetune/current/bin/edgetune, so each check runs in a private mount
// namespace (root) with a tmpfs on /opt holding a release: this machine's /opt is never touched.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-units-');
afterAll(() => tmp.remove());

function writeRelease(units: Record<string, string>): string {
  const release = join(tmp.path, `release-${Object.keys(units).length}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(release, 'bin'), { recursive: true });
  writeFileSync(join(release, 'bin/edgetune'), commandWrapper('0.1.0'), { mode: 0o755 });
  for (const [name, text] of Object.entries(units)) writeFileSync(join(release, name), text);
  return release;
}

function verify(release: string, names: string[]) {
  const files = names.map((n) => `'${join(release, n)}'`).join(' ');
  return spawnSync(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t tmpfs edgetune-units /opt && mkdir -p /opt/edgetune && ln -s '${release}' /opt/edgetune/current && systemd-analyze verify ${files}`,
    ],
    { encoding: 'utf8' },
  );
}

describe('systemd units', () => {
  it('edgetune.service, edgetune-update.service and edgetune-update.path pass systemd-analyze verify with no warning', () => {
    const update = updateUnits('0.1.0');
    const units = {
      'edgetune.service': systemdUnit('0.1.0'),
      'edgetune-update.service': update.service,
      'edgetune-update.path': update.path,
    };
    const r = verify(writeRelease(units), Object.keys(units));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the check is real: a misspelt key and a bad Restart= value are reported', () => {
    const bad = systemdUnit('0.1.0').replace('Restart=on-failure', 'Restart=sometimes').replace('NoNewPrivileges=', 'NoNewPrivilege=');
    const r = verify(writeRelease({ 'edgetune.service': bad }), ['edgetune.service']);
    expect(r.stderr).toMatch(/Failed to parse service restart specifier, ignoring: sometimes/);
    expect(r.stderr).toMatch(/Unknown key 'NoNewPrivilege' in section \[Service\]/);
  });
});

// The units running under a real systemd: this machine's systemd booted as PID 1 of its own namespaces
// on an overlay of the root file system (test/support/systemd-container.ts), the device's / inside it.
describe('under a real systemd: an SD card first boot, then an agent update through the path unit', () => {
  const step = story();
  let pi: SystemdContainer;
  let fleet: FleetConsole;
  const bundles: Record<string, BuiltBundle> = {};
  let port: number;
  const sh = async (script: string) => {
    const r = await pi.exec.run(script);
    expect(r.code, `${script}: ${r.stderr}`).toBe(0);
    return r.stdout.trim();
  };
  const health = async () => (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
  /** The agent's pid in the device's namespace, and the user it runs as. */
  const agentProcess = async () => {
    const pid = await sh('systemctl show -p MainPID --value edgetune.service');
    return { pid, user: pid === '0' ? null : await sh(`stat -c %U /proc/${pid}`) };
  };

  beforeAll(async () => {
    fleet = await FleetConsole.start({ dir: join(tmp.path, 'console'), fleet: 'farm', broker: { port: 0 }, canaries: [] });
    const payload = await bundlePayload({ target: 'linux-x64' });
    for (const version of ['0.1.0', '0.2.0']) bundles[version] = writeBundle({ ...payload, version }, join(tmp.path, 'bundles'));
    pi = await bootSystemd(join(tmp.path, 'systemd'), [tmp.path]);
    port = await freeLoopbackPort();
  }, 120_000);

  afterAll(async () => {
    await pi?.stop();
    await fleet?.stop();
  }, 30_000);

  step(
    'first boot: install.sh adds the edgetune user and enables the units; the agent runs as edgetune under edgetune.service and joins the fleet',
    async () => {
      const boot = join(tmp.path, 'bootfs');
      mkdirSync(boot, { recursive: true });
      writeFileSync(join(boot, 'cmdline.txt'), 'console=tty1 root=PARTUUID=4e639091-02 rootwait\n');
      writeSdcard({
        boot,
        bundle: bundles['0.1.0']!.file,
        device: 'pi-systemd',
        mode: 'cloud-init',
        httpPort: port,
        fleet: {
          fleet: 'farm',
          brokerUrl: fleet.brokerUrl,
          publicKeyPem: readFileSync(join(tmp.path, 'console', 'fleet.pub'), 'utf8'),
          issueCredentials: (id) => fleet.addDevice(id).password,
        },
      });
      // As cloud-init runs it on the Pi: root, prefix /, the systemd service manager.
      await sh(`sh ${boot}/edgetune/firstboot.sh`);
      expect(await sh('systemctl is-enabled edgetune.service edgetune-update.path')).toBe('enabled\nenabled');
      expect(await sh('systemctl is-active edgetune.service edgetune-update.path')).toBe('active\nactive');
      expect((await agentProcess()).user).toBe('edgetune');
      expect(await sh('readlink /opt/edgetune/current')).toBe('releases/0.1.0');
      expect(await health()).toMatchObject({ status: 'ok', device: 'pi-systemd', release: '0.1.0', fleet: { connected: true } });
      expect(await sh('hostname')).toBe('pi-systemd');
      await until('the device in the console', () => fleet.registry.device('pi-systemd')?.state?.release === '0.1.0');
    },
    120_000,
  );

  step(
    'an agent update: the unprivileged agent leaves request.json, edgetune-update.path starts edgetune-update.service as root, which restarts the agent on the new release',
    async () => {
      const before = await agentProcess();
      const report = await fleet.pushAgentUpdate(bundles['0.2.0']!.file, { stageTimeoutMs: 120_000 });
      expect(report).toMatchObject({ ok: true, devices: [{ device: 'pi-systemd', release: '0.2.0', updated: true }] });
      // The oneshot runs on until its health check of the new agent is done.
      await until(
        'edgetune-update.service done',
        async () => (await sh('systemctl is-active edgetune-update.service || true')) === 'inactive',
      );
      expect(await sh('systemctl show -p Result --value edgetune-update.service')).toBe('success');
      expect(await sh('journalctl -u edgetune-update.service -o cat --no-pager')).toMatch(/Finished edgetune-update\.service/);
      expect(JSON.parse(await sh('cat /var/lib/edgetune/updates/result.json'))).toMatchObject({ version: '0.2.0', ok: true });
      const after = await agentProcess();
      expect(after).toMatchObject({ user: 'edgetune' });
      expect(after.pid).not.toBe(before.pid);
      expect(await sh(`tr '\\0' ' ' < /proc/${after.pid}/cmdline`)).toContain('/opt/edgetune/releases/0.2.0/edgetune.js agent');
      expect(await health()).toMatchObject({ status: 'ok', release: '0.2.0', update: { version: '0.2.0', status: 'installed' } });
    },
    150_000,
  );

  step(
    'Restart=on-failure: an agent that is killed is started again by systemd',
    async () => {
      const { pid } = await agentProcess();
      await sh(`kill -KILL ${pid}`);
      const restarted = await until(
        'edgetune.service started again',
        async () => {
          const now = await agentProcess();
          return now.pid !== '0' && now.pid !== pid && now;
        },
        60_000,
        200,
      );
      expect(restarted.user).toBe('edgetune');
      expect(await sh('systemctl show -p NRestarts --value edgetune.service')).toBe('1');
      await until('the restarted agent healthy', async () => (await health().catch(() => undefined))?.release === '0.2.0', 60_000, 200);
    },
    90_000,
  );
});
