// Open set: a head trained on 4 flowers128 classes (the fifth held out), scored on held-out photos of its
// classes, on unrelated photos (../shared/datasets/other-photos, ../shared/images) and on the fifth
// class. Rows: the top softmax probability (at the agent's old default 0.5, and at a threshold set on the
// test photos themselves to flag 5 % of them, which a device cannot do), the head's calibrated distance,
// and nearest-neighbour cosine over every training photo (what the distance would cost n x dim numbers to beat).
//
//   npm run bench -- open-set [--held-out tulip] [--seed 42] [--json]

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stratifiedSplit } from '../runtime/dataset/folder.js';
import { trainHead } from '../runtime/head/index.js';
import { openSetFeatures, quantile } from '../runtime/head/open-set.js';
import { embed, photosUnder, rowsOf } from './embedded.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    'held-out': { type: 'string', default: 'tulip' },
    seed: { type: 'string', default: '42' },
    json: { type: 'boolean', default: false },
  },
});

const shared = sharedDir();
const flowers = await embed({ dataset: join(shared, 'datasets', 'flowers128') });
const others = await embed({ paths: photosUnder(join(shared, 'datasets', 'other-photos')) });
const images = await embed({ paths: photosUnder(join(shared, 'images')) });
const d = flowers.dim;
const fifth = flowers.classes.indexOf(values['held-out']);
if (fifth < 0) throw new Error(`--held-out: no class "${values['held-out']}" in ${flowers.classes.join(', ')}`);
const knownClasses = flowers.classes.filter((_, c) => c !== fifth);
const knownRows = [...flowers.y.keys()].filter((i) => flowers.y[i] !== fifth);
const fifthRows = [...flowers.y.keys()].filter((i) => flowers.y[i] === fifth);
const relabelled = { x: flowers.x, y: Int32Array.from(flowers.y, (c) => (c === fifth ? -1 : c > fifth ? c - 1 : c)) };
const split = stratifiedSplit(
  Int32Array.from(knownRows, (i) => relabelled.y[i]!),
  knownClasses.length,
  0.2,
  Number(values.seed),
);
const train = rowsOf(
  relabelled,
  split.train.map((i) => knownRows[i]!),
  d,
);
const test = rowsOf(
  relabelled,
  split.test.map((i) => knownRows[i]!),
  d,
);
const novel = rowsOf(relabelled, fifthRows, d);

const started = performance.now();
const { head } = trainHead('softmax', train.x, train.y, { backboneId: flowers.backboneId, dim: d, labels: knownClasses });
const trainMs = performance.now() - started;

const each = (x: Float32Array) => Array.from({ length: x.length / d }, (_, i) => x.subarray(i * d, (i + 1) * d));
/** Higher = more likely unknown. */
type Score = (e: Float32Array) => number;
const maxSoftmax: Score = (e) => -Math.max(...head.probabilities(e));
const distance: Score = (e) => head.distance(e)!;
const trainFeatures = each(train.x).map((e) => openSetFeatures(e, head.meta.power));
const nearestNeighbour: Score = (e) => {
  const f = openSetFeatures(e, head.meta.power);
  let best = -2;
  for (const t of trainFeatures) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += f[j]! * t[j]!;
    if (dot > best) best = dot;
  }
  return 1 - best;
};

/** P(score of an unknown photo > score of a known one), ties half. */
function auroc(unknown: number[], known: number[]): number {
  const sorted = [...known].sort((a, b) => a - b);
  let total = 0;
  for (const u of unknown) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    let ties = lo;
    while (ties < sorted.length && sorted[ties] === u) ties++;
    total += lo + (ties - lo) / 2;
  }
  return total / (unknown.length * known.length);
}

const flagged = (scores: number[], threshold: number) => scores.filter((s) => s > threshold).length / scores.length;

function row(name: string, score: Score, threshold: (knownScores: number[]) => number) {
  const known = each(test.x).map(score);
  const other = each(others.x).map(score);
  const image = each(images.x).map(score);
  const near = each(novel.x).map(score);
  const t = threshold(known);
  return {
    score: name,
    threshold: t,
    knownFlagged: flagged(known, t),
    otherPhotosFlagged: flagged(other, t),
    imagesFlagged: flagged(image, t),
    fifthClassFlagged: flagged(near, t),
    aurocOtherPhotos: auroc(other, known),
    aurocImages: auroc(image, known),
    aurocFifthClass: auroc(near, known),
  };
}

const rows = [
  row('max softmax < 0.5 (old agent default)', maxSoftmax, () => -0.5),
  row('max softmax, 5 % of test photos (oracle)', maxSoftmax, (known) => quantile(known, 0.95)),
  row(`class-mean distance, calibrated (head file)`, distance, () => head.meta.openSet!.threshold),
  row('nearest training photo, 5 % of test photos (oracle)', nearestNeighbour, (known) => quantile(known, 0.95)),
];
const report = {
  trainedOn: knownClasses,
  heldOut: values['held-out'],
  train: train.y.length,
  test: test.y.length,
  otherPhotos: others.y.length,
  images: images.y.length,
  fifthClass: novel.y.length,
  trainMs,
  calibration: head.meta.openSet,
  rows,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  printTable(
    `open set: softmax head on ${knownClasses.join(', ')} (${train.y.length} photos, ${trainMs.toFixed(0)} ms with calibration); ` +
      `flagged unknown among ${test.y.length} held-out known photos (target <= 10 %), ${others.y.length} other-photos and ` +
      `${images.y.length} images (target >= 90 %), ${novel.y.length} ${values['held-out']}; AUROC known vs each`,
    ['score', 'known', 'other-photos', 'images', values['held-out'], 'AUROC other', 'AUROC images', `AUROC ${values['held-out']}`],
    rows.map((r) => [
      r.score,
      pct(r.knownFlagged),
      pct(r.otherPhotosFlagged),
      pct(r.imagesFlagged),
      pct(r.fifthClassFlagged),
      r.aurocOtherPhotos.toFixed(3),
      r.aurocImages.toFixed(3),
      r.aurocFifthClass.toFixed(3),
    ]),
  );
}
