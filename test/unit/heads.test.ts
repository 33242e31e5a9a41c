import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HeadError } from '../../core/errors.js';
import { decodeHead, encodeHead, headEncoding, loadHead, saveHead } from '../../runtime/head/head-file.js';
import { Head, UNKNOWN, trainHead } from '../../runtime/head/index.js';
import { mergePrototypes, trainPrototype, updatePrototype } from '../../runtime/head/prototype.js';
import { trainSoftmax } from '../../runtime/head/softmax.js';
import { gaussianClusters } from '../support/clusters.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const DIM = 32;
const META = { backboneId: 'test-backbone', dim: DIM, labels: ['a', 'b', 'c'] };

/** Non-negative Gaussian clusters (like pooled ReLU features): class c is bright in its own block of dims. */
function clusters(perClass: number[], seed: number, spread = 0.6): { x: Float32Array; y: Int32Array } {
  return gaussianClusters(perClass, seed, { dim: DIM, spread, bright: 2 });
}

function accuracy(predicted: Int32Array, y: Int32Array): number {
  return predicted.reduce((a, p, i) => a + (p === y[i] ? 1 : 0), 0) / y.length;
}

describe('prototype head', () => {
  it('classifies held-out samples of separable clusters', () => {
    const train = clusters([30, 30, 30], 1);
    const test = clusters([50, 50, 50], 2);
    const head = trainPrototype(train.x, train.y, META);
    expect(accuracy(head.predictIndices(test.x), test.y)).toBeGreaterThan(0.95);
    expect(head.meta.counts).toEqual([30, 30, 30]);
  });

  it('an incremental update equals training on everything at once', () => {
    const all = clusters([20, 20, 20], 3);
    const firstHalf = Array.from({ length: 30 }, (_, i) => i * 2);
    const secondHalf = firstHalf.map((i) => i + 1);
    const part = (rows: number[]) => ({
      x: Float32Array.from(rows.flatMap((r) => Array.from(all.x.subarray(r * DIM, (r + 1) * DIM)))),
      y: Int32Array.from(rows, (r) => all.y[r]!),
    });
    const a = part(firstHalf);
    const b = part(secondHalf);
    const incremental = updatePrototype(trainPrototype(a.x, a.y, META), b.x, b.y);
    const once = trainPrototype(all.x, all.y, META);
    expect(incremental.meta.counts).toEqual(once.meta.counts);
    for (let i = 0; i < once.weights.length; i++) expect(incremental.weights[i]).toBeCloseTo(once.weights[i]!, 5);
  });

  it('merging heads from two devices equals one head on the union, new classes included', () => {
    const one = clusters([10, 10, 0], 4);
    const two = clusters([5, 0, 12], 5);
    const merged = mergePrototypes([trainPrototype(one.x, one.y, META), trainPrototype(two.x, two.y, META)]);
    const union = trainPrototype(new Float32Array([...one.x, ...two.x]), new Int32Array([...one.y, ...two.y]), META);
    expect(merged.meta.counts).toEqual([15, 10, 12]);
    for (let i = 0; i < union.weights.length; i++) expect(merged.weights[i]).toBeCloseTo(union.weights[i]!, 5);
  });

  it('a class without samples never wins', () => {
    const data = clusters([10, 10, 0], 6);
    const head = trainPrototype(data.x, data.y, META);
    expect(Array.from(head.predictIndices(clusters([0, 0, 20], 7).x)).every((p) => p !== 2)).toBe(true);
  });
});

describe('softmax head', () => {
  it('learns separable clusters and reports its training', () => {
    const train = clusters([60, 60, 60], 8, 0.9);
    const test = clusters([50, 50, 50], 9, 0.9);
    const { head, report } = trainSoftmax(train.x, train.y, META, { seed: 1 });
    expect(accuracy(head.predictIndices(test.x), test.y)).toBeGreaterThan(0.95);
    expect(report.solver).toBe('exact');
    expect(report.tuning!.grid.map((g) => g.l2)).toContain(report.l2);
    const sgd = trainSoftmax(train.x, train.y, META, { seed: 1, solver: 'sgd' });
    expect(accuracy(sgd.head.predictIndices(test.x), test.y)).toBeGreaterThan(0.95);
    expect(sgd.report.epochs).toBeGreaterThan(0);
    expect(head.meta.counts).toEqual([60, 60, 60]);
  });

  it('is deterministic for a seed', () => {
    const train = clusters([25, 25, 25], 10);
    const a = trainSoftmax(train.x, train.y, META, { seed: 7 }).head;
    const b = trainSoftmax(train.x, train.y, META, { seed: 7 }).head;
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
  });

  it('class balancing keeps a rare class from being swallowed', () => {
    // Overlapping clusters, 20:1 imbalance: unbalanced training favours the big class on the rare one.
    const train = clusters([400, 20, 0], 11, 2.5);
    const test = clusters([0, 200, 0], 12, 2.5);
    const meta = { ...META, labels: ['a', 'b', 'c'] };
    const balanced = trainSoftmax(train.x, train.y, meta, { seed: 1 }).head;
    const plain = trainSoftmax(train.x, train.y, meta, { seed: 1, classBalanced: false }).head;
    const recallBalanced = accuracy(balanced.predictIndices(test.x), test.y);
    const recallPlain = accuracy(plain.predictIndices(test.x), test.y);
    expect(recallBalanced).toBeGreaterThan(recallPlain + 0.05);
  });

  it('early stopping on a holdout stops when the holdout loss stops falling', () => {
    const train = clusters([100, 100, 100], 13, 3);
    const { report } = trainSoftmax(train.x, train.y, META, {
      seed: 1,
      solver: 'sgd',
      maxEpochs: 200,
      patience: 2,
      learningRate: 0.05,
    });
    expect(report.holdoutAccuracy).not.toBeNull();
    expect(report.epochs).toBeLessThan(200);
    expect(report.epochs - report.bestEpoch).toBeLessThanOrEqual(2);
  });

  it('a warm start begins where the previous head was: a few tiny steps already give confident answers', () => {
    const train = clusters([60, 60, 60], 14, 0.9);
    const test = clusters([50, 50, 50], 15, 0.9);
    const previous = trainSoftmax(train.x, train.y, META, { seed: 1 }).head;
    const options = { seed: 2, solver: 'sgd', maxEpochs: 1, learningRate: 1e-5, holdoutFraction: 0 } as const;
    const cold = trainSoftmax(train.x, train.y, META, options).head;
    const warm = trainSoftmax(train.x, train.y, META, { ...options, warmStart: previous }).head;
    const meanTrueProbability = (head: typeof warm) =>
      Array.from(test.y).reduce((a, c, i) => a + head.probabilities(test.x.subarray(i * DIM, (i + 1) * DIM))[c]!, 0) / test.y.length;
    expect(meanTrueProbability(warm)).toBeGreaterThan(0.8);
    expect(meanTrueProbability(cold)).toBeLessThan(0.5);
  });

  it('works on L2-normalised features: a photo twice as bright gets the same answer', () => {
    const train = clusters([30, 30, 30], 21);
    const test = clusters([20, 20, 20], 22);
    const head = trainSoftmax(train.x, train.y, META, { seed: 3 }).head;
    expect(head.meta.normalize).toBe(true);
    const scaled = Float32Array.from(test.x, (v) => v * 2 ** (1 / head.meta.power));
    for (let i = 0; i < test.y.length; i++) {
      const [a, b] = [
        head.probabilities(test.x.subarray(i * DIM, (i + 1) * DIM)),
        head.probabilities(scaled.subarray(i * DIM, (i + 1) * DIM)),
      ];
      for (let c = 0; c < a.length; c++) expect(b[c]).toBeCloseTo(a[c]!, 5);
    }
  });

  it('mini-batch with the old constants: with too few samples per class for a holdout it regularises harder', () => {
    const few = clusters([8, 8, 8], 23);
    const norm = (h: Head) => Math.hypot(...h.weights);
    const fewShot = trainSoftmax(few.x, few.y, META, { seed: 4, solver: 'sgd', tuneL2: false }).head;
    const asManyShots = trainSoftmax(few.x, few.y, META, { seed: 4, solver: 'sgd', l2: 0.1 }).head;
    expect(norm(fewShot)).toBeLessThan(norm(asManyShots) * 0.8);
  });

  it('mini-batch with the old constants: one small new class beside large ones keeps the holdout and the usual L2; mostly small classes do not', () => {
    const norm = (h: Head) => Math.hypot(...h.weights);
    const withNewClass = clusters([60, 60, 5], 24);
    const grown = trainSoftmax(withNewClass.x, withNewClass.y, META, { seed: 4, solver: 'sgd', tuneL2: false });
    expect(grown.report.holdoutAccuracy).not.toBeNull();
    const asManyShots = trainSoftmax(withNewClass.x, withNewClass.y, META, { seed: 4, solver: 'sgd', l2: 0.1 });
    expect(norm(grown.head)).toBeCloseTo(norm(asManyShots.head), 5);
    // The new class's photos all train: none is spent on the holdout.
    expect(grown.head.predictIndices(withNewClass.x.subarray(120 * DIM)).every((c) => c === 2)).toBe(true);
    const mostlySmall = clusters([8, 8, 60], 25);
    expect(trainSoftmax(mostlySmall.x, mostlySmall.y, META, { seed: 4, solver: 'sgd' }).report.holdoutAccuracy).toBeNull();
  });

  it('a head over other features (made before normalising) is not used as a warm start', () => {
    const train = clusters([60, 60, 60], 24, 0.9);
    const old = trainSoftmax(train.x, train.y, META, { seed: 1, normalize: false }).head;
    const options = { seed: 2, solver: 'sgd', maxEpochs: 1, learningRate: 1e-5, holdoutFraction: 0 } as const;
    const cold = trainSoftmax(train.x, train.y, META, options).head;
    const warm = trainSoftmax(train.x, train.y, META, { ...options, warmStart: old }).head;
    expect(Array.from(warm.weights)).toEqual(Array.from(cold.weights));
  });

  it('refuses a training set with a single class', () => {
    const data = clusters([10, 0, 0], 16);
    expect(() => trainSoftmax(data.x, data.y, META)).toThrow(/at least 2 classes/);
  });
});

describe('predictions', () => {
  const train = clusters([40, 40, 40], 17, 1.5);
  const { head } = trainHead('softmax', train.x, train.y, META, { seed: 1 });

  it('gives probabilities that sum to 1 and a sorted top-k', () => {
    const p = head.predict(clusters([1, 0, 0], 18).x, { topK: 2 });
    expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(p.top).toHaveLength(2);
    expect(p.top[0]!.score).toBeGreaterThanOrEqual(p.top[1]!.score);
    expect(p.label).toBe('a');
  });

  it('answers unknown below the confidence threshold', () => {
    // Halfway between class a and class b: no class is confident.
    const x = new Float32Array(DIM).map((_, j) => (j < 2 * (DIM / 3) ? 1.25 : 0.5));
    const p = head.predict(x, { threshold: 0.99 });
    expect(p.label).toBe(UNKNOWN);
    expect(p.index).toBe(-1);
    expect(head.predict(x, { threshold: 0 }).label).not.toBe(UNKNOWN);
  });

  it('refuses an embedding of the wrong dimension', () => {
    expect(() => head.predict(new Float32Array(DIM + 1))).toThrow(/33 values, the head takes 32/);
  });
});

describe('head file', () => {
  const data = clusters([20, 20, 20], 19);
  const softmax = trainHead('softmax', data.x, data.y, META, { seed: 1 }).head.withMeta({
    version: 3,
    parent: 2,
    metrics: { holdoutAccuracy: 0.9 },
  });
  const prototype = trainHead('prototype', data.x, data.y, META).head;

  it('round-trips float32 heads bit-exactly, bytes and predictions', () => {
    for (const head of [softmax, prototype]) {
      const bytes = encodeHead(head);
      const back = decodeHead(bytes);
      expect(Buffer.from(back.weights.buffer).equals(Buffer.from(head.weights.buffer))).toBe(true);
      expect(Array.from(back.bias)).toEqual(Array.from(head.bias));
      expect(back.meta).toEqual(head.meta);
      expect(Buffer.from(encodeHead(back)).equals(Buffer.from(bytes))).toBe(true);
      expect(Array.from(back.predictIndices(data.x))).toEqual(Array.from(head.predictIndices(data.x)));
    }
  });

  it('saves and loads through the file system', () => {
    const path = join(tmp.path, 'a.head');
    saveHead(path, softmax);
    const back = loadHead(path, { backboneId: 'test-backbone', dim: DIM });
    expect(back.meta.version).toBe(3);
    expect(back.meta.parent).toBe(2);
    expect(Array.from(back.weights)).toEqual(Array.from(softmax.weights));
  });

  it('int8 weights are about a quarter of the size and keep the predictions', () => {
    const { openSet: _classMeansOfDim32, ...meta } = softmax.meta;
    const wide = new Head(
      { ...meta, dim: 1024 },
      Float32Array.from({ length: 3 * 1024 }, (_, i) => Math.sin(i)),
      new Float32Array(3),
    );
    expect(encodeHead(wide, 'int8').length / encodeHead(wide, 'float32').length).toBeLessThan(0.3);
    const i8 = encodeHead(softmax, 'int8');
    expect(headEncoding(i8)).toBe('int8');
    const back = decodeHead(i8);
    const test = clusters([30, 30, 30], 20);
    const agree = accuracy(back.predictIndices(test.x), softmax.predictIndices(test.x) as Int32Array);
    expect(agree).toBeGreaterThan(0.97);
  });

  const errorOf = (f: () => unknown): HeadError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(HeadError);
      return e as HeadError;
    }
    throw new Error('no error');
  };

  it('refuses a head made for another backbone or dimension, naming both', () => {
    const bytes = encodeHead(softmax);
    const other = errorOf(() => decodeHead(bytes, { where: 'site.head', backboneId: 'mobilenet_v2' }));
    expect(other.code).toBe('HEAD_BACKBONE_MISMATCH');
    expect(other.message).toMatch(/site\.head: head was trained on backbone "test-backbone".*not "mobilenet_v2"/);
    expect(errorOf(() => decodeHead(bytes, { dim: 1024 })).message).toMatch(/takes 32-d embeddings, the backbone gives 1024/);
  });

  it('names every kind of damage', () => {
    const bytes = encodeHead(softmax);
    const flipped = bytes.slice();
    flipped[bytes.length - 100]! ^= 0x40;
    const futureVersion = bytes.slice();
    futureVersion[4] = 9;
    const cases: [Uint8Array, string][] = [
      [bytes.slice(0, 20), 'HEAD_TRUNCATED'],
      [bytes.slice(0, bytes.length - 10), 'HEAD_CHECKSUM'],
      [flipped, 'HEAD_CHECKSUM'],
      [futureVersion, 'HEAD_FORMAT_UNSUPPORTED'],
      [new TextEncoder().encode('<html>this is not a head file at all, just a web page</html>'), 'HEAD_NOT_A_HEAD'],
      [new Uint8Array(0), 'HEAD_TRUNCATED'],
    ];
    for (const [input, code] of cases) expect(errorOf(() => decodeHead(input, { where: 'x.head' })).code, code).toBe(code);
  });

  it('names the field when the header is wrong, even with a valid checksum', () => {
    const meta = { ...softmax.meta, labels: 'daisy' };
    const forged = encodeHead(softmax);
    const json = JSON.stringify(meta);
    // Rebuild a file with a bad header and a correct checksum, the way a buggy writer would.
    const good = Buffer.from(forged);
    const headerLength = good.readUInt32LE(8);
    const rest = good.subarray(12 + headerLength, good.length - 32);
    const body = Buffer.concat([good.subarray(0, 8), Buffer.alloc(4), Buffer.from(json), rest]);
    body.writeUInt32LE(json.length, 8);
    const hash = createHash('sha256').update(body).digest();
    const error = errorOf(() => decodeHead(Buffer.concat([body, hash]), { where: 'bad.head' }));
    expect(error.code).toBe('HEAD_INVALID');
    expect(error.message).toMatch(/bad\.head: field "labels"/);
  });

  it('a missing file is a clear error', () => {
    writeFileSync(join(tmp.path, 'empty.head'), '');
    expect(() => loadHead(join(tmp.path, 'nope.head'))).toThrow(/nope\.head: cannot read head file/);
    expect(errorOf(() => loadHead(join(tmp.path, 'empty.head'))).code).toBe('HEAD_TRUNCATED');
    expect(readFileSync(join(tmp.path, 'empty.head')).length).toBe(0);
  });
});
