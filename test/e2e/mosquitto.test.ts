import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceCredentials } from '../../console/credentials.js';
import { DeviceLink } from '../../runtime/sync/link.js';
import { Outbox } from '../../runtime/sync/outbox.js';
import { topics } from '../../runtime/sync/protocol.js';
import { type RunningMosquitto, startMosquitto } from '../support/mosquitto.js';
import { connectMqtt, headFromDeviceToConsole } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// A real mosquitto process with the config, password file and ACL the console writes.
const tmp = tempDir();
const credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
const passwords = { a: credentials.issue('pi-a'), b: credentials.issue('pi-b') };
const consoleLogin = { username: 'console', password: 'console-secret-123' };
let broker: RunningMosquitto;
let url = '';
const clients: MqttClient[] = [];

const connect = (username: string, password: string) => connectMqtt(url, username, password, 5, clients);

beforeAll(async () => {
  broker = await startMosquitto(tmp.path, 'farm', credentials, consoleLogin);
  url = broker.url;
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await broker?.stop();
  credentials.close();
  tmp.remove();
});

describe('mosquitto with the console-written ACL (MQTT 5)', () => {
  it('carries a device head to the console', async () => {
    const { topic, payload } = await headFromDeviceToConsole(connect, consoleLogin, passwords.a);
    expect(topic).toBe('edgetune/farm/device/pi-a/head');
    expect(payload).toBe('head bytes');
  });

  it('device A cannot publish to device B topics or send commands', async () => {
    const console_ = await connect(consoleLogin.username, consoleLogin.password);
    await console_.subscribeAsync('edgetune/farm/#', { qos: 1 });
    const seen: string[] = [];
    console_.on('message', (topic) => seen.push(topic));
    const a = await connect('pi-a', passwords.a);
    // MQTT 5: the broker answers a refused QoS 1 publish with reason code 135 (not authorized).
    await expect(a.publishAsync(topics.device('farm', 'pi-b', 'head'), 'forged', { qos: 1 })).rejects.toThrow(/Not authorized|135/i);
    await expect(a.publishAsync(topics.device('farm', 'pi-a', 'cmd'), '{"cmd":"train"}', { qos: 1 })).rejects.toThrow(
      /Not authorized|135/i,
    );
    await a.publishAsync(topics.device('farm', 'pi-a', 'state'), '{"online":true}', { qos: 1 });
    // The allowed message comes after the refused ones on the same connection: once it is in, they would be too.
    await until('the allowed state message', () => seen.length > 0);
    expect(seen).toEqual(['edgetune/farm/device/pi-a/state']);
  });

  it('a device link drops a message the broker refuses instead of blocking its outbox', async () => {
    const console_ = await connect(consoleLogin.username, consoleLogin.password);
    await console_.subscribeAsync(topics.allDevices('farm'), { qos: 1 });
    const seen: string[] = [];
    console_.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    const events: string[] = [];
    const outbox = new Outbox(join(tmp.path, 'outbox.db'));
    const link = new DeviceLink(outbox, {
      url,
      username: 'pi-b',
      password: passwords.b,
      protocolVersion: 5,
      onEvent: (e) => events.push(e.msg),
    });
    try {
      link.send(topics.device('farm', 'pi-a', 'head'), Buffer.from('not mine'));
      link.send(topics.device('farm', 'pi-b', 'head'), Buffer.from('mine'));
      link.start();
      await until('the allowed message', () => seen.length > 0 && outbox.size === 0);
      expect(seen).toEqual(['edgetune/farm/device/pi-b/head mine']);
      expect(events).toContain('broker refused a message to edgetune/farm/device/pi-a/head; dropped');
    } finally {
      await link.stop();
      outbox.close();
    }
  });

  it('refuses a wrong password and an unknown device', async () => {
    await expect(connect('pi-a', passwords.b)).rejects.toThrow(/Bad User Name or Password|Not authorized|connack/i);
    await expect(connect('pi-zz', 'whatever')).rejects.toThrow(/Bad User Name or Password|Not authorized|connack/i);
  });
});
