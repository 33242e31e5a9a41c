import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AgentProcess, startAgentProcess, writeAgentConfig } from '../support/agent-process.js';
import { type EdgetuneProcess, runCli, spawnEdgetune } from '../support/cli.js';
import { freeLoopbackPort } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

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

async function devicesJson(): Promise<{ id: string; online: boolean; backbone: string | null }[]> {
  const r = await runCli(['console', 'devices', '--dir', dir, '--json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { id: string; online: boolean; backbone: string | null }[];
}

describe('edgetune console', () => {
  it('refuses add-device before the console has made its fleet key, and push-update without a running console', async () => {
    const early = await runCli(['console', 'add-device', 'pi-1', '--dir', join(tmp.path, 'empty'), '--fleet', 'farm']);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/fleet\.pub does not exist: run "edgetune console start" once first/);
    // A damaged console.json is named, and left as it is.
    const damaged = join(tmp.path, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'console.json'), '{"fleet": "fa');
    const bad = await runCli(['console', 'devices', '--dir', damaged]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/damaged\/console\.json: not JSON .*\[CONSOLE_BAD_DIR\]/);
    expect(readFileSync(join(damaged, 'console.json'), 'utf8')).toBe('{"fleet": "fa');
    const update = await runCli(['console', 'push-update', 'b.tar.gz', '--dir', join(tmp.path, 'empty')]);
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
    expect(seen).toBeTruthy();

    const table = await runCli(['console', 'devices', '--dir', dir]);
    expect(table.stdout).toMatch(/pi-1\s+online/);
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
});
