// Head training, two tables in one run.
//
// 1. Heads on flowers128 (80/20: mean of 20 seeded splits; 10 shots: mean of 10 seeds), every variant on
//    the same split in turn (interleaved, so machine load hits them alike): the classifier as it was
//    (no open set), the head as trained now (the same classifier plus its open-set calibration), L2
//    chosen by 3-fold cross-validation on the training photos (bench/cv-l2.ts, tried and not adopted)
//    and a fixed-constant baseline (L2 0.1 for every size, no few-shot setting).
// 2. Our softmax head against a tfjs-layers dense softmax layer trained with model.fit (the way browser
//    transfer-learning demos do it), on the same embeddings and the same seeded 80/20 split. Compared at
//    equal epochs and at equal accuracy (tfjs time to first reach our test accuracy).
//
//   npm run bench -- head-train [--data DIR] [--max-epochs N] [--splits 20] [--shot-seeds 10] [--no-tfjs] [--json]

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Backbone } from '../runtime/backbone/backbone.js';
import { readFolderDataset, shotSplit, stratifiedSplit } from '../runtime/dataset/folder.js';
import { EmbeddingCache } from '../runtime/embeddings/cache.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import { type Head, trainHead } from '../runtime/head/index.js';
import { SOFTMAX_DEFAULTS, trainSoftmax } from '../runtime/head/softmax.js';
import { chooseL2 } from './cv-l2.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { defaultCacheDir, resolveModel } from '../runtime/models/resolve.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: join(sharedDir(), 'datasets', 'flowers128') },
    'max-epochs': { type: 'string', default: '40' },
    splits: { type: 'string', default: '20' },
    'shot-seeds': { type: 'string', default: '10' },
    'no-tfjs': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const dataset = readFolderDataset(values.data);
const model = await resolveModel(DEFAULT_BACKBONE_ID);
const backbone = await Backbone.open(model);
const cache = EmbeddingCache.open(defaultCacheDir(), `${model.manifest.id}-${model.manifest.sha256.slice(0, 12)}`, backbone.dim);
const outcomes = await embedFiles(
  dataset.items.map((i) => i.path),
  backbone,
  { cache },
);
cache.close();
await backbone.close();

const d = backbone.dim;
const k = dataset.classes.length;
const rows = outcomes.flatMap((o, i) => (o.embedding ? [{ x: o.embedding, y: dataset.items[i]!.label }] : []));
const split = stratifiedSplit(
  Int32Array.from(rows, (r) => r.y),
  k,
  0.2,
  42,
);
const matrix = (idx: number[]) => {
  const x = new Float32Array(idx.length * d);
  idx.forEach((i, r) => x.set(rows[i]!.x, r * d));
  return { x, y: Int32Array.from(idx, (i) => rows[i]!.y) };
};
const train = matrix(split.train);
const test = matrix(split.test);
const allY = Int32Array.from(rows, (r) => r.y);
const meta = { backboneId: model.manifest.id, dim: d, labels: dataset.classes };
type Variant = { name: string; train: (x: Float32Array, y: Int32Array, seed: number) => Head };
const variants: Variant[] = [
  { name: 'classifier as before (no open set)', train: (x, y, seed) => trainSoftmax(x, y, meta, { seed }).head },
  { name: 'head as trained now (with open-set calibration)', train: (x, y, seed) => trainHead('softmax', x, y, meta, { seed }).head },
  {
    name: 'L2 by 3-fold CV on the training photos (not adopted)',
    train: (x, y, seed) => trainSoftmax(x, y, meta, { seed, l2: chooseL2(x, y, meta, { seed }).l2 }).head,
  },
  { name: 'fixed constants (L2 0.1 at every size)', train: (x, y, seed) => trainSoftmax(x, y, meta, { seed, l2: 0.1 }).head },
];
function compare(splits: { train: number[]; test: number[] }[]) {
  const totals = variants.map(() => ({ accuracy: 0, ms: 0 }));
  for (const [s, split] of splits.entries()) {
    const tr = matrix(split.train);
    const te = matrix(split.test);
    for (const [v, variant] of variants.entries()) {
      const started = performance.now();
      const head = variant.train(tr.x, tr.y, s + 1);
      totals[v]!.ms += performance.now() - started;
      const p = head.predictIndices(te.x);
      totals[v]!.accuracy += te.y.reduce((a, y, i) => a + (p[i] === y ? 1 : 0), 0) / te.y.length;
    }
  }
  return variants.map((v, i) => ({ name: v.name, accuracy: totals[i]!.accuracy / splits.length, ms: totals[i]!.ms / splits.length }));
}
const splitCount = Number(values.splits);
const shotSeeds = Number(values['shot-seeds']);
const heads = {
  split80: compare(Array.from({ length: splitCount }, (_, s) => stratifiedSplit(allY, k, 0.2, s + 1))),
  shots10: compare(Array.from({ length: shotSeeds }, (_, s) => shotSplit(allY, k, 10, 42 + s))),
};
if (!values.json) {
  printTable(
    `heads on flowers128 (${model.manifest.id}): 80/20 mean of ${splitCount} splits, 10 shots mean of ${shotSeeds} seeds; variants interleaved per split; time per training (loaded 2-core machine: compare within the run)`,
    ['head', '80/20 accuracy', '80/20 ms', '10-shot accuracy', '10-shot ms'],
    heads.split80.map((r, i) => [
      r.name,
      r.accuracy.toFixed(4),
      r.ms.toFixed(0),
      heads.shots10[i]!.accuracy.toFixed(4),
      heads.shots10[i]!.ms.toFixed(0),
    ]),
  );
  console.log('');
}

const accuracyOf = (predicted: ArrayLike<number>) => Array.from(test.y).filter((y, i) => predicted[i] === y).length / test.y.length;

// Ours: a few runs, median time (the first run includes JIT warm-up).
const ourRuns = Array.from({ length: 3 }, () => {
  const result = trainHead('softmax', train.x, train.y, { backboneId: model.manifest.id, dim: d, labels: dataset.classes }, { seed: 42 });
  return {
    ms: result.trainMs,
    accuracy: accuracyOf(result.head.predictIndices(test.x)),
    epochs: result.report!.epochs,
  };
});
const ours = ourRuns.sort((a, b) => a.ms - b.ms)[1]!;

if (values['no-tfjs']) {
  if (values.json) console.log(JSON.stringify({ heads }, null, 2));
  process.exit(0);
}

// tfjs-layers: one dense softmax layer on the raw embeddings, Adam, batch 32, epoch by epoch.
await tf.setBackend('cpu');
const xs = tf.tensor2d(train.x, [train.y.length, d]);
const ys = tf.oneHot(tf.tensor1d(Array.from(train.y), 'int32'), k);
const xt = tf.tensor2d(test.x, [test.y.length, d]);
const net = tf.sequential({
  layers: [tf.layers.dense({ units: k, activation: 'softmax', inputShape: [d] })],
});
net.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy' });
const maxEpochs = Number(values['max-epochs']);
const tfjsEpochs: { epoch: number; ms: number; accuracy: number }[] = [];
let elapsed = 0;
for (let epoch = 1; epoch <= maxEpochs; epoch++) {
  const started = performance.now();
  await net.fit(xs, ys, { epochs: 1, batchSize: 32, shuffle: true, verbose: 0 });
  elapsed += performance.now() - started;
  const predicted = (net.predict(xt) as tf.Tensor).argMax(1).dataSync();
  tfjsEpochs.push({ epoch, ms: elapsed, accuracy: accuracyOf(predicted) });
  if (tfjsEpochs.at(-1)!.accuracy >= ours.accuracy && epoch >= ours.epochs) break;
}
const atEqualEpochs = tfjsEpochs[Math.min(ours.epochs, tfjsEpochs.length) - 1]!;
const reached = tfjsEpochs.find((e) => e.accuracy >= ours.accuracy);
const best = tfjsEpochs.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
const equalAccuracy = reached ?? best;

const report = {
  heads,
  train: train.y.length,
  test: test.y.length,
  dim: d,
  ours: { ms: ours.ms, accuracy: ours.accuracy, epochs: ours.epochs, batchSize: SOFTMAX_DEFAULTS.batchSize },
  tfjsAtEqualEpochs: atEqualEpochs,
  tfjsAtEqualAccuracy: { ...equalAccuracy, reachedOurAccuracy: reached !== undefined },
  speedupEqualEpochs: atEqualEpochs.ms / ours.ms,
  speedupEqualAccuracy: equalAccuracy.ms / ours.ms,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    `softmax head training, ${train.y.length} x ${d} embeddings (${model.manifest.id}), ${k} classes; test on ${test.y.length}`,
    ['trainer', 'epochs', 'time ms', 'test accuracy', 'our speedup'],
    [
      ['edgetune softmax head', ours.epochs, ours.ms.toFixed(0), ours.accuracy.toFixed(3), '1.0x'],
      [
        'tfjs-layers, equal epochs',
        atEqualEpochs.epoch,
        atEqualEpochs.ms.toFixed(0),
        atEqualEpochs.accuracy.toFixed(3),
        `${report.speedupEqualEpochs.toFixed(1)}x`,
      ],
      [
        reached ? 'tfjs-layers, first to reach our accuracy' : `tfjs-layers, best in ${maxEpochs} epochs (never reached ours)`,
        equalAccuracy.epoch,
        equalAccuracy.ms.toFixed(0),
        equalAccuracy.accuracy.toFixed(3),
        `${report.speedupEqualAccuracy.toFixed(1)}x${reached ? '' : ' (at least)'}`,
      ],
    ],
  );
}
