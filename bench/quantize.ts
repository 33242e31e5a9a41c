// The int8 round trip on the default backbone, in one run: the TFLite int8 model imported as is, the
// same model dequantized to float32 (`model import --float`), and that float model quantized again by
// our PTQ on --images flowers128 photos. Prints PTQ wall time, onnxruntime throughput of each (2 threads,
// batch 8), and with --accuracy the flowers128 80/20 accuracy of a softmax head on each (`edgetune
// eval`'s seed-42 split, and the mean over ten seeded splits) with our int8's difference to the original.
//
//   npm run bench -- quantize [--images 100] [--accuracy] [--data DIR] [--json]

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { importModelFile } from '../quantize/import-model.js';
import { quantizeModelFile } from '../quantize/quantize-model.js';
import { Backbone } from '../runtime/backbone/backbone.js';
import { stratifiedSplit } from '../runtime/dataset/folder.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import { trainHead } from '../runtime/head/index.js';
import { preprocessFile } from '../runtime/image/preprocess.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { resolveModel } from '../runtime/models/resolve.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '100' },
    accuracy: { type: 'boolean', default: false },
    data: { type: 'string', default: join(sharedDir(), 'datasets', 'flowers128') },
    json: { type: 'boolean', default: false },
  },
});

const SPLIT_SEEDS = [42, 43, 44, 45, 46, 47, 48, 49, 50, 51];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const work = mkdtempSync(join(tmpdir(), 'edgetune-bench-quantize-'));
const log = (text: string) => {
  if (!values.json) process.stderr.write(`${text}\n`);
};
try {
  const intPath = join(work, 'int8.onnx');
  const floatPath = join(work, 'float.onnx');
  const ptqPath = join(work, 'ptq.onnx');
  await importModelFile(DEFAULT_BACKBONE_ID, intPath);
  await importModelFile(DEFAULT_BACKBONE_ID, floatPath, { float: true });
  log(`quantizing with ${values.images} calibration photos`);
  const ptq = await quantizeModelFile(floatPath, values.data, ptqPath, { images: Number(values.images) });

  const classes = readdirSync(values.data).sort();
  const files = classes.flatMap((c, label) =>
    readdirSync(join(values.data, c))
      .sort()
      .map((f) => ({ path: join(values.data, c, f), label })),
  );
  const rows: { model: string; bytes: number; imagesPerSecond: number; accuracy: number | null; splitAccuracies: number[] }[] = [];
  for (const [name, path] of [
    ['TFLite int8, imported', intPath],
    ['float32 (dequantized)', floatPath],
    ['float32 -> our int8 PTQ', ptqPath],
  ] as const) {
    const model = await resolveModel(path);
    const backbone = await Backbone.open(model, { workers: 1, threads: 2, batchSize: 8 });
    try {
      const inputs = await Promise.all(
        files.slice(0, 200).map((f) => preprocessFile(f.path, model.manifest.input, { resize: model.manifest.resize })),
      );
      await Promise.all(inputs.slice(0, 16).map((i) => backbone.embed(i.slice())));
      const started = performance.now();
      await Promise.all(inputs.map((i) => backbone.embed(i.slice())));
      const imagesPerSecond = inputs.length / ((performance.now() - started) / 1000);
      let accuracy: number | null = null;
      let splitAccuracies: number[] = [];
      if (values.accuracy) {
        log(`embedding ${files.length} photos with ${name}`);
        const outcomes = await embedFiles(
          files.map((f) => f.path),
          backbone,
        );
        const ok = outcomes.map((o, i) => ({ o, label: files[i]!.label })).filter((x) => x.o.embedding);
        const dim = backbone.dim;
        const y = Int32Array.from(ok, (x) => x.label);
        const pick = (idx: number[]) => {
          const x = new Float32Array(idx.length * dim);
          idx.forEach((r, i) => x.set(ok[r]!.o.embedding!, i * dim));
          return x;
        };
        // `edgetune eval`'s split (seed 42) and head, then more seeded splits: one split moves a point
        // either way with the luck of which photos land in the 20 %, for the original model too.
        splitAccuracies = SPLIT_SEEDS.map((seed) => {
          const { train, test } = stratifiedSplit(y, classes.length, 0.2, seed);
          const { head } = trainHead(
            'softmax',
            pick(train),
            Int32Array.from(train, (i) => y[i]!),
            { backboneId: model.manifest.id, dim, labels: classes },
            { seed },
          );
          const predicted = head.predictIndices(pick(test));
          return test.filter((r, i) => predicted[i] === y[r]).length / test.length;
        });
        accuracy = splitAccuracies[0]!;
      }
      rows.push({ model: name, bytes: model.bytes.length, imagesPerSecond, accuracy, splitAccuracies });
    } finally {
      await backbone.close();
    }
  }
  // Our int8 against the original int8, split by split: the round trip's accuracy cost.
  const ptqMinusOriginal = values.accuracy ? rows[2]!.splitAccuracies.map((a, i) => a - rows[0]!.splitAccuracies[i]!) : [];
  const report = {
    calibrationImages: ptq.calibrationImages,
    quantizeSeconds: ptq.seconds,
    outputCosineToFloat: ptq.outputCosine,
    rows,
    int8OverFloat: rows[2]!.imagesPerSecond / rows[1]!.imagesPerSecond,
    ...(values.accuracy
      ? {
          splitSeeds: SPLIT_SEEDS,
          ptqMinusOriginalSeed42: ptqMinusOriginal[0]!,
          ptqMinusOriginalMean: mean(ptqMinusOriginal),
          ptqMinusOriginalWorst: Math.min(...ptqMinusOriginal),
        }
      : {}),
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    printTable(
      'int8 round trip, default backbone on onnxruntime (1 worker x 2 threads, batch 8)',
      ['model', 'MB', 'images/s', 'flowers128 80/20 (seed 42)', `mean of ${SPLIT_SEEDS.length} splits`],
      rows.map((r) => [
        r.model,
        (r.bytes / 1e6).toFixed(1),
        r.imagesPerSecond.toFixed(1),
        r.accuracy === null ? '-' : r.accuracy.toFixed(4),
        r.accuracy === null ? '-' : mean(r.splitAccuracies).toFixed(4),
      ]),
    );
    if (values.accuracy) {
      const points = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;
      console.log(
        `\nour int8 - original int8, accuracy points: seed 42 ${points(ptqMinusOriginal[0]!)}, mean ${points(mean(ptqMinusOriginal))}, worst split ${points(Math.min(...ptqMinusOriginal))}`,
      );
    }
    console.log(
      `\nPTQ: ${ptq.calibrationImages} photos, ${ptq.seconds.toFixed(1)} s, output cosine to float ${ptq.outputCosine.toFixed(4)}; our int8 runs ${report.int8OverFloat.toFixed(2)}x the float model`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
