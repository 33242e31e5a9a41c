// Fleet sync figures that need no broker: head payload bytes (int8 against float32), signing and
// verifying a fleet head, and the console's merge of --heads device heads (1024-d, 5 classes, the
// default backbone's shape), outlier check included.
//
//   npm run bench -- sync [--heads 1000] [--json]

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mergeHeads } from '../runtime/head/merge.js';
import { encodeHead } from '../runtime/head/index.js';
import { decodeHeadMessage, encodeHeadMessage } from '../runtime/sync/head-message.js';
import { loadOrCreateFleetKey } from '../runtime/sync/signing.js';
import { BENCH_DIM, syntheticHeads } from './synthetic-heads.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { heads: { type: 'string', default: '1000' }, json: { type: 'boolean', default: false } } });
const n = Number(values.heads);
const dim = BENCH_DIM;

const heads = syntheticHeads(n).map((head, i) => ({ device: `pi-${i}`, head }));
const float32 = encodeHead(heads[0]!.head, 'float32').length;
const int8 = encodeHead(heads[0]!.head, 'int8').length;

const keyPath = join(tmpdir(), `edgetune-bench-fleet-${process.pid}.key`);
const keys = loadOrCreateFleetKey(keyPath);
rmSync(keyPath);
const rounds = 200;
let started = performance.now();
let message: Uint8Array = new Uint8Array(0);
for (let i = 0; i < rounds; i++)
  message = encodeHeadMessage(
    heads[0]!.head,
    { kind: 'fleet-head', fleet: 'bench', device: null, version: i + 1, id: `bench-${i}-0000` },
    keys.privateKey,
  );
const signMs = (performance.now() - started) / rounds;
started = performance.now();
for (let i = 0; i < rounds; i++)
  decodeHeadMessage(message, { where: 'bench', publicKey: keys.publicKey, backboneId: heads[0]!.head.meta.backboneId, dim });
const verifyMs = (performance.now() - started) / rounds;

started = performance.now();
const merged = mergeHeads(heads);
const mergeMs = performance.now() - started;

const report = {
  heads: n,
  float32Bytes: float32,
  int8Bytes: int8,
  messageBytes: message.length,
  signMs,
  verifyMs,
  mergeMs,
  heldBack: merged.heldBack.length,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    'fleet sync without a broker (1024-d, 5-class softmax heads)',
    ['measure', 'value'],
    [
      ['head file, float32 weights', `${float32} bytes`],
      ['head file, int8 weights per row', `${int8} bytes (${((100 * int8) / float32).toFixed(0)} %)`],
      ['signed head message (int8)', `${message.length} bytes`],
      ['encode + sign one fleet head', `${signMs.toFixed(2)} ms`],
      ['verify + decode one fleet head', `${verifyMs.toFixed(2)} ms`],
      [`merge ${n} device heads, outlier check included`, `${mergeMs.toFixed(0)} ms (${merged.heldBack.length} held back)`],
    ],
  );
}
