import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { FleetConsole } from '../../console/service.js';
import { type ConsoleWeb, startConsoleWeb } from '../../console/web.js';
import { decodeAgentUpdate } from '../../runtime/sync/agent-update.js';
import { topics } from '../../runtime/sync/protocol.js';
import { runCli } from '../support/cli.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { connectMqtt } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { tinyBundle } from '../support/tiny-bundle.js';
import { until } from '../support/until.js';

// Rollouts to a tag, with real agents: a fleet head merged from every device goes only to the devices
// tagged "north" (canaries among them first, the rest by command), and the retained fleet head that
// every device takes stays as it was, across a broker restart too; an agent update's manifest names the
// tagged devices only.
const tmp = tempDir();
const CLASSES = ['daisy', 'sunflower'];
let fleet: FleetConsole;
let web: ConsoleWeb;
const agents = new Map<string, Agent>();
const clients: MqttClient[] = [];

const post = async (path: string, body: unknown) => {
  const res = await fetch(`${web.origin}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${web.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const fleetVersionOf = (id: string) => agents.get(id)!.currentHead?.meta.metrics.fleetVersion ?? null;

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  const dir = join(tmp.path, 'console');
  fleet = await FleetConsole.start({ dir, fleet: 'farm', broker: { port: 0 }, commandTimeoutMs: 20_000, minCanaryHoldout: 0 });
  web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(dir, 'web-token') });
  writeFileSync(join(dir, 'web.json'), JSON.stringify({ origin: web.origin }));
  writeFileSync(join(dir, 'console.json'), JSON.stringify({ fleet: 'farm' }));
  for (const [i, id] of ['pi-n1', 'pi-n2', 'pi-s1'].entries()) {
    const agent = await startFleetAgent(fleet, id, join(tmp.path, id));
    agents.set(id, agent);
    await feed(agent, CLASSES, i * 4, 4);
    await agent.train();
  }
  expect((await post('/api/devices/pi-n1/tags', { tags: ['north'] })).status).toBe(200);
  const tagged = await runCli(['console', 'tag', 'pi-n2', 'north', '--json', '--dir', dir]);
  expect(JSON.parse(tagged.stdout)).toEqual({ device: 'pi-n2', tags: ['north'] });
  await until('three device heads stored', () => fleet.registry.deviceHeadCount() === 3);
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await web?.close();
  await fleet?.stop();
  tmp.remove();
});

describe('rollouts to a tag', () => {
  it('a fleet head for a tag reaches only its devices; the retained fleet head stays as it was', async () => {
    const cli = await runCli(['console', 'merge', '--tag', 'north', '--canary', 'pi-n1', '--dir', join(tmp.path, 'console')]);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(
      /^fleet head v1 from pi-n1, pi-n2, pi-s1: released-to-tag\ncanaries: 1 of 1 done in [\d.]+ s\nfleet: 2 of 2 done in /,
    );
    expect(fleetVersionOf('pi-n1')).toBe(1);
    expect(fleetVersionOf('pi-n2')).toBe(1);
    expect(fleetVersionOf('pi-s1')).toBeNull();
    expect(fleet.registry.fleetHead(1)).toMatchObject({ status: 'released-to-tag', note: 'released to the devices tagged "north"' });
    expect(fleet.registry.releasedFleetHeads()).toEqual([]);
    // A broker that forgets its retained messages gets the released head again: there is none, so the
    // untagged device still has none after it reconnects.
    await fleet.restartBroker();
    await until('pi-s1 back online', () => fleet.devices().find((d) => d.id === 'pi-s1')?.online === true);
    const probe = fleet.addDevice('probe');
    const watcher = await connectMqtt(fleet.brokerUrl, 'probe', probe.password, 4, clients);
    const retained: Buffer[] = [];
    watcher.on('message', (_t, payload) => retained.push(payload));
    await watcher.subscribeAsync(topics.fleetHead('farm'), { qos: 1 });
    await watcher.publishAsync(topics.device('farm', 'probe', 'events'), Buffer.from('{}'), { qos: 1 });
    expect(retained).toEqual([]);
    expect(fleetVersionOf('pi-s1')).toBeNull();

    // A head for every device afterwards: v2, retained, applied by all three.
    const all = await post('/api/merge', {});
    expect(all.body).toMatchObject({ version: 2, status: 'released' });
    await until('every device on v2', () => ['pi-n1', 'pi-n2', 'pi-s1'].every((id) => fleetVersionOf(id) === 2), 30_000);
    expect((await post('/api/merge', { tag: 'south' })).body).toMatchObject({
      code: 'CONSOLE_NO_DEVICES',
      error: 'no device has the tag "south"',
    });
    expect((await post('/api/merge', { tag: 'bad tag' })).status).toBe(400);
  }, 90_000);

  it('an agent update for a tag names only the tagged devices in its signed manifest', async () => {
    const bundle = tinyBundle(join(tmp.path, 'bundles'));
    const report = await fleet.pushAgentUpdate(bundle.file, { tag: 'north', stageTimeoutMs: 2000 });
    // These agents run from a checkout: named as unable, the untagged one not at all.
    expect(report.unable.map((u) => u.device)).toEqual(['pi-n1', 'pi-n2']);
    const probe = fleet.addDevice('probe-2');
    const watcher = await connectMqtt(fleet.brokerUrl, 'probe-2', probe.password, 4, clients);
    const manifest = new Promise<Buffer>((resolve) => watcher.once('message', (_topic, payload) => resolve(payload)));
    await watcher.subscribeAsync(topics.fleetAgent('farm'), { qos: 1 });
    const payload = await manifest;
    const update = decodeAgentUpdate(payload, { where: 'retained manifest', publicKey: fleet.keys.publicKey, fleet: 'farm' });
    expect(update).toMatchObject({ version: '0.2.0', devices: ['pi-n1', 'pi-n2'] });
  }, 60_000);
});
