import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeHead } from '../../runtime/head/index.js';
import { SampleStore } from '../../runtime/samples/store.js';
import { type AgentProcess, startAgentProcess, writeAgentConfig } from '../support/agent-process.js';
import { FLOWERS_DIR, tempDir } from '../support/paths.js';
import { jsonClient } from '../support/json-client.js';
import { story } from '../support/story.js';
import { until } from '../support/until.js';

// The agent is a real `edgetune agent` process killed with SIGKILL, like a Pi losing power.
const tmp = tempDir();
const dataDir = join(tmp.path, 'data');
const configPath = writeAgentConfig(tmp.path, {
  device: { id: 'crash-pi', profile: 'generic-x64' },
  data: { dir: dataDir },
  model: { workers: 1 },
  head: { retrainAfterLabels: 0, tolerance: 1 },
  http: { port: 0 },
});
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
let agent: AgentProcess | undefined;
afterAll(async () => {
  await agent?.kill();
  tmp.remove();
});

const call = jsonClient(() => agent!.url);

/** Opens the store the dead agent left, checks it, and returns labels and the current head version. */
function inspectStore(): { labels: Map<string, string>; headVersion: number | null } {
  const store = SampleStore.open(dataDir); // runs SQLite's quick_check; throws STORE_CORRUPT otherwise
  try {
    const labels = new Map(store.list({ labelled: true, limit: 10_000 }).map((s) => [s.id, s.label!]));
    const headVersion = store.currentHeadVersion();
    if (headVersion !== null) decodeHead(store.headFile(headVersion)!, { where: `head ${headVersion}` });
    return { labels, headVersion };
  } finally {
    store.close();
  }
}

describe('graceful shutdown', () => {
  it('stops on SIGTERM: logs as JSON lines, closes the store, exits 0', async () => {
    const run = await startAgentProcess(configPath);
    const code = await run.kill('SIGTERM');
    expect(code).toBe(0);
    expect(run.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['agent started', 'agent stopping', 'agent stopped']));
    expect(run.logs.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && l.device === 'crash-pi')).toBe(true);
    inspectStore(); // opens clean
  });
});

describe('crash safety under SIGKILL', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  const ids: { id: string; truth: string }[] = [];

  step('keeps every label the API acknowledged when killed during a batch of labels', async () => {
    agent = await startAgentProcess(configPath);
    for (const c of CLASSES) {
      for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(0, 12)) {
        const { status, json } = await call('POST', '/api/samples', readFileSync(join(FLOWERS_DIR, c, f)));
        expect(status).toBe(201);
        ids.push({ id: (json.sample as { id: string }).id, truth: c });
      }
    }
    const acknowledged = new Map<string, string>();
    const inFlight = new Set<Promise<void>>();
    let next = 0;
    // Four labelling clients at once; the kill lands while requests are in flight.
    const killAfter = 25;
    while (acknowledged.size < killAfter) {
      while (inFlight.size < 4 && next < ids.length) {
        const { id, truth } = ids[next++]!;
        const p: Promise<void> = call('PUT', `/api/samples/${id}/label`, { label: truth })
          .then(({ status }) => {
            if (status === 200) acknowledged.set(id, truth);
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.race(inFlight);
    }
    await agent.kill('SIGKILL');
    await Promise.allSettled(inFlight);
    const { labels } = inspectStore();
    for (const [id, label] of acknowledged) expect(labels.get(id), `acknowledged label of ${id.slice(0, 12)}`).toBe(label);

    agent = await startAgentProcess(configPath);
    const listed = (await call('GET', '/api/samples?labelled=true&limit=500')).json.samples as { id: string; label: string }[];
    for (const [id, label] of acknowledged) expect(listed.find((s) => s.id === id)?.label).toBe(label);
    expect((await call('GET', '/health')).json.status).toBe('ok');
    // Finish labelling for the next round.
    for (const { id, truth } of ids) expect((await call('PUT', `/api/samples/${id}/label`, { label: truth })).status).toBe(200);
  });

  step('opens clean with a loadable current head when killed during head saves', async () => {
    let lastAcknowledged = 0;
    for (const delayMs of [0, 40, 90, 150, 260]) {
      agent ??= await startAgentProcess(configPath);
      // Back-to-back trainings, each ending in a head save; the kill lands somewhere among them.
      let stop = false;
      let savedThisRound = 0;
      const trainer = (async () => {
        while (!stop) {
          const res = await call('POST', '/api/train').catch(() => undefined);
          if (!res) return;
          if (res.status === 200 && typeof res.json.version === 'number') {
            lastAcknowledged = Math.max(lastAcknowledged, res.json.version);
            savedThisRound++;
          }
        }
      })();
      await until('a head saved this round', () => savedThisRound > 0, 60_000, 5);
      await new Promise((r) => setTimeout(r, delayMs));
      await agent.kill('SIGKILL');
      stop = true;
      await trainer;
      agent = undefined;

      const { headVersion, labels } = inspectStore();
      expect(headVersion).not.toBeNull();
      expect(headVersion!).toBeGreaterThanOrEqual(lastAcknowledged);
      expect(labels.size).toBe(ids.length);
    }
    agent = await startAgentProcess(configPath);
    const head = (await call('GET', '/api/head')).json as { version: number; labels: string[] };
    expect(head.version).toBeGreaterThanOrEqual(lastAcknowledged);
    expect(head.labels).toEqual(CLASSES);
    const started = agent.logs.find((l) => l.msg === 'agent started')!;
    expect(started.head).toBe(head.version);
    expect(lastAcknowledged).toBeGreaterThan(1);
  });
});
