import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { DeviceCredentials } from '../../console/credentials.js';
import { FleetConsole } from '../../console/service.js';
import type { Agent } from '../../agent/agent.js';
import { encodeHeadMessage } from '../../runtime/sync/head-message.js';
import { topics } from '../../runtime/sync/protocol.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { type RunningMosquitto, startMosquitto } from '../support/mosquitto.js';
import { connectMqtt } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { until } from '../support/until.js';

// The console on a real mosquitto process (MQTT 5), two real agents: heads go up and fleet heads come
// down; forged, replayed and wrong-backbone heads are refused and reported on both sides; a device
// cannot speak for another.
const tmp = tempDir();
const consoleLogin = { username: 'console', password: 'console-secret-456' };
const CLASSES = ['daisy', 'rose', 'tulip'];
let mosquitto: RunningMosquitto;
let fleet: FleetConsole;
let a: Agent;
let b: Agent;
let passwordA = '';
const clients: MqttClient[] = [];
const attacker = generateKeyPairSync('ed25519');

type FleetStatus = { refused: { code: string }[]; lastFleetVersion: number | null };
const fleetStatus = (agent: Agent) => agent.health().fleet as FleetStatus;

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  const consoleDir = join(tmp.path, 'console');
  mkdirSync(consoleDir, { recursive: true });
  const credentials = new DeviceCredentials(join(consoleDir, 'registry.db'));
  mosquitto = await startMosquitto(join(tmp.path, 'mosquitto'), 'farm', credentials, consoleLogin);
  fleet = await FleetConsole.start({
    dir: consoleDir,
    fleet: 'farm',
    externalBroker: { url: mosquitto.url, ...consoleLogin, protocolVersion: 5 },
    commandTimeoutMs: 20_000,
    minCanaryHoldout: 0,
  });
  const loginA = fleet.addDevice('pi-a').fleet;
  const loginB = fleet.addDevice('pi-b').fleet;
  passwordA = loginA.password;
  await mosquitto.reload(loginA);
  credentials.close();
  const mqtt5 = { protocolVersion: 5 };
  [a, b] = await Promise.all([
    startFleetAgent(fleet, 'pi-a', join(tmp.path, 'pi-a'), mqtt5, {}, loginA),
    startFleetAgent(fleet, 'pi-b', join(tmp.path, 'pi-b'), mqtt5, {}, loginB),
  ]);
  await Promise.all([feed(a, CLASSES, 0, 8), feed(b, CLASSES, 8, 8)]);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await Promise.all([a?.stop(), b?.stop()]);
  await fleet?.stop();
  await mosquitto?.stop();
  tmp.remove();
});

describe('fleet sync through mosquitto (MQTT 5)', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  step('carries device heads to the console and the merged fleet head back to every device', async () => {
    await Promise.all([a.train(), b.train()]);
    await until(
      'both device heads in the registry',
      () => fleet.registry.deviceHeadCount('pi-a') === 1 && fleet.registry.deviceHeadCount('pi-b') === 1,
    );
    const result = await fleet.mergeAndRollout();
    expect(result).toMatchObject({ version: 1, status: 'released', merged: ['pi-a', 'pi-b'] });
    await until(
      'both devices on fleet head v1',
      () => a.currentHead?.meta.metrics.fleetVersion === 1 && b.currentHead?.meta.metrics.fleetVersion === 1,
    );
    expect(a.currentHead!.labels).toEqual(CLASSES);
    await until('the console sees both on v1', () => fleet.devices().every((d) => d.fleetVersion === 1));
  });

  step('devices refuse a forged, a replayed and a wrong-backbone fleet head, and report it', async () => {
    const v1 = fleet.registry.fleetHead(1)!.message;
    await fleet.mergeAndRollout();
    await until(
      'both devices on fleet head v2',
      () => a.currentHead?.meta.metrics.fleetVersion === 2 && b.currentHead?.meta.metrics.fleetVersion === 2,
    );
    const heads = [a.currentHead, b.currentHead];
    // Someone with the console's broker login but not its signing key.
    const intruder = await connectMqtt(mosquitto.url, consoleLogin.username, consoleLogin.password, 5, clients);
    const head = a.currentHead!;
    const publish = (bytes: Uint8Array) => intruder.publishAsync(topics.fleetHead('farm'), Buffer.from(bytes), { qos: 1 });
    await publish(
      encodeHeadMessage(head, { kind: 'fleet-head', fleet: 'farm', device: null, version: 9, id: 'forged-9' }, attacker.privateKey),
    );
    await publish(v1);
    const otherBackbone = head.withMeta({ backboneId: 'mobilenet_v2_1.0_224_quant-cut-MobilenetV2_Logits_AvgPool' });
    await publish(
      encodeHeadMessage(
        otherBackbone,
        { kind: 'fleet-head', fleet: 'farm', device: null, version: 10, id: 'fleet-10' },
        fleet.keys.privateKey,
      ),
    );
    for (const agent of [a, b]) {
      const status = await until('three refusals', () => fleetStatus(agent).refused.length >= 3 && fleetStatus(agent));
      expect(status.refused.map((r) => r.code)).toEqual(['SYNC_BAD_SIGNATURE', 'SYNC_REPLAY', 'SYNC_BACKBONE_MISMATCH']);
      expect(status.lastFleetVersion).toBe(2);
    }
    expect([a.currentHead, b.currentHead]).toEqual(heads);
    // The console's login is its client id: the intruder took the console's connection over. It goes,
    // and the console reconnects by itself and answers again.
    intruder.end(true);
    let back = false;
    while (!back)
      back = await fleet.command('pi-b', 'state', {}, 2000).then(
        () => true,
        () => false,
      );
  });

  step('the console refuses a device head not signed by the device key it pinned, and reports it', async () => {
    // The impostor holds pi-a's login; the login is the client id, so pi-a itself goes offline first.
    await a.stop();
    const before = fleet.registry.deviceHeadCount('pi-a');
    const impostor = await connectMqtt(mosquitto.url, 'pi-a', passwordA, 5, clients);
    const forged = encodeHeadMessage(
      a.currentHead!,
      { kind: 'device-head', fleet: 'farm', device: 'pi-a', version: 99, id: 'pi-a-forged-99' },
      attacker.privateKey,
    );
    await impostor.publishAsync(topics.device('farm', 'pi-a', 'head'), Buffer.from(forged), { qos: 1 });
    const problem = await until('the problem reported', () =>
      fleet.registry.problems().find((p) => p.device === 'pi-a' && p.topic.endsWith('/head')),
    );
    expect(problem.code).toBe('SYNC_BAD_SIGNATURE');
    expect(problem.message).toContain('edgetune/farm/device/pi-a/head');
    expect(fleet.registry.deviceHeadCount('pi-a')).toBe(before);
  });

  step('device A cannot publish on device B topics: the broker refuses, nothing reaches the console', async () => {
    const before = fleet.registry.deviceHeadCount('pi-b');
    const impostor = await connectMqtt(mosquitto.url, 'pi-a', passwordA, 5, clients);
    const forged = encodeHeadMessage(
      b.currentHead!,
      { kind: 'device-head', fleet: 'farm', device: 'pi-b', version: 99, id: 'pi-b-forged-99' },
      attacker.privateKey,
    );
    await expect(impostor.publishAsync(topics.device('farm', 'pi-b', 'head'), Buffer.from(forged), { qos: 1 })).rejects.toThrow(
      /Not authorized|135/i,
    );
    await expect(
      impostor.publishAsync(topics.device('farm', 'pi-b', 'state'), Buffer.from('{"online":false}'), { qos: 1, retain: true }),
    ).rejects.toThrow(/Not authorized|135/i);
    // Nothing to wait for: this checks that the refused messages change nothing in the time they would.
    await new Promise((r) => setTimeout(r, 300));
    expect(fleet.registry.deviceHeadCount('pi-b')).toBe(before);
    expect(fleet.devices().find((d) => d.id === 'pi-b')!.online).toBe(true);
  });
});
