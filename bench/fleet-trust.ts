// One of five devices is malicious: what do honest devices get from the released fleet head? Five
// "devices" with 10 labelled flowers128 photos per class each (real embeddings of the default
// backbone), a common test set of 30 photos per class; device 5 sends each attack in turn. Every head
// goes through the console's door (console/head-gate.ts) and merge (runtime/head/merge.ts, classes
// accepted as the console does: the released head's classes, a quorum for new ones). Compared with the
// merge of the four honest heads alone and with a plain count-weighted mean (no defences).
//
//   npm run bench -- fleet-trust [--json]

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDeviceHead } from '../console/head-gate.js';
import { Backbone } from '../runtime/backbone/backbone.js';
import { Head, trainHead } from '../runtime/head/index.js';
import { type DeviceHead, mergeHeads } from '../runtime/head/merge.js';
import { preprocessFile } from '../runtime/image/preprocess.js';
import { resolveModel } from '../runtime/models/resolve.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const SHOTS = 10;
const TEST = 30;
const flowers = join(sharedDir(), 'datasets', 'flowers128');

const model = await resolveModel('mobilenet_v1_1.0_224_quant_embedding_extractor', {
  modelDir: process.env.EDGETUNE_MODEL_DIR ?? join(sharedDir(), 'models'),
});
const backbone = await Backbone.open(model);
const dim = backbone.dim;
const files = CLASSES.map((c) =>
  readdirSync(join(flowers, c))
    .sort()
    .map((f) => join(flowers, c, f)),
);
async function embedSet(slot: number, count: number): Promise<{ x: Float32Array; y: Int32Array }> {
  const picks = CLASSES.flatMap((_, label) =>
    files[label]!.filter((_, i) => i % 17 === slot)
      .slice(0, count)
      .map((file) => ({ file, label })),
  );
  const x = new Float32Array(picks.length * dim);
  const vectors = await Promise.all(
    picks.map(async (p) => backbone.embed(await preprocessFile(p.file, model.manifest.input, { resize: model.manifest.resize }))),
  );
  vectors.forEach((v, i) => x.set(v, i * dim));
  return { x, y: Int32Array.from(picks, (p) => p.label) };
}
const sets = [];
for (let d = 0; d < 5; d++) sets.push(await embedSet(d, SHOTS));
const test = await embedSet(16, TEST);
await backbone.close();

const meta = { backboneId: backbone.id, dim, labels: CLASSES };
const heads = sets.map((s) => trainHead('softmax', s.x, s.y, meta).head);
const honest: DeviceHead[] = heads.slice(0, 4).map((head, i) => ({ device: `pi-${i + 1}`, head }));
const accuracy = (head: Head) => {
  const predicted = head.predictIndices(test.x);
  let ok = 0;
  for (let i = 0; i < test.y.length; i++) if (head.labels[predicted[i]!] === CLASSES[test.y[i]!]) ok++;
  return ok / test.y.length;
};
/** As the console accepts classes: those of the released head, new ones with more than half the devices. */
const acceptor = (devices: number) => (label: string, owners: string[]) => CLASSES.includes(label) || owners.length > devices / 2;
const merge = (list: DeviceHead[]) => mergeHeads(list, {}, acceptor(list.length));
const honestOnly = merge(honest).head;

const own = heads[4]!;
const k = CLASSES.length;
const attacks: [string, Head][] = [
  [
    'extra class (bias +1000, 1e6 samples)',
    new Head(
      { ...own.meta, labels: [...CLASSES, 'evil'], counts: [...own.meta.counts, 1e6] },
      Float32Array.from([...own.weights, ...own.weights.subarray(0, dim)]),
      Float32Array.from([...own.bias, 1000]),
      own.means && Float32Array.from([...own.means, ...own.means.subarray(0, dim)]),
    ),
  ],
  [
    'NaN bias',
    new Head(
      own.meta,
      own.weights,
      Float32Array.from(own.bias, (b, c) => (c === 0 ? Number.NaN : b)),
      own.means,
    ),
  ],
  [
    'swapped labels (daisy <-> rose)',
    trainHead(
      'softmax',
      sets[4]!.x,
      Int32Array.from(sets[4]!.y, (c) => (c === 0 ? 2 : c === 2 ? 0 : c)),
      meta,
    ).head,
  ],
  [
    'huge counts and bias (1e6 samples, rose row x50, bias +500)',
    new Head(
      { ...own.meta, counts: new Array<number>(k).fill(1e6) },
      Float32Array.from(own.weights, (w, i) => (Math.floor(i / dim) === 2 ? w * 50 : w)),
      Float32Array.from(own.bias, (b, c) => (c === 2 ? b + 500 : b)),
      own.means,
    ),
  ],
  [
    'near-copy of the fleet head (1e6 samples)',
    new Head(
      { ...honestOnly.meta, counts: new Array<number>(k).fill(1e6) },
      Float32Array.from(honestOnly.weights, (w, i) => w * (1 + 0.05 * Math.sin(i))),
      honestOnly.bias,
      honestOnly.means,
    ),
  ],
];

/** A plain weighted mean of class rows, by sample count: what a merge without defences does. */
function plainMean(list: DeviceHead[]): number {
  try {
    const labels = [...new Set(list.flatMap((h) => h.head.labels))].sort();
    const weights = new Float32Array(labels.length * dim);
    const bias = new Float32Array(labels.length);
    const totals = new Array<number>(labels.length).fill(0);
    for (const { head } of list)
      head.labels.forEach((label, c) => {
        const t = labels.indexOf(label);
        const n = Math.max(1, head.meta.counts[c]!);
        totals[t]! += n;
        for (let j = 0; j < dim; j++) weights[t * dim + j]! += n * head.weights[c * dim + j]!;
        bias[t]! += n * head.bias[c]!;
      });
    totals.forEach((n, t) => {
      for (let j = 0; j < dim; j++) weights[t * dim + j]! /= n;
      bias[t]! /= n;
    });
    // No open set: this is the classifier a merge without defences makes.
    const { openSet: _openSet, ...meta } = list[0]!.head.meta;
    return accuracy(new Head({ ...meta, labels, counts: totals }, weights, bias));
  } catch {
    return Number.NaN;
  }
}

const honestAccuracy = accuracy(honestOnly);
const rows = attacks.map(([name, attacker]) => {
  let door = 'passed';
  let list = honest;
  try {
    checkDeviceHead(attacker, 'pi-5', { backboneId: backbone.id, dim });
    list = [...honest, { device: 'pi-5', head: attacker }];
  } catch (err) {
    door = `refused (${(err as Error).message.replace(/^head of device pi-5 refused: /, '').slice(0, 40)})`;
  }
  const result = merge(list);
  const released = accuracy(result.head);
  return {
    attack: name,
    door,
    heldBack: result.heldBack.map((h) => h.device).join(' ') || '-',
    leftOut: result.leftOut.map((c) => c.label).join(' ') || '-',
    honestOnly: honestAccuracy,
    released,
    points: (released - honestAccuracy) * 100,
    plainMean: plainMean([...honest, { device: 'pi-5', head: attacker }]),
  };
});

if (values.json) console.log(JSON.stringify({ devices: 5, shots: SHOTS, test: test.y.length, rows }, null, 2));
else {
  const pct = (v: number) => (Number.isNaN(v) ? 'NaN' : `${(v * 100).toFixed(1)}%`);
  printTable(
    `fleet trust: 4 honest devices + 1 malicious, ${SHOTS} photos per class each, ${test.y.length} common test photos (flowers128)`,
    ['attack by pi-5', 'door', 'held back', 'classes left out', 'honest-only merge', 'released head', 'points', 'plain mean'],
    rows.map((r) => [r.attack, r.door, r.heldBack, r.leftOut, pct(r.honestOnly), pct(r.released), r.points.toFixed(1), pct(r.plainMean)]),
  );
}
