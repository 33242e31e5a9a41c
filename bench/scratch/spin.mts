import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { embedFiles } from '../../runtime/embeddings/embed-files.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { resolveModel } from '../../runtime/models/resolve.js';
const data = '/work/shared/datasets/flowers128';
const files = readdirSync(data).flatMap((c) => readdirSync(join(data, c)).sort().map((f) => join(data, c, f)));
const sample = Array.from({ length: 64 }, (_, i) => files[(i * 7919) % files.length]!);
const model = await resolveModel('mobilenet_v1_1.0_224_quant_embedding_extractor');
const spin = await Backbone.open(model, { spinning: true });
const calm = await Backbone.open(model, { spinning: false });
const inputs = await Promise.all(sample.map((f) => preprocessFile(f, model.manifest.input, { resize: model.manifest.resize })));
const a = await Promise.all(inputs.map((x) => spin.embed(x.slice())));
const b = await Promise.all(inputs.map((x) => calm.embed(x.slice())));
console.log('identical', a.every((v, i) => v.every((x, j) => x === b[i]![j])));
const modes: [string, () => Promise<unknown>][] = [
  ['tensors spin', () => Promise.all(inputs.map((x) => spin.embed(x.slice())))],
  ['tensors calm', () => Promise.all(inputs.map((x) => calm.embed(x.slice())))],
  ['files spin', () => embedFiles(sample, spin)],
  ['files calm', () => embedFiles(sample, calm)],
];
const best = new Map<string, number>();
for (let r = 0; r < 6; r++)
  for (const [name, run] of modes) {
    let done = 0;
    const t = performance.now();
    while (done < 64 || performance.now() - t < 500) { await run(); done += 64; }
    best.set(name, Math.max(best.get(name) ?? 0, done / ((performance.now() - t) / 1000)));
  }
for (const [k, v] of best) console.log(k, v.toFixed(1));
await spin.close(); await calm.close();
