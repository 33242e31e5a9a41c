import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceCredentials } from '../../console/credentials.js';
import { type AgentProcess, startAgentProcess, writeAgentConfig } from '../support/agent-process.js';
import { type EdgetuneProcess, runCli, spawnEdgetune } from '../support/cli.js';
import { MOSQUITTO } from '../support/mosquitto.js';
import { connectMqtt, freeLoopbackPort } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';
import YAML from 'yaml';

// `edgetune console` as people run it: a console process, add-device for its login, a real agent process
// joining with that config, and `console devices` (another process, same folder) seeing it online.
const tmp = tempDir();
const dir = join(tmp.path, 'console');
let consoleProcess: EdgetuneProcess | undefined;
let agent: AgentProcess | undefined;

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await consoleProcess?.kill('SIGTERM');
  tmp.remove();
});

async function devicesJson(): Promise<{ id: string; online: boolean; canary: boolean; backbone: string | null }[]> {
  const r = await runCli(['console', 'devices', '--dir', dir, '--json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { id: string; online: boolean; canary: boolean; backbone: string | null }[];
}

describe('edgetune console', () => {
  it('add-device works before the first start, binding the device id to its login; push-update needs a running console', async () => {
    const early = await runCli(['console', 'add-device', 'pi-1', '--dir', join(tmp.path, 'early'), '--fleet', 'farm']);
    expect(early.code).toBe(0);
    const snippet = YAML.parse(early.stdout) as { device: { id: string }; fleet: { username: string; id: string } };
    expect(snippet.device.id).toBe('pi-1');
    expect(snippet.fleet).toMatchObject({ username: 'pi-1', id: 'farm' });
    expect(readFileSync(join(tmp.path, 'early', 'fleet.pub'), 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    const listed = await runCli(['console', 'devices', '--dir', join(tmp.path, 'early'), '--json']);
    expect((JSON.parse(listed.stdout) as { id: string; status: string }[]).map((d) => [d.id, d.status])).toEqual([
      ['pi-1', 'never-connected'],
    ]);
    // A damaged console.json is named, and left as it is.
    const damaged = join(tmp.path, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'console.json'), '{"fleet": "fa');
    const bad = await runCli(['console', 'devices', '--dir', damaged]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/damaged\/console\.json: not JSON .*\[CONSOLE_BAD_DIR\]/);
    expect(readFileSync(join(damaged, 'console.json'), 'utf8')).toBe('{"fleet": "fa');
    const update = await runCli(['console', 'push-update', 'b.tar.gz', '--dir', join(tmp.path, 'early')]);
    expect(update.code).toBe(1);
    expect(update.stderr).toMatch(/web\.json does not exist: start the console with its web API .*\[CONSOLE_NOT_RUNNING\]/);
  });

  it('runs; a device added with add-device joins, and `console devices` lists it online', async () => {
    const port = await freeLoopbackPort();
    const console_ = spawnEdgetune([
      'console',
      'start',
      '--dir',
      dir,
      '--fleet',
      'farm',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--web-port',
      '0',
      '--canary',
      'pi-1',
    ]);
    consoleProcess = console_;
    await console_.waitFor('console started', () => console_.stdout.includes('"msg":"console started"'));

    const added = await runCli([
      'console',
      'add-device',
      'pi-1',
      '--dir',
      dir,
      '--url',
      `mqtt://127.0.0.1:${port}`,
      '--public-key-file',
      join(dir, 'fleet.pub'),
      '--json',
    ]);
    expect(added.code).toBe(0);
    const login = JSON.parse(added.stdout) as { fleet: Record<string, string>; publicKey: string };
    expect(login.fleet).toMatchObject({ id: 'farm', username: 'pi-1', url: `mqtt://127.0.0.1:${port}` });
    expect(login.publicKey).toMatch(/BEGIN PUBLIC KEY/);

    // push-update finds the running console through its folder; a bundle that is not one is refused by name.
    const notBundle = await runCli(['console', 'push-update', join(tmp.path, 'missing.tar.gz'), '--dir', dir]);
    expect(notBundle.code).toBe(1);
    expect(notBundle.stderr).toMatch(/missing\.tar\.gz: not an edgetune bundle .*\[BUNDLE_UNREADABLE\]/);

    const wrongFleet = await runCli(['console', 'devices', '--dir', dir, '--fleet', 'other']);
    expect(wrongFleet.code).toBe(2);
    expect(wrongFleet.stderr).toMatch(/is the console of fleet "farm", not "other"/);

    const agentDir = join(tmp.path, 'pi-1');
    const config = writeAgentConfig(tmp.path, {
      device: { id: 'pi-1' },
      data: { dir: agentDir },
      http: { port: 0 },
      fleet: { ...login.fleet, publishDelayMs: 0 },
    });
    agent = await startAgentProcess(config);
    const seen = await until('pi-1 online in `console devices`', async () =>
      (await devicesJson()).find((d) => d.id === 'pi-1' && d.online),
    );
    // The canary of the running console is one in another process's view too.
    expect(seen).toMatchObject({ id: 'pi-1', online: true, canary: true });

    const table = await runCli(['console', 'devices', '--dir', dir]);
    expect(table.stdout).toMatch(/pi-1 \(canary\)\s+online/);
    // The web console the command started answers with the same view.
    const url = new URL(/"msg":"web console","url":"([^"]+)"/.exec(console_.stdout)![1]!);
    const api = await fetch(new URL('/api/devices', url.origin), { headers: { authorization: `Bearer ${url.searchParams.get('token')}` } });
    expect(((await api.json()) as { devices: { id: string; online: boolean }[] }).devices.map((d) => [d.id, d.online])).toEqual([
      ['pi-1', true],
    ]);

    await agent.kill('SIGTERM');
    agent = undefined;
    await until('pi-1 offline after its agent stopped', async () => (await devicesJson()).find((d) => d.id === 'pi-1' && !d.online));
  }, 90_000);

  it('mosquitto-config writes the config, password file and ACL a real mosquitto runs with; a device added before logs in', async () => {
    const own = join(tmp.path, 'mosquitto-console');
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, 'console.json'), '{"fleet": "farm"}\n');
    const credentials = new DeviceCredentials(join(own, 'registry.db'));
    const password = credentials.issue('pi-m');
    credentials.close();
    writeFileSync(join(tmp.path, 'console-pass'), 'console-secret-for-mosquitto\n');
    const port = await freeLoopbackPort();
    const out = join(tmp.path, 'mosquitto-files');
    const args = ['console', 'mosquitto-config', '--dir', own, '--out', out, '--port', String(port), '--host', '127.0.0.1'];
    const written = await runCli([
      ...args,
      '--broker-user',
      'console-m',
      '--broker-password-file',
      join(tmp.path, 'console-pass'),
      ...(process.getuid?.() === 0 ? ['--user', 'root'] : []),
    ]);
    expect(written.stderr).toBe('');
    expect(statSync(join(out, 'passwords')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'acl'), 'utf8')).toContain('pattern write edgetune/farm/device/%u/head');
    expect(readFileSync(join(out, 'mosquitto.conf'), 'utf8')).toContain('use_username_as_clientid true');
    const broker = spawn(MOSQUITTO, ['-c', join(out, 'mosquitto.conf')], { stdio: 'ignore' });
    const clients: MqttClient[] = [];
    try {
      const device = await until('pi-m logged in to mosquitto', () =>
        connectMqtt(`mqtt://127.0.0.1:${port}`, 'pi-m', password, 5, clients).catch(() => undefined),
      );
      expect(device && device.connected).toBe(true);
      await expect(connectMqtt(`mqtt://127.0.0.1:${port}`, 'pi-m', 'wrong', 5, clients)).rejects.toThrow(
        /Bad User Name or Password|Not authorized/i,
      );
    } finally {
      for (const c of clients) c.end(true);
      broker.kill('SIGTERM');
      await once(broker, 'close');
    }
    const release = await runCli(['console', 'release', 'pi-m', '--dir', own]);
    expect([release.code, release.stderr]).toEqual([1, 'edgetune: device "pi-m" is not quarantined [CONSOLE_NOT_QUARANTINED]\n']);
    expect((await runCli(['console', 'accept-class', 'tulip', '--dir', own])).stdout).toBe(
      'class "tulip" accepted; it takes effect at the next merge\n',
    );
    expect(JSON.parse((await runCli(['console', 'classes', '--dir', own, '--json'])).stdout)).toEqual([
      { label: 'tulip', decision: 'accepted' },
    ]);
  }, 60_000);
});
