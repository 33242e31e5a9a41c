import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { DEVICE_ACL } from '../../runtime/sync/acl.js';
import { type RunningMosquitto, startMosquitto } from '../support/mosquitto.js';
import { connectMqtt } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// One contract, both brokers: the ACL in runtime/sync/acl.ts is what a device can do on the embedded
// broker and on mosquitto, judged by what the console receives and what subscriptions are granted.
const f = 'edgetune/farm';
const PUBLISH: [string, boolean][] = [
  [`${f}/device/pi-a/state`, true],
  [`${f}/device/pi-a/head`, true],
  [`${f}/device/pi-a/events`, true],
  [`${f}/device/pi-a/cmd/response`, true],
  [`${f}/device/pi-a/cmd`, false],
  [`${f}/device/pi-b/head`, false],
  [`${f}/fleet/head`, false],
  [`${f}/fleet/agent`, false],
  [`${f}/blobs/${'a'.repeat(64)}/0`, false],
  ['edgetune/other/device/pi-a/head', false],
];
/** [filter, a topic it matches, may the device read it] */
const SUBSCRIBE: [string, string, boolean][] = [
  [`${f}/device/pi-a/cmd`, `${f}/device/pi-a/cmd`, true],
  [`${f}/fleet/head`, `${f}/fleet/head`, true],
  [`${f}/fleet/backbone`, `${f}/fleet/backbone`, true],
  [`${f}/fleet/agent`, `${f}/fleet/agent`, true],
  [`${f}/blobs/${'a'.repeat(64)}/+`, `${f}/blobs/${'a'.repeat(64)}/3`, true],
  [`${f}/device/pi-b/cmd`, `${f}/device/pi-b/cmd`, false],
  [`${f}/device/+/head`, `${f}/device/pi-b/head`, false],
  [`${f}/fleet/#`, `${f}/fleet/other`, false],
  [`${f}/#`, `${f}/device/pi-b/state`, false],
  ['#', `${f}/device/pi-b/events`, false],
];

describe.each(['embedded', 'mosquitto'] as const)('broker contract (%s)', (kind) => {
  const tmp = tempDir();
  const consoleLogin = { username: 'console-contract', password: 'console-contract-secret' };
  const credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
  const password = credentials.issue('pi-a');
  credentials.issue('pi-b');
  let embedded: RunningBroker | undefined;
  let mosquitto: RunningMosquitto | undefined;
  let url = '';
  const clients: MqttClient[] = [];
  const version = kind === 'mosquitto' ? 5 : 4;

  beforeAll(async () => {
    if (kind === 'embedded') {
      embedded = await startBroker({ fleet: 'farm', port: 0, credentials, console: consoleLogin });
      url = embedded.url;
    } else {
      mosquitto = await startMosquitto(join(tmp.path, 'mosquitto'), 'farm', credentials, consoleLogin);
      url = mosquitto.url;
    }
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await embedded?.close();
    await mosquitto?.stop();
    credentials.close();
    tmp.remove();
  });

  it('a device publishes only on its own device topics, never commands', async () => {
    const watcher = await connectMqtt(url, consoleLogin.username, consoleLogin.password, version, clients);
    const received = new Set<string>();
    watcher.on('message', (topic) => received.add(topic));
    await watcher.subscribeAsync(['edgetune/#'], { qos: 1 });
    for (const [topic] of PUBLISH) {
      // The embedded broker drops a client whose publish it refuses: one connection per attempt.
      const device = await connectMqtt(url, 'pi-a', password, version, clients);
      await Promise.race([
        device.publishAsync(topic, Buffer.from('x'), { qos: 1 }).catch(() => undefined),
        new Promise<void>((resolve) => device.once('close', () => resolve())),
      ]);
      device.end(true);
    }
    await watcher.publishAsync(`${f}/device/pi-a/state`, Buffer.from('marker'), { qos: 1 });
    await until('the marker', () => received.size > 0 && [...received].includes(`${f}/device/pi-a/state`));
    expect(PUBLISH.filter(([topic]) => received.has(topic)).map(([topic]) => topic)).toEqual(
      PUBLISH.filter(([, ok]) => ok).map(([t]) => t),
    );
  });

  it('a device reads only fleet topics, blobs and its own commands', async () => {
    const publisher = await connectMqtt(url, consoleLogin.username, consoleLogin.password, version, clients);
    const readable: [string, string, boolean][] = [];
    for (const [filter, sample] of SUBSCRIBE) {
      const device = await connectMqtt(url, 'pi-a', password, version, clients);
      const got: string[] = [];
      device.on('message', (_topic, payload: Buffer) => got.push(payload.toString()));
      await device.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
      await device.subscribeAsync(`${f}/device/pi-a/cmd`, { qos: 1 });
      await publisher.publishAsync(sample, Buffer.from('sample'), { qos: 1 });
      await publisher.publishAsync(`${f}/device/pi-a/cmd`, Buffer.from('marker'), { qos: 1 });
      await until(`the marker after ${filter}`, () => got.includes('marker'));
      readable.push([filter, sample, got.includes('sample')]);
      device.end(true);
    }
    expect(readable).toEqual(SUBSCRIBE);
  });

  it('the ACL is the one list both brokers are made from', () => {
    expect(DEVICE_ACL.filter((r) => r.access === 'write').map((r) => r.topic)).toEqual([
      'device/%u/state',
      'device/%u/head',
      'device/%u/events',
      'device/%u/cmd/response',
    ]);
  });
});
