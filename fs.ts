import { readFileSync } from 'node:fs';
import { shotSplit, stratifiedSplit } from './runtime/dataset/folder.js';
import { trainSoftmax } from './runtime/head/softmax.js';
import { trainPrototype } from './runtime/head/prototype.js';
const meta = JSON.parse(readFileSync('/tmp/emb/flowers128-v1.json', 'utf8'));
const buf = readFileSync('/tmp/emb/flowers128-v1.f32');
const X = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const y: number[] = meta.labels; const d = 1024;
const take = (idx: number[]) => { const o = new Float32Array(idx.length * d); idx.forEach((i, r) => o.set(X.subarray(i * d, (i + 1) * d), r * d)); return o; };
const args = Object.fromEntries(process.argv.slice(2).map(a => a.split('=')).map(([a, b]) => [a, Number(b)]));
const bm = { backboneId: 'x', dim: d, labels: meta.classes };
function acc(train: number[], test: number[], seed: number) {
  const tx = take(train), ty = train.map(i => y[i]!), sx = take(test);
  const { head } = trainSoftmax(tx, ty, bm, { seed, ...(args.l2 ? { l2: args.l2 } : {}), ...(args.power ? { power: args.power } : {}), ...(args.ep ? { maxEpochs: args.ep } : {}), ...(args.lr ? { learningRate: args.lr } : {}) });
  const proto = args.blend ? trainPrototype(tx, ty, bm, {}) : undefined;
  let c = 0;
  test.forEach((i, r) => {
    const e = sx.subarray(r * d, (r + 1) * d);
    const p = head.probabilities(e);
    if (proto) { const q = proto.probabilities(e); for (let k = 0; k < p.length; k++) p[k] = (1 - args.blend) * p[k]! + args.blend * q[k]!; }
    let b = 0; for (let k = 1; k < p.length; k++) if (p[k]! > p[b]!) b = k;
    if (b === y[i]) c++;
  });
  return c / test.length;
}
const s = stratifiedSplit(y, 5, 0.2, 42);
const a8020 = acc(s.train, s.test, 42);
const shots: number[] = [];
for (let r = 0; r < 10; r++) { const sp = shotSplit(y, 5, 10, 42 + r); shots.push(acc(sp.train, sp.test, 42 + r)); }
console.log(JSON.stringify(args), '80/20', a8020.toFixed(4), '10-shot', (shots.reduce((a, b) => a + b) / 10).toFixed(4));
