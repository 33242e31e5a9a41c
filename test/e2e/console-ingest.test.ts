import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { DeviceIngest } from '../../console/ingest.js';
import { Registry } from '../../console/registry.js';
import { FleetConsole } from '../../console/service.js';
import { PROTOCOL_VERSION, topics } from '../../runtime/sync/protocol.js';
import { connectMqtt } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// A burst of device states (a reconnect storm in small): written a run at a time in one transaction,
// each on disk before its device gets the PUBACK; a bad message in the burst is a problem and the rest
// are stored; the device table the API serves follows every change without being rebuilt per request.
const tmp = tempDir();
const N = 60;
const ids = Array.from({ length: N }, (_, i) => `pi-${String(i).padStart(2, '0')}`);
let fleet: FleetConsole;
let disk: Database.Database;
const clients: MqttClient[] = [];
const devices = new Map<string, MqttClient>();

const state = (id: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ protocol: PROTOCOL_VERSION, device: id, online: true, backbone: 'bench', dim: 8, ...extra }));
const onDisk = (id: string) => disk.prepare('SELECT state FROM devices WHERE id = ?').get(id) as { state: string } | undefined;

beforeAll(async () => {
  fleet = await FleetConsole.start({ dir: join(tmp.path, 'console'), fleet: 'farm', broker: { port: 0 } });
  const logins = ids.map((id) => fleet.addDevice(id));
  for (const [i, id] of ids.entries()) devices.set(id, await connectMqtt(fleet.brokerUrl, id, logins[i]!.password, 4, clients));
  // Another connection to the registry file: it sees only what was committed.
  disk = new Database(join(tmp.path, 'console', 'registry.db'), { readonly: true });
}, 60_000);

afterAll(async () => {
  disk?.close();
  for (const c of clients) c.end(true);
  await fleet?.stop();
  tmp.remove();
});

describe('device messages written in batches', () => {
  it('stores a burst of states in shared transactions, each on disk before its PUBACK; a bad one is a problem', async () => {
    const before = { ...fleet.ingest!.stats };
    const missingAtAck: string[] = [];
    await Promise.all(
      ids.map((id, i) => {
        const payload = i === 7 ? Buffer.from('{"protocol":1,"device":') : state(id, { vitals: { cpuTempC: 40 + i } });
        return devices
          .get(id)!
          .publishAsync(topics.device('farm', id, 'state'), payload, { qos: 1 })
          .then(() => {
            if (i !== 7 && !onDisk(id)?.state.includes(`"cpuTempC":${40 + i}`)) missingAtAck.push(id);
          });
      }),
    );
    expect(missingAtAck).toEqual([]);
    const stats = fleet.ingest!.stats;
    expect(stats.messages - before.messages).toBe(N);
    expect(stats.transactions - before.transactions).toBeLessThan(N);
    expect(stats.largestRun).toBeGreaterThan(1);
    expect(onDisk('pi-07')).toBeUndefined();
    const problems = disk.prepare('SELECT device, code, topic FROM problems').all();
    expect(problems).toContainEqual({ device: 'pi-07', code: 'SYNC_MALFORMED', topic: 'edgetune/farm/device/pi-07/state' });
    const views = fleet.devices();
    expect(views.filter((d) => d.status === 'online').map((d) => d.id)).toEqual(ids.filter((id) => id !== 'pi-07'));
    expect(views.find((d) => d.id === 'pi-07')?.status).toBe('never-connected');
    expect(views.find((d) => d.id === 'pi-12')?.cpuTempC).toBe(52);
  });

  it('keeps the device table current: a new state, tags, a new login and a last will show at once', async () => {
    await devices
      .get('pi-03')!
      .publishAsync(topics.device('farm', 'pi-03', 'state'), state('pi-03', { vitals: { cpuTempC: 77 } }), { qos: 1 });
    expect(fleet.devices().find((d) => d.id === 'pi-03')?.cpuTempC).toBe(77);
    fleet.registry.setTags('pi-04', ['north']);
    expect(fleet.devices().find((d) => d.id === 'pi-04')?.tags).toEqual(['north']);
    fleet.addDevice('pi-new');
    expect(fleet.devices().find((d) => d.id === 'pi-new')?.status).toBe('never-connected');
    const offline = Buffer.from(JSON.stringify({ protocol: PROTOCOL_VERSION, device: 'pi-05', online: false }));
    await devices.get('pi-05')!.publishAsync(topics.device('farm', 'pi-05', 'state'), offline, { qos: 1 });
    const pi5 = fleet.devices().find((d) => d.id === 'pi-05');
    expect(pi5?.status).toBe('offline');
    expect(pi5?.cpuTempC).toBe(45);
    await until('the view matches the registry', () => JSON.parse(onDisk('pi-05')!.state).online === false);
  });
});

describe('the acknowledgement waits for the write', () => {
  it('the embedded broker sends a PUBACK only when the console says the message is written', async () => {
    const credentials = new DeviceCredentials(join(tmp.path, 'gate.db'));
    const password = credentials.issue('pi-a');
    let release!: () => void;
    let arrived!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const delivered = new Promise<void>((resolve) => (arrived = resolve));
    const broker = await startBroker({
      fleet: 'farm',
      port: 0,
      credentials,
      console: { username: 'console', password: 'console-secret-123' },
      onDeviceMessage: () => {
        arrived();
        return gate;
      },
    });
    try {
      const device = await connectMqtt(broker.url, 'pi-a', password, 4, clients);
      let acked = false;
      const publish = device
        .publishAsync(topics.device('farm', 'pi-a', 'head'), Buffer.from('head'), { qos: 1 })
        .then(() => (acked = true));
      // The broker has the message; a round trip of another client later, still no PUBACK.
      await delivered;
      const other = await connectMqtt(broker.url, 'console', 'console-secret-123', 4, clients);
      await other.subscribeAsync(topics.allDevices('farm'), { qos: 1 });
      expect(acked).toBe(false);
      release();
      await publish;
      expect(acked).toBe(true);
    } finally {
      await broker.close();
      credentials.close();
    }
  });

  it('a batch that does not commit is not acted on, and every message of it is refused', async () => {
    const registry = new Registry(join(tmp.path, 'ingest-unit.db'));
    const effects: string[] = [];
    const failures: number[] = [];
    let failNext = false;
    const ingest = new DeviceIngest(
      (work) =>
        registry.transaction(() => {
          work();
          if (failNext) throw new Error('disk full');
        }),
      (_error, messages) => failures.push(messages),
    );
    const changed = ingest.deferring({ changed: (device: string) => effects.push(device) });
    ingest.attach((topic, payload) => {
      const device = topic.split('/')[3]!;
      registry.recordState(device, JSON.parse(payload.toString()) as Record<string, unknown>, 1, null);
      changed.changed(device);
    });
    const push = (device: string) => ingest.push(topics.device('farm', device, 'state'), state(device));
    await Promise.all([push('a'), push('b')]);
    expect(effects).toEqual(['a', 'b']);
    expect(registry.devices().map((d) => d.id)).toEqual(['a', 'b']);
    failNext = true;
    const results = await Promise.allSettled([push('c'), push('d')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(failures).toEqual([2]);
    expect(effects).toEqual(['a', 'b']);
    expect(registry.devices().map((d) => d.id)).toEqual(['a', 'b']);
    registry.close();
  });
});
