import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetConsole } from '../../console/service.js';
import type { Agent } from '../../agent/agent.js';
import { encodeHeadMessage } from '../../runtime/sync/head-message.js';
import { topics } from '../../runtime/sync/protocol.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { connectMqtt } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// Garbage on every topic the console and the agent read: random bytes, a truncated message, a message
// of another protocol version, a huge one. Each is one clear refusal naming the topic; nothing crashes
// and nothing stored changes.
const tmp = tempDir();
let fleet: FleetConsole;
let agent: Agent;
let device: MqttClient;
let login: ReturnType<FleetConsole['addDevice']>['fleet'];
const clients: MqttClient[] = [];

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({
    dir: join(tmp.path, 'console'),
    fleet: 'farm',
    broker: { port: 0 },
    commandTimeoutMs: 20_000,
    minCanaryHoldout: 0,
  });
  login = fleet.addDevice('pi-1').fleet;
  agent = await startFleetAgent(fleet, 'pi-1', join(tmp.path, 'pi-1'), {}, {}, login);
  await feed(agent, ['daisy', 'rose'], 0, 6);
  await agent.train();
  await until('the device head stored', () => fleet.registry.deviceHeadCount('pi-1') === 1);
  await fleet.mergeAndRollout();
  await until('the fleet head applied', () => fleet.devices()[0]?.fleetVersion === 1 && fleet.devices()[0]?.perClass.rose === 6);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await agent?.stop();
  await fleet?.stop();
  tmp.remove();
});

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const huge = (bytes: number) => Buffer.concat([Buffer.from('{"protocol":1,"pad":"'), Buffer.alloc(bytes, 'x'), Buffer.from('"}')]);

/** The four bad payloads for a topic, from one good one. */
function badPayloads(good: Buffer, wrongVersion: Buffer): [string, Buffer][] {
  return [
    ['random bytes', randomBytes(300)],
    ['truncated', good.subarray(0, Math.floor(good.length / 2))],
    ['wrong version', wrongVersion],
    ['huge', huge(1536 * 1024)],
  ];
}

describe('malformed payloads', () => {
  it('on the console topics (state, head, events, cmd/response): a problem naming the topic, nothing changes', async () => {
    // Someone holding pi-1's broker login, sending what pi-1 may send. The client id is the login, so
    // while it is connected the agent is not: stop it first.
    const current = agent.currentHead!;
    await agent.stop();
    await until('pi-1 offline', () => fleet.devices()[0]?.online === false);
    device = await connectMqtt(fleet.brokerUrl, 'pi-1', login.password, 4, clients);
    const before = fleet.devices();
    const headsBefore = fleet.registry.deviceHeadCount();
    const headMessage = Buffer.from(
      encodeHeadMessage(
        current,
        { kind: 'device-head', fleet: 'farm', device: 'pi-1', version: 50, id: 'pi-1-test-50' },
        fleet.keys.privateKey,
      ),
    );
    const v2 = Buffer.from(headMessage);
    v2.writeUInt16LE(2, 4);
    const cases: Record<string, [Buffer, Buffer]> = {
      state: [
        json({ protocol: 1, device: 'pi-1', online: true, backbone: 'x', dim: 4 }),
        json({ protocol: 2, device: 'pi-1', online: true }),
      ],
      head: [headMessage, v2],
      events: [json({ protocol: 1, holdoutAccuracy: 0.5 }), json({ protocol: 2, holdoutAccuracy: 0.5 })],
      'cmd/response': [
        json({ protocol: 1, id: 'x', device: 'pi-1', ok: true, result: {} }),
        json({ protocol: 2, id: 'x', device: 'pi-1', ok: true }),
      ],
    };
    const seen: string[] = [];
    for (const [channel, [good, wrongVersion]] of Object.entries(cases)) {
      const topic = topics.device('farm', 'pi-1', channel as 'state');
      for (const [what, payload] of badPayloads(good, wrongVersion)) {
        const count = fleet.registry.problems(10_000).length;
        await device.publishAsync(topic, payload, { qos: 1 });
        const problem = await until(
          `a problem for ${what} on ${channel}`,
          () => fleet.registry.problems(10_000).length > count && fleet.registry.problems(1)[0],
        );
        expect(problem.topic).toBe(topic);
        expect(problem.message.length).toBeLessThan(600);
        seen.push(`${channel} ${what}: ${problem.code}`);
      }
    }
    expect(seen).toEqual([
      'state random bytes: SYNC_MALFORMED',
      'state truncated: SYNC_MALFORMED',
      'state wrong version: SYNC_PROTOCOL_VERSION',
      'state huge: SYNC_MALFORMED',
      'head random bytes: SYNC_MALFORMED',
      'head truncated: SYNC_BAD_SIGNATURE',
      'head wrong version: SYNC_PROTOCOL_VERSION',
      'head huge: SYNC_MALFORMED',
      'events random bytes: SYNC_MALFORMED',
      'events truncated: SYNC_MALFORMED',
      'events wrong version: SYNC_PROTOCOL_VERSION',
      'events huge: SYNC_MALFORMED',
      'cmd/response random bytes: SYNC_MALFORMED',
      'cmd/response truncated: SYNC_MALFORMED',
      'cmd/response wrong version: SYNC_PROTOCOL_VERSION',
      'cmd/response huge: SYNC_MALFORMED',
    ]);
    const strip = (views: typeof before) => views.map(({ lastSeen: _l, ...rest }) => rest);
    expect(strip(fleet.devices())).toEqual(strip(before));
    expect(fleet.registry.deviceHeadCount()).toBe(headsBefore);
    // Still at work: the device, back, answers a command through it.
    device.end(true);
    agent = await startFleetAgent(fleet, 'pi-1', join(tmp.path, 'pi-1'), {}, {}, login);
    await until('pi-1 back online', () => fleet.devices()[0]?.online === true);
    expect(await fleet.command('pi-1', 'state')).toMatchObject({ headVersion: current.meta.version });
  }, 60_000);

  it('on the agent topics (fleet head, cmd): a refusal naming the topic, the head stays, commands still work', async () => {
    const head = agent.currentHead!;
    const fleetHead = fleet.registry.fleetHead(1)!.message;
    const v2 = Buffer.from(fleetHead);
    v2.writeUInt16LE(2, 4);
    const command = json({ protocol: 1, id: 'c-1', cmd: 'state', args: {} });
    const cases: [string, Buffer, Buffer][] = [
      [topics.fleetHead('farm'), fleetHead, v2],
      [topics.device('farm', 'pi-1', 'cmd'), command, json({ protocol: 2, id: 'c-2', cmd: 'state', args: {} })],
    ];
    const refusals = () => (agent.health().fleet as { refused: { code: string; reason: string }[] }).refused;
    const seen: string[] = [];
    let total = 0;
    for (const [topic, good, wrongVersion] of cases) {
      for (const [what, payload] of badPayloads(good, wrongVersion)) {
        await fleet.publish(topic, payload);
        total++;
        const refusal = await until(
          `a refusal for ${what} on ${topic}`,
          () => (agent.health().fleet as { refused: unknown[] }).refused.length >= Math.min(total, 10) && refusals().at(-1),
        );
        expect(refusal.reason).toContain(topic);
        seen.push(`${topic.split('/').slice(-1)[0]} ${what}: ${refusal.code}`);
      }
    }
    expect(seen).toEqual([
      'head random bytes: SYNC_MALFORMED',
      'head truncated: SYNC_BAD_SIGNATURE',
      'head wrong version: SYNC_PROTOCOL_VERSION',
      'head huge: SYNC_MALFORMED',
      'cmd random bytes: SYNC_MALFORMED',
      'cmd truncated: SYNC_MALFORMED',
      'cmd wrong version: SYNC_PROTOCOL_VERSION',
      'cmd huge: SYNC_MALFORMED',
    ]);
    expect(agent.currentHead).toBe(head);
    expect(await fleet.command('pi-1', 'state')).toMatchObject({ headVersion: head.meta.version });
  }, 60_000);
});
