// What the agent acknowledges it keeps: uploads under a full queue, retention with labelled samples,
// deletes while a sample is in flight. Every case checks the rows and files left on disk.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { sha256Hex } from '../../core/hash.js';
import { FLOWERS_DIR, MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir();
let agent: Agent | undefined;
let n = 0;

const daisies = readdirSync(join(FLOWERS_DIR, 'daisy'))
  .sort()
  .map((f) => readFileSync(join(FLOWERS_DIR, 'daisy', f)));

async function startAgent(overrides: { queue?: object; data?: object; http?: object } = {}) {
  const dir = join(tmp.path, `data${n++}`);
  const config = AgentConfigSchema.parse({
    device: { id: 'intake' },
    data: { dir, ...overrides.data },
    head: { retrainAfterLabels: 0 },
    model: { workers: 1, batchSize: 1 },
    queue: overrides.queue ?? {},
    http: { port: 0, ...overrides.http },
  });
  agent = await Agent.start(config, { log: silentLogger });
  return { agent, dir, url: agent.url! };
}

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

function upload(url: string, bytes: Uint8Array, label?: string) {
  return fetch(`${url}/api/samples${label ? `?label=${label}` : ''}`, {
    method: 'POST',
    body: bytes as Uint8Array<ArrayBuffer>,
    headers: { 'content-type': 'image/jpeg' },
  });
}

/** Files anywhere under a store folder (images/, quarantine/, incoming/). */
function filesUnder(dir: string, folder: string): string[] {
  const root = join(dir, folder);
  return existsSync(root)
    ? (readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => e.name) as string[])
    : [];
}

describe('201 means kept', () => {
  it('20 parallel uploads into a queue of 2 that does not wait: each is 201 and embedded, or 503 with Retry-After and not stored', async () => {
    const { agent, dir, url } = await startAgent({ queue: { limit: 2, uploadWaitMs: 0 }, http: { maxConcurrentUploads: 20 } });
    const photos = daisies.slice(0, 20);
    const replies = await Promise.all(photos.map((p) => upload(url, p)));
    const created = replies.map((r) => r.status === 201);
    const refused = replies.filter((r) => r.status === 503);
    expect(created.filter(Boolean).length + refused.length).toBe(20);
    expect(created.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.headers.get('retry-after')).toBe('5');
      expect(((await r.json()) as { code: string }).code).toBe('QUEUE_FULL');
    }
    await agent.pipeline.idle();
    photos.forEach((p, i) => {
      const id = sha256Hex(p);
      if (created[i]) {
        expect(agent.store.get(id)?.status).toBe('ok');
        expect(readFileSync(agent.store.imagePath(id)).equals(p)).toBe(true);
        expect(agent.store.getEmbedding(id, agent.backbone.id)).toBeDefined();
      } else {
        expect(agent.store.get(id)).toBeUndefined();
        expect(existsSync(agent.store.imagePath(id))).toBe(false);
      }
    });
    expect(agent.store.counts().samples).toBe(created.filter(Boolean).length);
    expect(filesUnder(dir, 'incoming')).toEqual([]);
  });

  it('in an embeddings-only store, an in-process intake beyond the queue limit is refused before it is stored', async () => {
    const { agent, dir } = await startAgent({ queue: { limit: 2 }, data: { embeddingsOnly: true } });
    const photos = daisies.slice(20, 30);
    const outcomes = photos.map((p) => {
      try {
        return agent.ingest(p, 'daisy', 'upload').queued ? 'queued' : 'not queued';
      } catch (err) {
        return (err as { code?: string }).code ?? String(err);
      }
    });
    const accepted = outcomes.filter((o) => o === 'queued').length;
    expect(accepted).toBeGreaterThanOrEqual(2);
    expect(accepted).toBeLessThanOrEqual(3);
    expect(outcomes.slice(accepted).every((o) => o === 'QUEUE_FULL')).toBe(true);
    await agent.pipeline.idle();
    photos.forEach((p, i) => {
      const stored = agent.store.get(sha256Hex(p));
      if (outcomes[i] === 'queued') {
        expect(stored?.label).toBe('daisy');
        expect(agent.store.getEmbedding(stored!.id, agent.backbone.id)).toBeDefined();
      } else expect(stored).toBeUndefined();
    });
    expect(filesUnder(dir, 'images')).toEqual([]);
    // Once the queue has run there is room again.
    expect(agent.ingest(photos[9]!, 'daisy', 'upload').queued).toBe(true);
  });

  it('an upload waits for room rather than being dropped: all 8 acknowledged and embedded with a long wait', async () => {
    const { agent, url } = await startAgent({ queue: { limit: 1, uploadWaitMs: 60_000 }, http: { maxConcurrentUploads: 8 } });
    const photos = daisies.slice(20, 28);
    const statuses = await Promise.all(photos.map(async (p) => (await upload(url, p)).status));
    expect(statuses).toEqual(Array(8).fill(201));
    await agent.pipeline.idle();
    for (const p of photos) expect(agent.store.getEmbedding(sha256Hex(p), agent.backbone.id)).toBeDefined();
    expect(agent.pipeline.stats.dropped).toBe(0);
  });
});

describe("retention never eats a person's work", () => {
  it('evicts unlabelled samples oldest first, never the new one; full of labelled samples, refuses with 507', async () => {
    const { agent, dir, url } = await startAgent({ data: { retention: { maxSamples: 3 } } });
    const [l1, u1, u2, l2, l3, u3, l4] = daisies.slice(30, 37) as Buffer[];
    expect((await upload(url, l1!, 'daisy')).status).toBe(201);
    expect((await upload(url, u1!)).status).toBe(201);
    expect((await upload(url, u2!)).status).toBe(201);
    // Full: the labelled upload pushes out the oldest unlabelled sample, not the labelled one.
    expect((await upload(url, l2!, 'daisy')).status).toBe(201);
    expect(agent.store.get(sha256Hex(u1!))).toBeUndefined();
    expect(existsSync(agent.store.imagePath(sha256Hex(u1!)))).toBe(false);
    expect((await upload(url, l3!, 'daisy')).status).toBe(201);
    expect(agent.store.get(sha256Hex(u2!))).toBeUndefined();
    // Three labelled samples: nothing may go. A new sample is refused, labelled or not.
    const refused = await upload(url, u3!);
    expect(refused.status).toBe(507);
    expect(((await refused.json()) as { code: string; error: string }).error).toMatch(/full of labelled samples/);
    expect((await upload(url, l4!, 'daisy')).status).toBe(507);
    const health = (await (await fetch(`${url}/health`)).json()) as { store: { full: boolean; maxSamples: number } };
    expect(health.store).toMatchObject({ full: true, maxSamples: 3 });
    expect(agent.store.list({ limit: 10 }).map((s) => s.label)).toEqual(['daisy', 'daisy', 'daisy']);
    for (const p of [l1, l2, l3]) expect(existsSync(agent.store.imagePath(sha256Hex(p!)))).toBe(true);
    for (const p of [u3, l4]) expect(agent.store.get(sha256Hex(p!))).toBeUndefined();
    expect(filesUnder(dir, 'images')).toHaveLength(3);
    expect(filesUnder(dir, 'incoming')).toEqual([]);
    // Deleting one makes room again.
    expect((await fetch(`${url}/api/samples/${sha256Hex(l1!)}`, { method: 'DELETE' })).status).toBe(200);
    expect((await upload(url, u3!)).status).toBe(201);
  });
});

describe('labels', () => {
  it('an upload labelled with a reserved name is refused with 400 and nothing is stored', async () => {
    const { agent, dir, url } = await startAgent();
    const reply = await upload(url, daisies[50]!, 'Unknown');
    expect(reply.status).toBe(400);
    expect(((await reply.json()) as { error: string }).error).toMatch(/label "Unknown" is reserved/);
    expect(agent.store.counts().samples).toBe(0);
    expect(filesUnder(dir, 'images')).toEqual([]);
    expect(filesUnder(dir, 'incoming')).toEqual([]);
  });
});

describe('deletes are final', () => {
  const undecodable = () => Buffer.from(`<html>not a photo ${Math.random()}</html>`);

  it('an undecodable sample deleted while it waits in the queue, or while it is decoded, never comes back', async () => {
    const { agent, dir } = await startAgent({ queue: { limit: 64 } });
    // Busy the one worker so the next samples wait in the queue.
    for (const p of daisies.slice(40, 44)) agent.ingest(p, null, 'upload');
    const waiting = agent.ingest(undecodable(), null, 'upload').sample.id;
    expect(agent.deleteSample(waiting)).toBe(true);
    await agent.pipeline.idle();
    // In flight: the job has started (its bytes read) when the delete comes.
    const inFlight = agent.ingest(undecodable(), 'weeds', 'upload').sample.id;
    expect(agent.deleteSample(inFlight)).toBe(true);
    await agent.pipeline.idle();
    for (const id of [waiting, inFlight]) {
      expect(agent.store.get(id)).toBeUndefined();
      expect(existsSync(join(dir, 'quarantine', id))).toBe(false);
      expect(existsSync(agent.store.imagePath(id))).toBe(false);
    }
    expect(agent.store.counts()).toMatchObject({ samples: 4, quarantined: 0 });
    expect(filesUnder(dir, 'quarantine')).toEqual([]);
  });

  it('over HTTP: a deleted upload is gone from every folder once the queue has run', async () => {
    const { agent, dir, url } = await startAgent();
    await Promise.all(daisies.slice(44, 48).map((p) => upload(url, p)));
    const bad = undecodable();
    const reply = (await (await upload(url, bad)).json()) as { sample: { id: string } };
    expect((await fetch(`${url}/api/samples/${reply.sample.id}`, { method: 'DELETE' })).status).toBe(200);
    await until('queue empty', async () => {
      await agent.pipeline.idle();
      return true;
    });
    expect(agent.store.get(reply.sample.id)).toBeUndefined();
    expect(filesUnder(dir, 'quarantine')).toEqual([]);
    expect(filesUnder(dir, 'images')).not.toContain(reply.sample.id);
    expect(filesUnder(dir, 'incoming')).toEqual([]);
  });
});
