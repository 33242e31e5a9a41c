import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { decodeHead, encodeHead, loadHead, saveHead } from '../../runtime/head/head-file.js';
import { type Head, UNKNOWN, trainHead } from '../../runtime/head/index.js';
import { mergeHeads } from '../../runtime/head/merge.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { resolveModel } from '../../runtime/models/resolve.js';
import { seededRandom } from '../../core/random.js';
import { MODEL_DIR, SHARED_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const DIM = 48;
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'heads', 'v1-softmax-daisy-rose-tulip');

/** Non-negative Gaussian clusters: class c is bright in its own block of dims (4 blocks). */
function clusters(classes: number[], perClass: number, seed: number): { x: Float32Array; y: Int32Array } {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const x = new Float32Array(classes.length * perClass * DIM);
  const y = new Int32Array(classes.length * perClass);
  classes.forEach((c, ci) => {
    for (let s = 0; s < perClass; s++) {
      const i = ci * perClass + s;
      y[i] = ci;
      for (let j = 0; j < DIM; j++) x[i * DIM + j] = Math.max(0, (Math.floor(j / (DIM / 4)) === c ? 2 : 0.5) + 0.6 * gauss());
    }
  });
  return { x, y };
}

const rows = (x: Float32Array) => Array.from({ length: x.length / DIM }, (_, i) => x.subarray(i * DIM, (i + 1) * DIM));
const unknownShare = (head: Head, x: Float32Array) => rows(x).filter((e) => head.predict(e).unknown).length / (x.length / DIM);
const META = { backboneId: 'test-backbone', dim: DIM, labels: ['a', 'b', 'c'] };

describe('open set', () => {
  const train = clusters([0, 1, 2], 60, 1);
  const known = clusters([0, 1, 2], 100, 2);
  const novel = clusters([3], 100, 3);

  it.each(['softmax', 'prototype'] as const)('a %s head calls a class it never saw unknown, and about 5 %% of known photos', (kind) => {
    const { head } = trainHead(kind, train.x, train.y, META, { seed: 1 });
    expect(head.meta.openSet).toMatchObject({ score: 'class-mean-cosine', unknownRate: 0.05, samples: 180 });
    expect(unknownShare(head, novel.x)).toBeGreaterThan(0.95);
    const knownRate = unknownShare(head, known.x);
    expect(knownRate).toBeGreaterThan(0.01);
    expect(knownRate).toBeLessThan(0.12);
    const p = head.predict(novel.x.subarray(0, DIM));
    expect(p).toMatchObject({ label: UNKNOWN, index: -1, unknown: true, distanceThreshold: head.meta.openSet!.threshold });
    expect(p.distance).toBeGreaterThan(p.distanceThreshold!);
    // The nearest class is still listed, for a person to judge.
    expect(p.top[0]!.label).toMatch(/^[abc]$/);
  });

  it('a higher unknown rate gives a lower threshold', () => {
    const strict = trainHead('softmax', train.x, train.y, META, { unknownRate: 0.2 }).head;
    const loose = trainHead('softmax', train.x, train.y, META).head;
    expect(strict.meta.openSet!.threshold).toBeLessThan(loose.meta.openSet!.threshold);
    expect(unknownShare(strict, known.x)).toBeGreaterThan(unknownShare(loose, known.x));
  });

  it('a probability threshold overrides the calibrated distance', () => {
    // The mini-batch solver: the exact one is sure of every photo of these well-apart clusters (top
    // probability 1), and a threshold needs a photo it is less sure of.
    const { head } = trainHead('softmax', train.x, train.y, META, { solver: 'sgd' });
    const photo = novel.x.subarray(0, DIM);
    expect(head.predict(photo).unknown).toBe(true);
    expect(head.predict(photo, { threshold: 0 }).unknown).toBe(false);
    // The known photo the head is least sure of is unknown once the threshold is above its top probability.
    const photos = Array.from({ length: known.x.length / DIM }, (_, i) => known.x.subarray(i * DIM, (i + 1) * DIM));
    const least = photos.reduce((a, b) => (head.predict(b).score < head.predict(a).score ? b : a));
    const sure = head.predict(least);
    expect(sure.unknown).toBe(false);
    expect(sure.score).toBeLessThan(1);
    expect(head.predict(least, { threshold: (sure.score + 1) / 2 }).label).toBe(UNKNOWN);
    expect(head.predict(least, { threshold: sure.score / 2 }).label).toBe(sure.label);
  });

  it('too few photos set no threshold: the head never says unknown', () => {
    const few = clusters([0, 1], 2, 4);
    const { head } = trainHead('softmax', few.x, few.y, { ...META, labels: ['a', 'b'] });
    expect(head.meta.openSet).toBeUndefined();
    expect(head.means).toBeDefined();
    expect(head.predict(novel.x.subarray(0, DIM))).toMatchObject({ unknown: false, distanceThreshold: null });
  });

  it.each(['float32', 'int8'] as const)('the calibration and class means are stored and reloaded (%s)', (encoding) => {
    const { head } = trainHead('softmax', train.x, train.y, META);
    const path = join(tmp.path, `calibrated-${encoding}.head`);
    saveHead(path, head, encoding);
    const back = loadHead(path, { backboneId: 'test-backbone', dim: DIM });
    expect(back.meta.openSet).toEqual(head.meta.openSet);
    expect(readFileSync(path).readUInt16LE(4)).toBe(2);
    if (encoding === 'float32') expect(Array.from(back.means!)).toEqual(Array.from(head.means!));
    const both = [...rows(known.x), ...rows(novel.x)];
    const agree = both.filter((e) => back.predict(e).unknown === head.predict(e).unknown).length / both.length;
    expect(agree).toBeGreaterThan(encoding === 'float32' ? 0.999 : 0.98);
    if (encoding === 'float32') expect(back.predict(both[0]!).distance).toBe(head.predict(both[0]!).distance);
  });

  it('a damaged calibration in the header is refused, naming the field', () => {
    const { head } = trainHead('softmax', train.x, train.y, META);
    const bad = head.withOpenSet(head.means, { ...head.meta.openSet!, threshold: 7 });
    expect(() => encodeHead(bad)).toThrow(/threshold/);
  });

  it('a merged head gets class means and a calibration from the devices', () => {
    const a = trainHead('softmax', train.x, train.y, META).head;
    const part = clusters([0, 1, 2], 20, 9);
    const b = trainHead('softmax', part.x, part.y, META).head;
    const { head } = mergeHeads([
      { device: 'a', head: a },
      { device: 'b', head: b },
    ]);
    const expected = (a.meta.openSet!.threshold * 180 + b.meta.openSet!.threshold * 60) / 240;
    expect(head.meta.openSet!.threshold).toBeCloseTo(expected, 6);
    expect(head.meta.openSet!.samples).toBe(240);
    expect(unknownShare(head, novel.x)).toBeGreaterThan(0.95);
    expect(unknownShare(head, known.x)).toBeLessThan(0.12);
    // And it survives the wire.
    expect(decodeHead(encodeHead(head)).meta.openSet).toEqual(head.meta.openSet);
  });

  it('a merge with a device head from before the open set leaves the merged head without one', () => {
    const a = trainHead('softmax', train.x, train.y, META).head;
    const old = a.withOpenSet(undefined, undefined);
    const { head } = mergeHeads([
      { device: 'a', head: a },
      { device: 'old', head: old },
    ]);
    expect(head.meta.openSet).toBeUndefined();
    expect(head.predict(novel.x.subarray(0, DIM)).unknown).toBe(false);
  });
});

describe('a head file from before the open set (format 1)', () => {
  let backbone: Backbone;
  let manifest: Awaited<ReturnType<typeof resolveModel>>['manifest'];
  beforeAll(async () => {
    const model = await resolveModel('mobilenet_v1_1.0_224_quant_embedding_extractor', { modelDir: MODEL_DIR });
    manifest = model.manifest;
    backbone = await Backbone.open(model);
  }, 60_000);
  afterAll(() => backbone.close());

  it('still loads and predicts what it predicted when it was written', async () => {
    const expected = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as {
      photos: { image: string; label: string; top: { label: string; score: number }[] }[];
    };
    const bytes = readFileSync(`${FIXTURE}.head`);
    expect(bytes.readUInt16LE(4)).toBe(1);
    const head = loadHead(`${FIXTURE}.head`, { backboneId: backbone.id, dim: backbone.dim });
    expect(head.labels).toEqual(['daisy', 'rose', 'tulip']);
    expect(head.meta.openSet).toBeUndefined();
    for (const photo of expected.photos) {
      const input = await preprocessFile(join(SHARED_DIR, photo.image), manifest.input, { resize: manifest.resize });
      const p = head.predict(await backbone.embed(input), { topK: 3 });
      expect(p).toMatchObject({ label: photo.label, unknown: false, distance: null, distanceThreshold: null });
      p.top.forEach((t, i) => {
        expect(t.label).toBe(photo.top[i]!.label);
        expect(t.score).toBeCloseTo(photo.top[i]!.score, 4);
      });
    }
  });

  it('written again, it is a format 2 file that predicts the same', () => {
    const head = loadHead(`${FIXTURE}.head`);
    const again = decodeHead(encodeHead(head));
    expect(Buffer.from(encodeHead(head)).readUInt16LE(4)).toBe(2);
    expect(Array.from(again.weights)).toEqual(Array.from(head.weights));
    expect(again.means).toBeUndefined();
  });
});
