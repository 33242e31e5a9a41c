// A new class costs little: a head trained on 4 flowers128 classes learns a fifth from 5 labelled photos
// (warm-started, as the agent retrains), and the other classes' accuracy on their held-out photos is
// compared before and after. Every class takes a turn as the new one, over several seeded splits.
//
//   npm run bench -- new-class [--shots 5] [--seeds 4] [--json]

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { seededRandom, shuffle } from '../core/random.js';
import { stratifiedSplit } from '../runtime/dataset/folder.js';
import { trainHead } from '../runtime/head/index.js';
import { embed, rowsOf } from './embedded.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    shots: { type: 'string', default: '5' },
    seeds: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
});
const shots = Number(values.shots);
const flowers = await embed({ dataset: join(sharedDir(), 'datasets', 'flowers128') });
const d = flowers.dim;
const k = flowers.classes.length;

const runs: { newClass: string; seed: number; before: number; after: number; newRecall: number; newUnknownBefore: number }[] = [];
for (let seed = 1; seed <= Number(values.seeds); seed++) {
  const split = stratifiedSplit(flowers.y, k, 0.2, seed);
  for (let fresh = 0; fresh < k; fresh++) {
    const old = flowers.classes.filter((_, c) => c !== fresh);
    const labels = [...old, flowers.classes[fresh]!];
    // Class indices into `labels`: the old classes keep their order, the new one is last.
    const relabel = (c: number) => (c === fresh ? k - 1 : c > fresh ? c - 1 : c);
    const data = { x: flowers.x, y: Int32Array.from(flowers.y, relabel) };
    const oldTrain = split.train.filter((i) => flowers.y[i] !== fresh);
    const oldTest = rowsOf(
      data,
      split.test.filter((i) => flowers.y[i] !== fresh),
      d,
    );
    const freshRows = shuffle(
      split.train.filter((i) => flowers.y[i] === fresh),
      seededRandom(seed * 31 + fresh),
    );
    const freshTest = rowsOf(
      data,
      split.test.filter((i) => flowers.y[i] === fresh),
      d,
    );
    const meta = { backboneId: flowers.backboneId, dim: d };
    const base = trainHead('softmax', rowsOf(data, oldTrain, d).x, rowsOf(data, oldTrain, d).y, { ...meta, labels: old }, { seed }).head;
    const withNew = rowsOf(data, [...oldTrain, ...freshRows.slice(0, shots)], d);
    const grown = trainHead('softmax', withNew.x, withNew.y, { ...meta, labels }, { seed, warmStart: base }).head;
    const accuracy = (head: typeof base, set: { x: Float32Array; y: Int32Array }) => {
      const p = head.predictIndices(set.x);
      return set.y.reduce((a, y, i) => a + (p[i] === y ? 1 : 0), 0) / set.y.length;
    };
    const rows = (x: Float32Array) => Array.from({ length: x.length / d }, (_, i) => x.subarray(i * d, (i + 1) * d));
    runs.push({
      newClass: flowers.classes[fresh]!,
      seed,
      before: accuracy(base, oldTest),
      after: accuracy(grown, oldTest),
      newRecall: accuracy(grown, freshTest),
      newUnknownBefore: rows(freshTest.x).filter((e) => base.predict(e).unknown).length / freshTest.y.length,
    });
  }
}
const mean = (f: (r: (typeof runs)[number]) => number, of = runs) => of.reduce((a, r) => a + f(r), 0) / of.length;
const perClass = flowers.classes.map((c) => runs.filter((r) => r.newClass === c));
const report = {
  shots,
  seeds: Number(values.seeds),
  before: mean((r) => r.before),
  after: mean((r) => r.after),
  change: mean((r) => r.after - r.before),
  worstChange: Math.min(...runs.map((r) => r.after - r.before)),
  newRecall: mean((r) => r.newRecall),
  runs,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  const pts = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)}`;
  printTable(
    `a new class from ${shots} labelled photos: the other 4 flowers128 classes' accuracy on their held-out 20 %, before and after (warm start), mean of ${values.seeds} splits`,
    ['new class', 'others before', 'others after', 'change (points)', 'worst split', 'new class recall', 'new class unknown before'],
    [
      ...perClass.map((of, c) => [
        flowers.classes[c]!,
        mean((r) => r.before, of).toFixed(4),
        mean((r) => r.after, of).toFixed(4),
        pts(mean((r) => r.after - r.before, of)),
        pts(Math.min(...of.map((r) => r.after - r.before))),
        mean((r) => r.newRecall, of).toFixed(3),
        mean((r) => r.newUnknownBefore, of).toFixed(3),
      ]),
      [
        'all',
        report.before.toFixed(4),
        report.after.toFixed(4),
        pts(report.change),
        pts(report.worstChange),
        report.newRecall.toFixed(3),
        '',
      ],
    ],
  );
}
