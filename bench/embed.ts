// Embedding throughput per engine, worker count, thread count and batch size, on real photos: the TFLite
// WASM engine on the .tflite file and onnxruntime on the same model imported to ONNX (quantize/), so the
// `speedup` (ORT over TFLite images/s on 2 cores, best layout and batch of each: 1 worker x 2 threads or
// 2 workers x 1 thread) is measured in one run on one model. Also the RSS of a process with the default
// backbone loaded.
//
// The file path (read, hash, decode, resize, infer) against inference only on the default layout, before
// and after onnxruntime's intra-op threads stopped busy-waiting (`spinning`, runtime/backbone/backbone.ts),
// in the same interleaved rounds.
//
//   npm run bench -- embed [--images N] [--rounds R] [--data DIR] [--model ID] [--only-onnx] [--json]

import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Backbone, type BackboneOptions } from '../runtime/backbone/backbone.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import { preprocessFile } from '../runtime/image/preprocess.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { type ResolvedModel, resolveModel } from '../runtime/models/resolve.js';
import { importTflite, importedManifest } from '../runtime/models/tflite-import.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '10' },
    data: { type: 'string', default: join(sharedDir(), 'datasets', 'flowers128') },
    model: { type: 'string', default: DEFAULT_BACKBONE_ID },
    'only-onnx': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const count = Number(values.images);
const rounds = Number(values.rounds);
const classes = readdirSync(values.data).sort();
const files = classes.flatMap((c) =>
  readdirSync(join(values.data, c))
    .sort()
    .map((f) => join(values.data, c, f)),
);
const sample = Array.from({ length: count }, (_, i) => files[(i * 7919) % files.length]!);
const model = await resolveModel(values.model);

interface Row {
  engine: string;
  workers: number;
  threads: number;
  batch: number;
  mode: string;
  spinning: boolean;
  imagesPerSecond: number;
  msPerImage: number;
}
const rows: Row[] = [];

const inputs = await Promise.all(sample.map((f) => preprocessFile(f, model.manifest.input, { resize: model.manifest.resize })));

// The same model on onnxruntime: imported in memory, int8 kept as QDQ.
const imported = importTflite(model.bytes, model.path);
const onnxModel: ResolvedModel = {
  ...model,
  bytes: imported.bytes,
  manifest: importedManifest(model.manifest, imported, { file: 'imported.onnx', keepLabels: false }),
};

interface Config {
  options: BackboneOptions;
  mode: 'tensors' | 'files';
  which: ResolvedModel;
}
const configs: Config[] = [];
for (const [workers, threads] of [
  [1, 1],
  [1, 2],
  [2, 1],
] as const) {
  for (const batchSize of [1, 8, 16])
    if (!values['only-onnx']) configs.push({ options: { engine: 'tflite', workers, threads, batchSize }, mode: 'tensors', which: model });
}
for (const [workers, threads] of [
  [1, 1],
  [1, 2],
  [2, 1],
] as const) {
  for (const batchSize of [1, 8, 16]) configs.push({ options: { workers, threads, batchSize }, mode: 'tensors', which: onnxModel });
}
if (!values['only-onnx']) configs.push({ options: { engine: 'tflite' }, mode: 'files', which: model });
// Before: onnxruntime's threads spinning between ops (its own default, edgetune's until now).
configs.push({ options: { spinning: true }, mode: 'tensors', which: onnxModel });
configs.push({ options: { spinning: true }, mode: 'files', which: model });
configs.push({ options: {}, mode: 'tensors', which: onnxModel });
// The default: the .tflite file on onnxruntime through the cached import.
configs.push({ options: {}, mode: 'files', which: model });

// Every configuration runs once per round, rounds interleaved, and keeps its best round: on a machine
// shared with other work, a burst of someone else's load then costs one round of one configuration
// instead of every measurement taken while it lasted, and both engines get the same chances. Each
// round embeds at least `count` images and runs at least ROUND_SECONDS.
const ROUND_SECONDS = 0.5;
const opened = await Promise.all(configs.map((c) => Backbone.open(c.which, c.options)));
const best = configs.map(() => 0);
try {
  for (let round = 0; round < rounds; round++) {
    for (const [i, config] of configs.entries()) {
      const backbone = opened[i]!;
      if (round === 0) await Promise.all(inputs.slice(0, 8).map((x) => backbone.embed(x.slice())));
      let done = 0;
      const started = performance.now();
      while (done < count || performance.now() - started < ROUND_SECONDS * 1000) {
        if (config.mode === 'tensors') await Promise.all(inputs.map((x) => backbone.embed(x.slice())));
        else await embedFiles(sample, backbone);
        done += count;
      }
      best[i] = Math.max(best[i]!, done / ((performance.now() - started) / 1000));
    }
  }
} finally {
  await Promise.all(opened.map((b) => b.close()));
}
configs.forEach((config, i) => {
  const backbone = opened[i]!;
  rows.push({
    engine: backbone.engine,
    workers: backbone.settings.workers,
    threads: backbone.settings.threads,
    batch: backbone.settings.batchSize,
    mode: config.mode === 'tensors' ? 'inference only' : 'files: read, decode, resize, infer',
    spinning: Boolean(config.options.spinning),
    imagesPerSecond: best[i]!,
    msPerImage: 1000 / best[i]!,
  });
});

const onTwoCores = (engine: string) =>
  Math.max(
    ...rows.filter((r) => r.engine === engine && r.mode === 'inference only' && r.workers * r.threads === 2).map((r) => r.imagesPerSecond),
  );
const speedup = values['only-onnx'] ? Number.NaN : onTwoCores('onnx') / onTwoCores('tflite');
// The last four rows: default layout, spinning (before) and not (after), inference only and files.
const [tensorsBefore, filesBefore, tensorsAfter, filesAfter] = rows.slice(-4).map((r) => r.imagesPerSecond) as [
  number,
  number,
  number,
  number,
];
const filePath = {
  before: { inferenceOnly: tensorsBefore, files: filesBefore, ratio: filesBefore / tensorsBefore },
  after: { inferenceOnly: tensorsAfter, files: filesAfter, ratio: filesAfter / tensorsAfter },
  filesAfterOverBestInferenceOnTwoCores: filesAfter / onTwoCores('onnx'),
};

/** RSS of a fresh process that loads the default backbone with these options and embeds one photo. */
function rssOfFreshProcess(options: BackboneOptions): number {
  const script = `
    const { Backbone } = await import(${JSON.stringify(new URL('../runtime/backbone/backbone.js', import.meta.url).href)});
    const { resolveModel } = await import(${JSON.stringify(new URL('../runtime/models/resolve.js', import.meta.url).href)});
    const model = await resolveModel(${JSON.stringify(values.model)});
    const backbone = await Backbone.open(model, ${JSON.stringify(options)});
    await backbone.embed(new Uint8Array(model.manifest.input.width * model.manifest.input.height * 3).fill(100));
    process.stdout.write(String(process.memoryUsage().rss));
    await backbone.close();`;
  // Compiled (npm run bench) the child runs plain JS; under tsx it needs the loader too.
  const loader = import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const out = execFileSync(process.execPath, [...loader, '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return Number(out.trim().split('\n').at(-1));
}
const rss = {
  onnxDefault: rssOfFreshProcess({}) / 2 ** 20,
  tfliteTwoWorkers: rssOfFreshProcess({ engine: 'tflite', workers: 2 }) / 2 ** 20,
  tfliteOneWorker: rssOfFreshProcess({ engine: 'tflite', workers: 1 }) / 2 ** 20,
};

const report = {
  model: model.manifest.id,
  images: count,
  rounds,
  rows,
  defaultImagesPerSecond: rows.at(-1)!.imagesPerSecond,
  speedup,
  filePath,
  rssMiB: rss,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    `embedding throughput, ${model.manifest.id}, ${count} flowers128 photos, best of ${rounds} interleaved rounds`,
    ['engine', 'workers', 'threads/worker', 'batch', 'spinning', 'measures', 'images/s', 'ms/image'],
    rows.map((r) => [
      r.engine,
      r.workers,
      r.threads,
      r.batch,
      r.engine === 'onnx' ? (r.spinning ? 'yes' : 'no') : '-',
      r.mode,
      r.imagesPerSecond.toFixed(1),
      r.msPerImage.toFixed(1),
    ]),
  );
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  console.log(
    `\nfiles to embeddings over inference only, default layout: before (spinning) ${filesBefore.toFixed(0)} / ${tensorsBefore.toFixed(0)} = ${pct(filePath.before.ratio)}, after ${filesAfter.toFixed(0)} / ${tensorsAfter.toFixed(0)} = ${pct(filePath.after.ratio)}; after over the best inference-only row on 2 cores: ${pct(filePath.filesAfterOverBestInferenceOnTwoCores)}`,
  );
  console.log(`\nspeedup on 2 cores, best of each: onnxruntime ${speedup.toFixed(2)}x the TFLite WASM engine`);
  console.log(
    `\nRSS of a fresh process with the backbone loaded and run once: ${rss.onnxDefault.toFixed(0)} MiB on onnxruntime (the default), ${rss.tfliteTwoWorkers.toFixed(0)} MiB on TFLite with 2 workers, ${rss.tfliteOneWorker.toFixed(0)} MiB with 1`,
  );
}
