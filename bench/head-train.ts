// Head training: our softmax head against a tfjs-layers dense softmax layer trained with model.fit (the
// way browser transfer-learning demos do it), on the same embeddings and the same seeded 80/20 split.
// Compared at equal epochs and at equal accuracy (tfjs time to first reach our test accuracy).
//
//   npm run bench -- head-train [--data DIR] [--max-epochs N] [--json]

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Backbone } from '../runtime/backbone/backbone.js';
import { readFolderDataset, stratifiedSplit } from '../runtime/dataset/folder.js';
import { EmbeddingCache } from '../runtime/embeddings/cache.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import { trainHead } from '../runtime/head/index.js';
import { SOFTMAX_DEFAULTS } from '../runtime/head/softmax.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { defaultCacheDir, resolveModel } from '../runtime/models/resolve.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: join(sharedDir(), 'datasets', 'flowers128') },
    'max-epochs': { type: 'string', default: '40' },
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
