import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetConsole } from '../../console/service.js';
import type { Agent } from '../../agent/agent.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { freeLoopbackPort } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// The broker goes down and comes back, again and again, while real agents train and publish heads:
// every head a device kept reaches the console's registry exactly once.
const tmp = tempDir();
const IDS = ['pi-1', 'pi-2', 'pi-3'];
let fleet: FleetConsole;
let agents: Agent[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({ dir: join(tmp.path, 'console'), fleet: 'farm', broker: { port: 0 }, minCanaryHoldout: 0 });
  agents = await Promise.all(IDS.map((id) => startFleetAgent(fleet, id, join(tmp.path, id))));
  await Promise.all(agents.map((agent, i) => feed(agent, ['daisy', 'tulip'], i * 4, 4)));
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await fleet?.stop();
  tmp.remove();
});

describe('fleet sync under broker restarts', () => {
  it('every head published across four broker restarts is stored once, none lost', async () => {
    const kept = new Map<string, number[]>(IDS.map((id) => [id, []]));
    const training = Promise.all(
      agents.map(async (agent, i) => {
        for (let round = 0; round < 6; round++) {
          await feed(agent, ['daisy', 'tulip'], 100 + i * 20 + round * 2, 2);
          const outcome = await agent.train();
          if (outcome.kept && outcome.version !== null) kept.get(IDS[i]!)!.push(outcome.version);
          await sleep(150);
        }
      }),
    );
    let restarts = 0;
    const restarting = (async () => {
      for (; restarts < 4; restarts++) {
        await sleep(350);
        await fleet.restartBroker();
      }
    })();
    await Promise.all([training, restarting]);
    expect(restarts).toBe(4);

    const versionsAt = (device: string) =>
      fleet.registry
        .deviceHeadIds()
        .filter((id) => id.startsWith(`${device}-head-`))
        .map((id) => Number(id.split('-')[3]))
        .sort((x, y) => x - y);
    await until('every kept head at the console', () => IDS.every((id) => versionsAt(id).length >= kept.get(id)!.length), 60_000);
    for (const id of IDS) {
      expect(kept.get(id)!.length).toBeGreaterThanOrEqual(4);
      expect(versionsAt(id)).toEqual(kept.get(id));
      expect(fleet.registry.deviceHeadCount(id)).toBe(kept.get(id)!.length);
    }
    // The outboxes drain (the last states follow the heads), and nothing more arrives.
    await until('every outbox empty', () => agents.every((agent) => (agent.health().fleet as { queued: number }).queued === 0), 30_000);
    for (const id of IDS) expect(fleet.registry.deviceHeadCount(id)).toBe(kept.get(id)!.length);
  }, 120_000);

  it('a head kept while the console was down, before the device ever connected, is stored when it comes up', async () => {
    const port = await freeLoopbackPort();
    const dir = join(tmp.path, 'late-console');
    const first = await FleetConsole.start({ dir, fleet: 'farm', broker: { host: '127.0.0.1', port }, minCanaryHoldout: 0 });
    const login = first.addDevice('pi-late').fleet;
    await first.stop();
    const late = await startFleetAgent(first, 'pi-late', join(tmp.path, 'pi-late'), {}, {}, login);
    try {
      await feed(late, ['daisy', 'tulip'], 0, 4);
      const outcome = await late.train();
      expect(outcome.kept).toBe(true);
      expect((late.health().fleet as { connected: boolean; queued: number }).connected).toBe(false);
      const again = await FleetConsole.start({ dir, fleet: 'farm', broker: { host: '127.0.0.1', port }, minCanaryHoldout: 0 });
      try {
        await until('the head stored', () => again.registry.deviceHeadCount('pi-late') === 1, 30_000);
        expect(again.registry.problems().filter((p) => p.device === 'pi-late')).toEqual([]);
      } finally {
        await again.stop();
      }
    } finally {
      await late.stop();
    }
  }, 60_000);
});
