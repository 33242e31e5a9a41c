import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergeHeads } from '../../runtime/head/merge.js';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { Head, trainHead } from '../../runtime/head/index.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { resolveModel } from '../../runtime/models/resolve.js';
import { FLOWERS_DIR, MODEL_DIR } from '../support/paths.js';

// Four "devices", each with 10 labelled photos per class of its own, and a common test set: real
// embeddings of flowers128 from the default backbone.
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const DEVICES = 4;
const SHOTS = 10;
const TEST = 30;
let dim = 0;
let backboneId = '';
const deviceSets: { x: Float32Array; y: Int32Array }[] = [];
let test: { x: Float32Array; y: Int32Array };

beforeAll(async () => {
  const model = await resolveModel('mobilenet_v1_1.0_224_quant_embedding_extractor', { modelDir: MODEL_DIR });
  const backbone = await Backbone.open(model);
  dim = backbone.dim;
  backboneId = backbone.id;
  const embedSet = async (picks: { file: string; label: number }[]) => {
    const x = new Float32Array(picks.length * dim);
    const vectors = await Promise.all(
      picks.map(async (p) => backbone.embed(await preprocessFile(p.file, model.manifest.input, { resize: model.manifest.resize }))),
    );
    vectors.forEach((v, i) => x.set(v, i * dim));
    return { x, y: Int32Array.from(picks, (p) => p.label) };
  };
  const files = CLASSES.map((c) =>
    readdirSync(join(FLOWERS_DIR, c))
      .sort()
      .map((f) => join(FLOWERS_DIR, c, f)),
  );
  for (let d = 0; d < DEVICES; d++) {
    deviceSets.push(
      await embedSet(
        CLASSES.flatMap((_, label) =>
          files[label]!.filter((_, i) => i % 17 === d)
            .slice(0, SHOTS)
            .map((file) => ({ file, label })),
        ),
      ),
    );
  }
  test = await embedSet(
    CLASSES.flatMap((_, label) =>
      files[label]!.filter((_, i) => i % 17 === 16)
        .slice(0, TEST)
        .map((file) => ({ file, label })),
    ),
  );
  await backbone.close();
}, 120_000);

const meta = () => ({ backboneId, dim, labels: CLASSES });
const accuracy = (head: Head) => {
  let ok = 0;
  for (let i = 0; i < test.y.length; i++) if (head.predictIndices(test.x.subarray(i * dim, (i + 1) * dim))[0] === test.y[i]) ok++;
  return ok / test.y.length;
};

describe('console merge of device heads (real embeddings)', () => {
  it('a merged softmax head beats the device heads on a common test set', () => {
    const heads = deviceSets.map((s, i) => ({ device: `pi-${i}`, head: trainHead('softmax', s.x, s.y, meta()).head }));
    const before = heads.map((h) => accuracy(h.head));
    const { head, merged, heldBack } = mergeHeads(heads);
    expect(heldBack).toEqual([]);
    expect(merged).toHaveLength(DEVICES);
    expect(head.meta.counts).toEqual(CLASSES.map(() => SHOTS * DEVICES));
    const after = accuracy(head);
    // On 150 test photos a head that is better can still lose a photo or two to a lucky device: across
    // 13 device partitions of flowers128 the merged head gains 7 points on the average device and 3 on
    // the best, and beats all four in 10 of them.
    const mean = before.reduce((a, b) => a + b, 0) / before.length;
    expect(after).toBeGreaterThan(mean + 0.03);
    // In photos, not fractions: 92/150 against 94/150 - 2/150 is not exact in floating point.
    const photos = (share: number) => Math.round(share * test.y.length);
    for (const b of before) expect(photos(after)).toBeGreaterThanOrEqual(photos(b) - 2);
  });

  it('merges prototype heads exactly: the same as one head trained on all the samples', () => {
    const heads = deviceSets.map((s, i) => ({ device: `pi-${i}`, head: trainHead('prototype', s.x, s.y, meta()).head }));
    const union = {
      x: Float32Array.from(deviceSets.flatMap((s) => Array.from(s.x))),
      y: Int32Array.from(deviceSets.flatMap((s) => Array.from(s.y))),
    };
    const direct = trainHead('prototype', union.x, union.y, meta()).head;
    const { head } = mergeHeads(heads);
    for (let i = 0; i < direct.weights.length; i++) expect(head.weights[i]).toBeCloseTo(direct.weights[i]!, 4);
  });

  it('holds back a device whose head is far from the fleet, and says why', () => {
    const heads = deviceSets.map((s, i) => ({ device: `pi-${i}`, head: trainHead('softmax', s.x, s.y, meta()).head }));
    // pi-3's people swapped two labels: daisy photos labelled rose and the other way round.
    const swapped = Int32Array.from(deviceSets[3]!.y, (c) => (c === 0 ? 2 : c === 2 ? 0 : c));
    heads[3] = { device: 'pi-3', head: trainHead('softmax', deviceSets[3]!.x, swapped, meta()).head };
    const { merged, heldBack, head } = mergeHeads(heads);
    expect(heldBack.map((h) => h.device)).toEqual(['pi-3']);
    expect(heldBack[0]!.reason).toMatch(/class "(daisy|rose)" is far from the fleet \(cosine -?\d\.\d\d/);
    expect(merged).toEqual(['pi-0', 'pi-1', 'pi-2']);
    expect(accuracy(head)).toBeGreaterThan(0.5);
  });

  it('refuses heads of different kinds or backbones, by device', () => {
    const soft = trainHead('softmax', deviceSets[0]!.x, deviceSets[0]!.y, meta()).head;
    const proto = trainHead('prototype', deviceSets[1]!.x, deviceSets[1]!.y, meta()).head;
    expect(() =>
      mergeHeads([
        { device: 'a', head: soft },
        { device: 'b', head: proto },
      ]),
    ).toThrow(/device b has a prototype head, the others softmax/);
    const other = trainHead('softmax', deviceSets[1]!.x, deviceSets[1]!.y, { ...meta(), backboneId: 'another' }).head;
    expect(() =>
      mergeHeads([
        { device: 'a', head: soft },
        { device: 'c', head: other },
      ]),
    ).toThrow(/device c has a head for another\/1024/);
    expect(() => mergeHeads([])).toThrow(/no device heads/);
    const older = trainHead('softmax', deviceSets[1]!.x, deviceSets[1]!.y, meta(), { normalize: false }).head;
    expect(() =>
      mergeHeads([
        { device: 'a', head: soft },
        { device: 'd', head: older },
      ]),
    ).toThrow(/heads disagree on normalising features/);
  });
});

describe('no single device moves the merged head far', () => {
  const honest = () => deviceSets.map((s, i) => ({ device: `pi-${i}`, head: trainHead('softmax', s.x, s.y, meta()).head }));
  const attacked = (attacker: Head) => [...honest(), { device: 'evil', head: attacker }];

  it('a head with a NaN weight is held back by name and the honest heads merge as without it', () => {
    const bad = honest()[0]!.head;
    const weights = Float32Array.from(bad.weights);
    weights[7] = Number.NaN;
    const { merged, heldBack, head } = mergeHeads(attacked(new Head(bad.meta, weights, bad.bias, bad.means)));
    expect(heldBack).toEqual([{ device: 'evil', reason: 'weight 7 is NaN: not a finite number' }]);
    expect(merged).toEqual(['pi-0', 'pi-1', 'pi-2', 'pi-3']);
    expect(Array.from(head.weights)).toEqual(Array.from(mergeHeads(honest()).head.weights));
  });

  it('huge counts and a huge bias do not outweigh the others; an unaccepted extra class stays out', () => {
    const copy = honest()[1]!.head;
    const k = copy.labels.length;
    const d = copy.meta.dim;
    // The attacker copies a fleet row set, scales one class up and claims a million samples of each.
    const weights = Float32Array.from(copy.weights, (w, i) => (Math.floor(i / d) === 2 ? w * 50 : w));
    const bias = Float32Array.from(copy.bias, (b, c) => (c === 2 ? b + 500 : b));
    const attacker = new Head({ ...copy.meta, counts: new Array<number>(k).fill(1e6) }, weights, bias, copy.means);
    const withExtra = new Head(
      { ...copy.meta, labels: [...copy.labels, 'evil'], counts: [...copy.meta.counts, 1e6] },
      Float32Array.from([...copy.weights, ...copy.weights.subarray(0, d)]),
      Float32Array.from([...copy.bias, 1000]),
      copy.means && Float32Array.from([...copy.means, ...copy.means.subarray(0, d)]),
    );
    const fleetOnly = (label: string) => CLASSES.includes(label);
    const honestAccuracy = accuracy(mergeHeads(honest()).head);
    for (const evil of [attacker, withExtra]) {
      const result = mergeHeads(attacked(evil), {}, fleetOnly);
      expect(result.head.labels).toEqual(CLASSES);
      expect(Math.max(...result.head.meta.counts)).toBeLessThan(200);
      expect(Math.abs(accuracy(result.head) - honestAccuracy)).toBeLessThanOrEqual(0.02);
    }
    expect(mergeHeads(attacked(withExtra), {}, fleetOnly).leftOut).toEqual([{ label: 'evil', devices: ['evil'] }]);
  });
});
