import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, deviceSubscribeAllowed, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { topics } from '../../runtime/sync/protocol.js';
import { connectMqtt, headFromDeviceToConsole, nextEvent } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';

// The console's embedded broker (aedes, in-process) with real MQTT clients over TCP.
const tmp = tempDir();
const credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
const passwords = { a: credentials.issue('pi-a'), b: credentials.issue('pi-b') };
const consoleLogin = { username: 'console', password: 'console-secret-123' };
let broker: RunningBroker;
const clients: MqttClient[] = [];

const connect = (username: string, password: string) => connectMqtt(broker.url, username, password, 4, clients);

beforeAll(async () => {
  broker = await startBroker({ fleet: 'farm', port: 0, credentials, console: consoleLogin });
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await broker.close();
  credentials.close();
  tmp.remove();
});

describe('embedded broker: per-device credentials and ACLs', () => {
  it('lets a device publish its own head and the console receive it', async () => {
    const { topic, payload } = await headFromDeviceToConsole(connect, consoleLogin, passwords.a);
    expect(topic).toBe('edgetune/farm/device/pi-a/head');
    expect(payload).toBe('head bytes');
  });

  it('device A cannot publish to device B topics or send commands; the refusal is recorded', async () => {
    const console_ = await connect(consoleLogin.username, consoleLogin.password);
    await console_.subscribeAsync('edgetune/farm/#', { qos: 1 });
    const seen: string[] = [];
    console_.on('message', (topic) => seen.push(topic));
    const a = await connect('pi-a', passwords.a);
    // aedes drops the connection of a client whose publish is refused.
    const closed = nextEvent(a, 'close');
    a.publish(topics.device('farm', 'pi-b', 'head'), 'forged', { qos: 1 });
    await closed;
    const a2 = await connect('pi-a', passwords.a);
    const closed2 = nextEvent(a2, 'close');
    a2.publish(topics.device('farm', 'pi-a', 'cmd'), '{"cmd":"train"}', { qos: 1 });
    await closed2;
    // Nothing to wait for: this checks that no message arrives in the time one would.
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    expect(broker.refusals.filter((r) => r.action === 'publish').map((r) => `${r.device} ${r.topic}`)).toEqual([
      'pi-a edgetune/farm/device/pi-b/head',
      'pi-a edgetune/farm/device/pi-a/cmd',
    ]);
  });

  it('refuses wrong passwords and unknown devices, and subscriptions to other devices', async () => {
    await expect(connect('pi-a', passwords.b)).rejects.toThrow(/Bad username or password|Not authorized|connack/i);
    await expect(connect('pi-zz', 'whatever')).rejects.toThrow(/Bad username or password|Not authorized|connack/i);
    const b = await connect('pi-b', passwords.b);
    const granted = await b.subscribeAsync([topics.device('farm', 'pi-b', 'cmd'), topics.fleetHead('farm')], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1]);
    await expect(b.subscribeAsync(topics.device('farm', 'pi-a', 'cmd'), { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(
      broker.refusals.some((r) => r.action === 'subscribe' && r.device === 'pi-b' && r.topic === 'edgetune/farm/device/pi-a/cmd'),
    ).toBe(true);
  });

  it('subscription rules: fleet topics, blobs and own commands only', () => {
    expect(deviceSubscribeAllowed('farm', 'pi-a', 'edgetune/farm/fleet/head')).toBe(true);
    expect(deviceSubscribeAllowed('farm', 'pi-a', `edgetune/farm/blobs/${'a'.repeat(64)}/+`)).toBe(true);
    expect(deviceSubscribeAllowed('farm', 'pi-a', 'edgetune/farm/device/pi-a/cmd')).toBe(true);
    expect(deviceSubscribeAllowed('farm', 'pi-a', 'edgetune/farm/device/+/head')).toBe(false);
    expect(deviceSubscribeAllowed('farm', 'pi-a', 'edgetune/farm/#')).toBe(false);
    expect(deviceSubscribeAllowed('farm', 'pi-a', 'edgetune/other/fleet/head')).toBe(false);
  });
});

describe('embedded broker: failed logins', () => {
  it('answers a wrong password and an unknown login alike, backs off per address, and never delays a good login', async () => {
    const guarded = await startBroker({ fleet: 'farm', port: 0, credentials, console: consoleLogin, logins: { baseDelayMs: 100 } });
    const others: MqttClient[] = [];
    const attempt = async (username: string, password: string) => {
      const started = Date.now();
      await expect(connectMqtt(guarded.url, username, password, 4, others)).rejects.toThrow(/Bad username or password|connack/i);
      return Date.now() - started;
    };
    try {
      const waited = [await attempt('pi-a', 'wrong'), await attempt('pi-zz', 'wrong'), await attempt('pi-a', 'wrong')];
      expect(guarded.refusals.map((r) => r.reason)).toEqual([
        'bad username or password from 127.0.0.1; answered after 100 ms',
        'bad username or password from 127.0.0.1; answered after 200 ms',
        'bad username or password from 127.0.0.1; answered after 400 ms',
      ]);
      waited.forEach((ms, i) => expect(ms).toBeGreaterThanOrEqual(100 * 2 ** i - 5));
      const good = await connectMqtt(guarded.url, 'pi-b', passwords.b, 4, others);
      expect(good.connected).toBe(true);
    } finally {
      for (const c of others) c.end(true);
      await guarded.close();
    }
  });
});
