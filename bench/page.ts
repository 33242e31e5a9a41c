// What the labelling page costs the device at --samples stored samples (1024-d embeddings, 5 classes):
// re-predicting every sample when the head changes, one page of /api/browse per filter and order, and
// the counts per filter. Median of --rounds runs each, all measured in one process. Re-predicting runs
// in chunks of 100 with the event loop free between them; the longest chunk is what a request may wait.
//
//   npm run bench -- page [--samples 10000] [--rounds 7] [--json]

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repredictAll } from '../agent/repredict.js';
import { seededRandom } from '../core/random.js';
import { type BrowseQuery, SAMPLE_ORDERS, type SampleFilter } from '../runtime/samples/browse.js';
import { SampleStore } from '../runtime/samples/store.js';
import { BENCH_BACKBONE, BENCH_DIM, BENCH_LABELS, syntheticHeads } from './synthetic-heads.js';
import { printTable } from './table.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});
const n = Number(values.samples);
const rounds = Number(values.rounds);

const dir = mkdtempSync(join(tmpdir(), 'edgetune-bench-page-'));
const store = SampleStore.open(dir, { embeddingsOnly: true });
const random = seededRandom(5);
const started = Date.now();
for (let i = 0; i < n; i++) {
  const label = i % 3 === 0 ? BENCH_LABELS[i % BENCH_LABELS.length]! : null;
  const { sample } = store.add(randomBytes(64), { origin: 'bench', label, createdAt: started - n + i });
  store.putEmbedding(
    sample.id,
    BENCH_BACKBONE,
    Float32Array.from({ length: BENCH_DIM }, () => random()),
  );
}
const head = syntheticHeads(1)[0]!;
const predictor = { version: 1, predict: (e: Float32Array) => head.predict(e, { threshold: 0.5 }) };

async function median(run: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

const rows: { what: string; ms: number }[] = [];
rows.push({ what: `re-predict all ${n} samples (head change)`, ms: await median(() => repredictAll(store, BENCH_BACKBONE, predictor)) });
const filters: SampleFilter[] = [
  { kind: 'all' },
  { kind: 'unlabelled' },
  { kind: 'unknown' },
  { kind: 'label', label: 'rose' },
  { kind: 'predicted', label: 'tulip' },
];
for (const filter of filters)
  for (const order of SAMPLE_ORDERS) {
    const query: BrowseQuery = { filter, order, limit: 60, offset: Math.floor(n / 2), asOf: Date.now() };
    rows.push({
      what: `browse ${filter.kind}${'label' in filter ? `:${filter.label}` : ''} ${order}, 60 from the middle`,
      ms: await median(() => store.browse(query)),
    });
  }
rows.push({ what: 'counts per filter', ms: await median(() => store.filterCounts(Date.now())) });
store.close();
rmSync(dir, { recursive: true, force: true });

if (values.json) console.log(JSON.stringify({ samples: n, rounds, rows }, null, 2));
else
  printTable(
    `labelling page at ${n} samples (median of ${rounds}; a shared machine: compare rows of one run)`,
    ['what', 'ms'],
    rows.map((r) => [r.what, r.ms.toFixed(1)]),
  );
