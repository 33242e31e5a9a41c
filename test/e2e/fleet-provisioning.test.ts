import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { createLogger } from '../../core/log.js';
import Database from 'better-sqlite3';
import { Registry } from '../../console/registry.js';
import { FleetConsole } from '../../console/service.js';
import { topics } from '../../runtime/sync/protocol.js';
import { feed } from '../support/fleet.js';
import { connectMqtt } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// Provisioning as it goes wrong in the field, with real agents and the console's embedded broker: a
// device whose id is not its login, a wrong password, a link that keeps dropping, a login issued and
// never used, and an outbox full of messages for an id the device no longer has.
const tmp = tempDir();
const clients: MqttClient[] = [];
let fleet: FleetConsole;

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({ dir: join(tmp.path, 'console'), fleet: 'farm', broker: { port: 0 } });
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await fleet?.stop();
  tmp.remove();
});

/** Problems as stored in the console's registry on disk (another connection to the same file). */
function problemsOnDisk(code: string) {
  const registry = new Registry(join(tmp.path, 'console', 'registry.db'));
  try {
    return registry.problems(100).filter((p) => p.code === code);
  } finally {
    registry.close();
  }
}

function agentConfig(id: string, dir: string, login: Record<string, unknown>) {
  return AgentConfigSchema.parse({
    device: { id },
    data: { dir, holdoutFraction: 0 },
    head: { retrainAfterLabels: 0 },
    http: { port: 0 },
    fleet: { ...login, publishDelayMs: 0 },
  });
}

describe('provisioning', () => {
  it('an agent whose device id is not its login refuses to start, naming both', async () => {
    const login = fleet.addDevice('pi-b').fleet;
    await expect(Agent.start(agentConfig('vm', join(tmp.path, 'vm'), login))).rejects.toThrow(
      /device\.id "vm" is not the broker login fleet\.username "pi-b".*set device\.id: pi-b/,
    );
  });

  it('a login publishing as another device shows as a problem row with the reason', async () => {
    const { password } = fleet.addDevice('pi-c');
    const client = await connectMqtt(fleet.brokerUrl, 'pi-c', password, 4, clients);
    // aedes drops the connection of a QoS 1 publish it refuses.
    client.publish(topics.device('farm', 'vm', 'state'), Buffer.from('{}'), { qos: 1 });
    const rows = await until('the refusal on disk', () => problemsOnDisk('DEVICE_REFUSED').find((p) => p.device === 'pi-c'));
    expect(rows.message).toBe('login "pi-c" published as device "vm": the agent\'s device.id must be its login (set device.id: pi-c)');
  });

  it('a wrong password and a login never issued are problem rows saying which', async () => {
    fleet.addDevice('pi-d');
    await expect(connectMqtt(fleet.brokerUrl, 'pi-d', 'not-the-password', 4, clients)).rejects.toThrow();
    await expect(connectMqtt(fleet.brokerUrl, 'ghost', 'whatever', 4, clients)).rejects.toThrow();
    const rows = await until('two login refusals', () => {
      const r = problemsOnDisk('DEVICE_LOGIN_REFUSED');
      return r.length >= 2 && r;
    });
    expect(rows.find((p) => p.device === 'pi-d')!.message).toMatch(/^login refused: wrong password for "pi-d"/);
    expect(rows.find((p) => p.device === 'ghost')!.message).toMatch(/^login refused: no login was issued for "ghost"/);
  });

  it('a device that keeps losing its link is a problem row (once, not once per drop)', async () => {
    const { password } = fleet.addDevice('pi-e');
    for (let i = 0; i < 6; i++) {
      const client = await connectMqtt(fleet.brokerUrl, 'pi-e', password, 4, clients);
      await client.endAsync(true);
    }
    const rows = await until(
      'a flapping row',
      () => problemsOnDisk('DEVICE_FLAPPING').filter((p) => p.device === 'pi-e').length > 0 && problemsOnDisk('DEVICE_FLAPPING'),
    );
    expect(rows.filter((p) => p.device === 'pi-e')).toHaveLength(1);
    expect(rows[0]!.message).toMatch(/^device pi-e lost its link [56] times in 60 s/);
  });

  it('a device issued a login that never connected is listed as such', () => {
    fleet.addDevice('pi-never');
    const view = fleet.devices().find((d) => d.id === 'pi-never');
    expect(view).toMatchObject({ status: 'never-connected', online: false, lastSeen: null });
    expect(view!.issuedAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it('messages queued under an old device id are dropped with a log line when the id changes; the device then joins', async () => {
    const dir = join(tmp.path, 'renamed');
    // First run as "vm" against a broker that is not there: its state waits in the outbox.
    const offline = { ...fleet.addDevice('vm').fleet, url: 'mqtt://127.0.0.1:9' };
    const first = await Agent.start(agentConfig('vm', dir, offline));
    await feed(first, ['daisy', 'tulip'], 0, 3);
    expect((await first.train()).kept).toBe(true);
    await until('the head queued', () => (first.health().fleet as { queued: number }).queued === 2);
    await first.stop();
    const queued = () => {
      const db = new Database(join(dir, 'outbox.db'));
      try {
        return (db.prepare('SELECT topic FROM outbox ORDER BY seq').all() as { topic: string }[]).map((r) => r.topic);
      } finally {
        db.close();
      }
    };
    expect(queued()).toEqual(['edgetune/farm/device/vm/head', 'edgetune/farm/device/vm/state']);
    // Then the same data folder as "pi-f", with its own login.
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const second = await Agent.start(agentConfig('pi-f', dir, fleet.addDevice('pi-f').fleet), { log });
    try {
      expect(lines.find((l) => l.msg === 'outbox messages of another device id or fleet dropped')).toMatchObject({
        level: 'warn',
        dropped: 2,
        topics: ['edgetune/farm/device/vm/head', 'edgetune/farm/device/vm/state'],
      });
      await until('pi-f online', () => fleet.devices().find((d) => d.id === 'pi-f' && d.online));
      expect(queued().every((t) => t.startsWith('edgetune/farm/device/pi-f/'))).toBe(true);
      expect(problemsOnDisk('DEVICE_REFUSED').filter((p) => p.device === 'pi-f')).toEqual([]);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('"last seen" moves with every message: the state goes out again as a heartbeat', async () => {
    const dir = join(tmp.path, 'beat');
    const config = agentConfig('pi-g', dir, fleet.addDevice('pi-g').fleet);
    config.fleet!.heartbeatMs = 1000;
    const agent = await Agent.start(config);
    try {
      const first = await until('pi-g online', () => fleet.devices().find((d) => d.id === 'pi-g' && d.online)?.lastSeen);
      const later = await until('a heartbeat', () => {
        const seen = fleet.devices().find((d) => d.id === 'pi-g')!.lastSeen!;
        return seen > first && seen;
      });
      expect(later - first).toBeGreaterThanOrEqual(500);
      expect(fleet.registry.device('pi-g')!.state.vitals).toMatchObject({ target: `linux-${process.arch}` });
    } finally {
      await agent.stop();
    }
  }, 60_000);
});
