import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { trainHead } from '../../runtime/head/index.js';
import { sha256Hex } from '../../core/hash.js';
import { FLOWERS_DIR, IMAGES_DIR, MODEL_DIR, REPO_ROOT, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { until } from '../support/until.js';
import { jsonClient } from '../support/json-client.js';

const tmp = tempDir();
const inbox = join(tmp.path, 'inbox');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const photos = Object.fromEntries(CLASSES.map((c) => [c, readdirSync(join(FLOWERS_DIR, c)).sort()]));
let agent: Agent;
let url: string;

const api = jsonClient(() => url);

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  mkdirSync(inbox, { recursive: true });
  const config = AgentConfigSchema.parse({
    device: { id: 'test-pi' },
    data: { dir: join(tmp.path, 'data'), holdoutFraction: 0.2 },
    head: { retrainAfterLabels: 0, tolerance: 1 }, // keep every head: rollback needs two versions
    sources: {
      inbox: { dir: inbox, pollMs: 50 },
      // A stand-in for rpicam-still (no camera here): the same code path, photos from a folder.
      camera: { command: [join(REPO_ROOT, 'test/support/fake-camera.sh'), IMAGES_DIR, join(tmp.path, 'camera.state')] },
    },
    http: { port: 0 },
  });
  agent = await Agent.start(config, { log: silentLogger });
  url = agent.url!;
});
afterAll(async () => {
  await agent?.stop();
  tmp.remove();
});

describe('agent end to end (real backbone, real inbox, real HTTP)', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  const LABELLED = 30;
  const UNLABELLED = 20;
  // Spread the picks over each class folder so they are not near-duplicate neighbours.
  const labelledPhotos = (c: string) => Array.from({ length: LABELLED }, (_, i) => photos[c]![i * 20]!);
  const unlabelledPhotos = (c: string) => Array.from({ length: UNLABELLED }, (_, i) => photos[c]![i * 20 + 10]!);

  step('takes labelled photos from inbox sub-folders, embeds and stores them', async () => {
    for (const c of CLASSES) {
      mkdirSync(join(inbox, c), { recursive: true });
      for (const f of labelledPhotos(c)) copyFileSync(join(FLOWERS_DIR, c, f), join(inbox, c, f));
    }
    await until('labelled photos embedded', () => agent.pipeline.stats.embedded >= LABELLED * CLASSES.length);
    const classes = (await api<{ classes: { label: string; count: number }[] }>('GET', '/api/classes')).json.classes;
    expect(classes).toEqual(CLASSES.map((label) => ({ label, count: LABELLED })));
    expect(readdirSync(join(inbox, 'done'))).toHaveLength(LABELLED * CLASSES.length);
  });

  step('trains a head on command and reports its holdout accuracy', async () => {
    const { status, json } = await api<{ kept: boolean; version: number; accuracy: number; samples: number }>('POST', '/api/train');
    expect(status).toBe(200);
    expect(json.kept).toBe(true);
    expect(json.version).toBe(1);
    expect(json.samples).toBeGreaterThan(LABELLED * CLASSES.length * 0.6);
    const head = (await api<{ version: number; labels: string[] }>('GET', '/api/head')).json;
    expect(head.version).toBe(1);
    expect(head.labels).toEqual(CLASSES);
  });

  step('predicts unlabelled photos dropped afterwards, about as well as eval does with the same labels', async () => {
    const truth = new Map<string, string>();
    for (const c of CLASSES) {
      for (const f of unlabelledPhotos(c)) {
        const bytes = readFileSync(join(FLOWERS_DIR, c, f));
        const id = sha256Hex(bytes);
        if (agent.store.get(id)) continue; // the dataset holds a few exact duplicates
        truth.set(id, c);
        writeFileSync(join(inbox, `${c}-${f}`), bytes);
      }
    }
    const samples = await until('predictions for every unlabelled photo', () => {
      const list = agent.store.list({ labelled: false, limit: 500 }).filter((s) => truth.has(s.id) && s.prediction);
      return list.length === truth.size && list;
    });
    const correct = samples.filter((s) => s.prediction === truth.get(s.id)).length;
    const accuracy = correct / samples.length;
    // What `edgetune eval` does with the same labels: a fresh softmax head on the labelled train split.
    const dim = agent.backbone.dim;
    const train = agent.store.labelledSet(agent.backbone.id, 'train');
    const labels = [...new Set(train.labels)].sort();
    const { head } = trainHead(
      'softmax',
      train.embeddings,
      Int32Array.from(train.labels, (l) => labels.indexOf(l)),
      { backboneId: agent.backbone.id, dim, labels },
    );
    const reference =
      samples.filter((s) => head.labels[head.predictIndices(agent.store.getEmbedding(s.id, agent.backbone.id)!)[0]!] === truth.get(s.id))
        .length / samples.length;
    expect(Math.abs(accuracy - reference)).toBeLessThanOrEqual(0.05);
    expect(accuracy).toBeGreaterThan(0.4); // chance is 0.2
    const listed = (await api<{ samples: { id: string; prediction: string }[] }>('GET', '/api/samples?labelled=false&limit=200')).json
      .samples;
    expect(listed.filter((s) => truth.has(s.id)).every((s) => typeof s.prediction === 'string')).toBe(true);
  });

  step('labels through the API; an upload with a path-like label is refused and nothing is lost', async () => {
    const before = agent.store.counts();
    const [first] = agent.store.list({ labelled: false, limit: 1 });
    const labelled = await api<{ sample: { label: string } }>('PUT', `/api/samples/${first!.id}/label`, { label: 'rose' });
    expect(labelled.json.sample.label).toBe('rose');
    const bytes = readFileSync(join(FLOWERS_DIR, 'rose', photos.rose![305]!));
    const bad = await fetch(`${url}/api/samples?label=${encodeURIComponent('../etc/passwd')}`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/contains path characters/);
    expect(agent.store.counts().samples).toBe(before.samples);
    expect(agent.store.get(first!.id)?.label).toBe('rose');
  });

  step('quarantines a corrupt JPEG, an HTML page named .jpg and an empty upload is refused; the agent keeps going', async () => {
    const html = new TextEncoder().encode('<!doctype html><html><body>camera offline</body></html>');
    const good = readFileSync(join(FLOWERS_DIR, 'tulip', photos.tulip![405]!));
    const corrupt = Uint8Array.from(good.subarray(0, good.length / 3));
    writeFileSync(join(inbox, 'page.jpg'), html);
    const uploaded = await api<{ sample: { id: string } }>('POST', '/api/samples', corrupt);
    expect(uploaded.status).toBe(201);
    const empty = await api<{ code: string }>('POST', '/api/samples', new Uint8Array(0));
    expect(empty.status).toBe(400);
    // 10000x10000 of one colour: a few hundred KB of PNG that would need 300 MB decoded.
    const huge = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#336699' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect((await api('POST', '/api/samples?label=rose', huge)).status).toBe(201);
    await until('three quarantined samples', () => agent.store.counts().quarantined >= 3);
    const quarantined = agent.store.list({ status: 'quarantined' });
    const errors = quarantined.map((s) => s.error).join('\n');
    expect(errors).toMatch(/not a readable image/);
    expect(errors).toMatch(/10000x10000 = 100\.0 megapixels exceeds the limit/);
    // A labelled photo that could not be used keeps its label in quarantine: the person's work is not lost.
    expect(quarantined.find((s) => /megapixels/.test(s.error ?? ''))?.label).toBe('rose');
    const after = await api<{ sample: { id: string } }>('POST', '/api/samples?label=tulip', good);
    expect(after.status).toBe(201);
    await until('the good upload embedded', () => agent.store.getEmbedding(after.json.sample.id, agent.backbone.id));
    expect((await api<{ status: string }>('GET', '/health')).json.status).toBe('ok');
  });

  step('captures a frame from the camera on command and predicts it', async () => {
    const { status, json } = await api<{ sample: { id: string; origin: string } }>('POST', '/api/capture');
    expect(status).toBe(201);
    expect(json.sample.origin).toMatch(/^camera:.*fake-camera\.sh$/);
    const sample = await until('the captured frame predicted', () => {
      const stored = agent.store.get(json.sample.id);
      return stored?.prediction ? stored : undefined;
    });
    expect(CLASSES.concat('unknown')).toContain(sample.prediction);
  });

  step('serves Prometheus metrics and the labelling page', async () => {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^edgetune_samples_labelled \d+$/m);
    expect(metrics).toMatch(/^edgetune_head_version 1$/m);
    const page = await (await fetch(`${url}/`)).text();
    expect(page).toContain('<title>edgetune agent</title>');
  });

  step('rolls back to an earlier head version', async () => {
    const second = await api<{ kept: boolean; version: number }>('POST', '/api/train');
    expect(second.json.version).toBe(2);
    const back = await api<{ version: number }>('POST', '/api/head/rollback', { version: 1 });
    expect(back.json.version).toBe(1);
    expect((await api<{ version: number }>('GET', '/api/head')).json.version).toBe(1);
    expect((await api('POST', '/api/head/rollback', { version: 99 })).status).toBe(404);
  });
});
