import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { decodeHeadMessage, encodeHeadMessage } from '../../runtime/sync/head-message.js';
import { topics } from '../../runtime/sync/protocol.js';
import { loadOrCreateFleetKey, publicKeyPem } from '../../runtime/sync/signing.js';
import { connectMqtt } from '../support/mqtt.js';
import { FLOWERS_DIR, MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// The real agent, synced with the console's embedded broker: it publishes the heads it keeps and
// applies only fleet heads signed by the fleet key, newer than what it has, for its own backbone.
const tmp = tempDir();
const credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
const consoleLogin = { username: 'console', password: 'console-secret-123' };
const fleetKey = loadOrCreateFleetKey(join(tmp.path, 'fleet.key'));
const attackerKey = loadOrCreateFleetKey(join(tmp.path, 'attacker.key'));
const deviceMessages: { topic: string; payload: Buffer }[] = [];
const clients: MqttClient[] = [];
let broker: RunningBroker;
let agent: Agent;
let consoleClient: MqttClient;

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  const password = credentials.issue('pi-1');
  broker = await startBroker({
    fleet: 'farm',
    port: 0,
    credentials,
    console: consoleLogin,
    onDeviceMessage: (m) => deviceMessages.push(m),
  });
  const publicKeyFile = join(tmp.path, 'fleet.pub');
  writeFileSync(publicKeyFile, publicKeyPem(fleetKey.publicKey));
  const config = AgentConfigSchema.parse({
    device: { id: 'pi-1' },
    data: { dir: join(tmp.path, 'data'), holdoutFraction: 0 },
    head: { retrainAfterLabels: 0 },
    http: { port: 0 },
    fleet: { url: broker.url, id: 'farm', username: 'pi-1', password, publicKeyFile },
  });
  agent = await Agent.start(config, { log: silentLogger });
  consoleClient = await connectMqtt(broker.url, consoleLogin.username, consoleLogin.password, 4, clients);
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  for (const c of clients) c.end(true);
  await broker?.close();
  credentials.close();
  tmp.remove();
});

const fleetHeadTopic = topics.fleetHead('farm');

describe('agent fleet sync over the embedded broker', () => {
  it('announces itself online, retained, and publishes every head it keeps', async () => {
    await until('online state', () => deviceMessages.find((m) => m.topic.endsWith('/state')));
    for (const c of ['daisy', 'sunflower']) {
      for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(0, 8))
        agent.ingest(readFileSync(join(FLOWERS_DIR, c, f)), c, 'upload');
    }
    const outcome = await agent.train();
    expect(outcome.kept).toBe(true);
    const message = await until('the device head at the console', () =>
      deviceMessages.find((m) => m.topic === topics.device('farm', 'pi-1', 'head')),
    );
    const deviceKey = loadOrCreateFleetKey(join(tmp.path, 'data', 'device.key'));
    const { header, head } = decodeHeadMessage(message.payload, {
      where: message.topic,
      publicKey: deviceKey.publicKey,
      backboneId: agent.backbone.id,
      dim: agent.backbone.dim,
    });
    expect(header).toMatchObject({ kind: 'device-head', fleet: 'farm', device: 'pi-1', version: outcome.version });
    expect(head.labels).toEqual(['daisy', 'sunflower']);
  });

  it('applies a signed, newer fleet head for its backbone as a new head version', async () => {
    const before = agent.currentHead!.meta.version;
    const deviceHead = agent.currentHead!;
    const fleetHead = deviceHead.withMeta({ labels: ['daisy', 'sunflower'] });
    await consoleClient.publishAsync(
      fleetHeadTopic,
      Buffer.from(
        encodeHeadMessage(
          fleetHead,
          { kind: 'fleet-head', fleet: 'farm', device: null, version: 5, id: 'fleet-000005' },
          fleetKey.privateKey,
        ),
      ),
      { qos: 1, retain: true },
    );
    await until('the fleet head applied', () => agent.currentHead?.meta.metrics.fleetVersion === 5);
    expect(agent.currentHead!.meta.version).toBe(before + 1);
    expect(agent.health().fleet).toMatchObject({ connected: true, applied: 1, lastFleetVersion: 5, refused: [] });
  });

  it('refuses a forged, an older and a wrong-backbone fleet head, and keeps its head', async () => {
    const head = agent.currentHead!;
    const publish = (bytes: Uint8Array) => consoleClient.publishAsync(fleetHeadTopic, Buffer.from(bytes), { qos: 1 });
    await publish(
      encodeHeadMessage(head, { kind: 'fleet-head', fleet: 'farm', device: null, version: 9, id: 'forged-000009' }, attackerKey.privateKey),
    );
    await publish(
      encodeHeadMessage(head, { kind: 'fleet-head', fleet: 'farm', device: null, version: 3, id: 'fleet-000003' }, fleetKey.privateKey),
    );
    const other = head.withMeta({ backboneId: 'mobilenet_v2_1.0_224_quant-cut-MobilenetV2_Logits_AvgPool' });
    await publish(
      encodeHeadMessage(other, { kind: 'fleet-head', fleet: 'farm', device: null, version: 10, id: 'fleet-000010' }, fleetKey.privateKey),
    );
    const fleet = await until('three refusals', () => {
      const status = agent.health().fleet as { refused: { code: string }[] };
      return status.refused.length >= 3 && status;
    });
    expect((fleet as { refused: { code: string }[] }).refused.map((r) => r.code)).toEqual([
      'SYNC_BAD_SIGNATURE',
      'SYNC_REPLAY',
      'SYNC_BACKBONE_MISMATCH',
    ]);
    expect(agent.currentHead).toBe(head);
  });
});
