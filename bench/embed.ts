// Embedding throughput per engine, worker count, thread count and batch size, on real photos: the TFLite
// WASM engine on the .tflite file and onnxruntime on the same model imported to ONNX (quantize/), so the
// `speedup` (ORT over TFLite images/s on 2 cores, best layout and batch of each: 1 worker x 2 threads or
// 2 workers x 1 thread) is measured in one run on one model. Also the RSS of a process with the default
// backbone loaded.
//
// The file path (read, hash, decode, resize, infer) against inference only, on one backbone with the
// default layout, in the same interleaved rounds: before (sharp resizes every photo) and after (photos
// smaller than the input enlarged by runtime/image/enlarge.ts, the same bytes), with the process's CPU
// time per image (all threads) beside each figure.
//
//   npm run bench -- embed [--images N] [--rounds R] [--data DIR] [--model ID] [--only-onnx]
//                          [--only-file-path] [--in-flight N] [--json]

import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Backbone, type BackboneOptions } from '../runtime/backbone/backbone.js';
import { type EmbedFilesOptions, embedFiles } from '../runtime/embeddings/embed-files.js';
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
    'only-file-path': { type: 'boolean', default: false },
    'in-flight': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const count = Number(values.images);
const rounds = Number(values.rounds);
// Class folders of photos (a dataset may also hold notes such as other-photos/SOURCE.md).
const classes = readdirSync(values.data, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const files = classes.flatMap((c) =>
  readdirSync(join(values.data, c))
    .sort()
    .map((f) => join(values.data, c, f)),
);
const sample = Array.from({ length: count }, (_, i) => files[(i * 7919) % files.length]!);
const model = await resolveModel(values.model);

type Mode = 'tensors' | 'files';
const MODE_LABEL: Record<Mode, string> = { tensors: 'inference only', files: 'files: read, hash, decode, resize, infer' };

interface Row {
  engine: string;
  workers: number;
  threads: number;
  batch: number;
  mode: string;
  /** Which version of the file path, for its rows. */
  path: string;
  imagesPerSecond: number;
  /** Images over time across every round, not only the best. */
  imagesPerSecondOverAllRounds: number;
  msPerImage: number;
  /** Process CPU time (every thread) per image, over all rounds. */
  cpuMsPerImage: number;
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
  mode: Mode;
  which: ResolvedModel;
  /** Configurations with the same key share one backbone (the file path's rows). */
  shared?: string;
  path?: string;
  files?: EmbedFilesOptions;
}
const configs: Config[] = [];
const layouts = [
  [1, 1],
  [1, 2],
  [2, 1],
] as const;
if (!values['only-file-path']) {
  for (const [workers, threads] of layouts) {
    for (const batchSize of [1, 8, 16])
      if (!values['only-onnx']) configs.push({ options: { engine: 'tflite', workers, threads, batchSize }, mode: 'tensors', which: model });
  }
  for (const [workers, threads] of layouts) {
    for (const batchSize of [1, 8, 16]) configs.push({ options: { workers, threads, batchSize }, mode: 'tensors', which: onnxModel });
  }
  if (!values['only-onnx']) configs.push({ options: { engine: 'tflite' }, mode: 'files', which: model });
}
// The file path on the default backbone (the .tflite file on onnxruntime through the cached import).
// Before: a worker got its next batch only after answering, 2 batches of photos in flight, and sharp
// resized every photo. After: the defaults (a second batch waits in the worker, one more is decoded,
// small photos enlarged by runtime/image/enlarge.ts, small JPEGs decoded by runtime/image/small-jpeg.ts).
// Between them, the new backbone with sharp's resize, and with sharp's decode.
const inFlight = values['in-flight'] ? { inFlight: Number(values['in-flight']) } : {};
const before = { options: { batchesPerWorker: 1 }, which: model, shared: 'before', path: 'before' };
configs.push({ ...before, mode: 'tensors' });
configs.push({ ...before, mode: 'files', files: { fastEnlarge: false, inFlight: 16 } });
const after = { options: {}, which: model, shared: 'after' };
configs.push({ ...after, mode: 'tensors', path: 'after' });
configs.push({ ...after, mode: 'files', path: 'after, sharp resizes', files: { fastEnlarge: false, ...inFlight } });
configs.push({ ...after, mode: 'files', path: 'after, sharp decodes', files: { smallJpegDecoder: false, ...inFlight } });
configs.push({ ...after, mode: 'files', path: 'after', files: inFlight });

// Every configuration runs once per round, rounds interleaved, and keeps its best round: on a machine
// shared with other work, a burst of someone else's load then costs one round of one configuration
// instead of every measurement taken while it lasted, and both engines get the same chances. Each
// round embeds at least `count` images and runs at least ROUND_SECONDS.
const ROUND_SECONDS = 0.5;
const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const load = { before: loadAverage(), after: '' };
const sharedBackbones = new Map<string, Promise<Backbone>>();
const opened = await Promise.all(
  configs.map((c) => {
    if (!c.shared) return Backbone.open(c.which, c.options);
    if (!sharedBackbones.has(c.shared)) sharedBackbones.set(c.shared, Backbone.open(c.which, c.options));
    return sharedBackbones.get(c.shared)!;
  }),
);
const best = configs.map(() => 0);
const perRound = configs.map(() => [] as number[]);
const totals = configs.map(() => ({ images: 0, seconds: 0 }));
const cpu = configs.map(() => ({ micros: 0, images: 0 }));
try {
  for (let round = 0; round < rounds; round++) {
    for (const [i, config] of configs.entries()) {
      const backbone = opened[i]!;
      if (round === 0) await Promise.all(inputs.slice(0, 8).map((x) => backbone.embed(x.slice())));
      let done = 0;
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      while (done < count || performance.now() - started < ROUND_SECONDS * 1000) {
        if (config.mode === 'tensors') await Promise.all(inputs.map((x) => backbone.embed(x.slice())));
        else await embedFiles(sample, backbone, config.files);
        done += count;
      }
      const used = process.cpuUsage(cpuBefore);
      cpu[i]!.micros += used.user + used.system;
      cpu[i]!.images += done;
      const imagesPerSecond = done / ((performance.now() - started) / 1000);
      totals[i]!.images += done;
      totals[i]!.seconds += done / imagesPerSecond;
      best[i] = Math.max(best[i]!, imagesPerSecond);
      perRound[i]!.push(imagesPerSecond);
    }
  }
} finally {
  await Promise.all([...new Set(opened)].map((b) => b.close()));
}
load.after = loadAverage();
configs.forEach((config, i) => {
  const backbone = opened[i]!;
  rows.push({
    engine: backbone.engine,
    workers: backbone.settings.workers,
    threads: backbone.settings.threads,
    batch: backbone.settings.batchSize,
    mode: MODE_LABEL[config.mode],
    path: config.path ?? '',
    imagesPerSecond: best[i]!,
    imagesPerSecondOverAllRounds: totals[i]!.images / totals[i]!.seconds,
    msPerImage: 1000 / best[i]!,
    cpuMsPerImage: cpu[i]!.micros / 1000 / cpu[i]!.images,
  });
});

const onTwoCores = (engine: string) =>
  Math.max(
    ...rows
      .filter((r) => r.engine === engine && r.mode === MODE_LABEL.tensors && r.workers * r.threads === 2)
      .map((r) => r.imagesPerSecond),
  );
const speedup = values['only-onnx'] || values['only-file-path'] ? Number.NaN : onTwoCores('onnx') / onTwoCores('tflite');
// Best rounds can come from different moments of someone else's load; over all rounds (images embedded
// over the time taken, every row running in turn through the same stretch of load) is steadier.
const allRoundsRatio = (files: number, tensors: number) =>
  rows[files]!.imagesPerSecondOverAllRounds / rows[tensors]!.imagesPerSecondOverAllRounds;
// Images per CPU-second (every thread of this process), files over inference only: the ratio on cores
// this process had to itself and kept busy, and the figure least moved by other work on the machine.
const cpuRatio = (files: number, tensors: number) => rows[tensors]!.cpuMsPerImage / rows[files]!.cpuMsPerImage;
// Each round runs inference only and then the file path moments apart: the median of those paired ratios
// is the figure a burst of someone else's load moves least (a best round of one over a best round of the
// other can pair a lucky moment with an unlucky one).
const pairedRatio = (files: number, tensors: number) => {
  const ratios = perRound[files]!.map((f, r) => f / perRound[tensors]![r]!).sort((a, b) => a - b);
  const mid = ratios.length >> 1;
  return ratios.length % 2 === 1 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
};
// The last six rows: the file path before, after and between; each against its inference-only row.
const n = configs.length;
const versus = (files: number, tensors: number) => {
  const [f, t] = [rows[files]!.imagesPerSecond, rows[tensors]!.imagesPerSecond];
  return {
    inferenceOnly: t,
    files: f,
    ratio: f / t,
    allRoundsRatio: allRoundsRatio(files, tensors),
    cpuRatio: cpuRatio(files, tensors),
    pairedRatio: pairedRatio(files, tensors),
  };
};
const filePath = {
  before: versus(n - 5, n - 6),
  afterWithSharpResizing: versus(n - 3, n - 4),
  afterWithSharpDecoding: versus(n - 2, n - 4),
  after: versus(n - 1, n - 4),
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
const rss = values['only-file-path']
  ? undefined
  : {
      onnxDefault: rssOfFreshProcess({}) / 2 ** 20,
      tfliteTwoWorkers: rssOfFreshProcess({ engine: 'tflite', workers: 2 }) / 2 ** 20,
      tfliteOneWorker: rssOfFreshProcess({ engine: 'tflite', workers: 1 }) / 2 ** 20,
    };

const report = {
  model: model.manifest.id,
  images: count,
  rounds,
  loadAverage: load,
  rows,
  defaultImagesPerSecond: rows.at(-1)!.imagesPerSecond,
  speedup,
  filePath,
  rssMiB: rss,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    `embedding throughput, ${model.manifest.id}, ${count} photos of ${basename(values.data)}, best of ${rounds} interleaved rounds; load average ${load.before} before, ${load.after} after`,
    [
      'engine',
      'workers',
      'threads/worker',
      'batch',
      'measures',
      'file path',
      'images/s',
      'ms/image',
      'all rounds images/s',
      'CPU ms/image',
    ],
    rows.map((r) => [
      r.engine,
      r.workers,
      r.threads,
      r.batch,
      r.mode,
      r.path,
      r.imagesPerSecond.toFixed(1),
      r.msPerImage.toFixed(1),
      r.imagesPerSecondOverAllRounds.toFixed(1),
      r.cpuMsPerImage.toFixed(1),
    ]),
  );
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  const ratio = (r: (typeof filePath)['before']) =>
    `${r.files.toFixed(0)} / ${r.inferenceOnly.toFixed(0)} = ${pct(r.ratio)} (median of paired rounds ${pct(r.pairedRatio)}, over all rounds ${pct(r.allRoundsRatio)}, per CPU-second ${pct(r.cpuRatio)})`;
  console.log(
    `\nfiles to embeddings over inference only on the default backbone, best rounds: before ${ratio(filePath.before)}; after ${ratio(filePath.after)}; after with sharp resizing every photo ${ratio(filePath.afterWithSharpResizing)}; after with sharp decoding every photo ${ratio(filePath.afterWithSharpDecoding)}`,
  );
  if (!Number.isNaN(speedup)) console.log(`\nspeedup on 2 cores, best of each: onnxruntime ${speedup.toFixed(2)}x the TFLite WASM engine`);
  if (rss)
    console.log(
      `\nRSS of a fresh process with the backbone loaded and run once: ${rss.onnxDefault.toFixed(0)} MiB on onnxruntime (the default), ${rss.tfliteTwoWorkers.toFixed(0)} MiB on TFLite with 2 workers, ${rss.tfliteOneWorker.toFixed(0)} MiB with 1`,
    );
}
