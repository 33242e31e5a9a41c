// Device heads for the sync benches: one fleet's weights plus each device's own noise, the shape of the
// default backbone's heads (1024-d, 5 classes).

import { Head } from '../runtime/head/index.js';
import { seededRandom } from '../core/random.js';

export const BENCH_BACKBONE = 'mobilenet_v1_1.0_224_quant_embedding_extractor';
export const BENCH_DIM = 1024;
export const BENCH_LABELS = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];

export function syntheticHeads(n: number, seed = 11): Head[] {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const base = Float32Array.from({ length: BENCH_LABELS.length * BENCH_DIM }, () => gauss() * 0.05);
  return Array.from({ length: n }, (_, i) => {
    const weights = Float32Array.from(base, (w) => w + gauss() * 0.03);
    const bias = Float32Array.from(BENCH_LABELS, () => gauss() * 0.1);
    return new Head(
      {
        kind: 'softmax',
        backboneId: BENCH_BACKBONE,
        dim: BENCH_DIM,
        labels: BENCH_LABELS,
        counts: BENCH_LABELS.map(() => 10 + (i % 7)),
        version: 1,
        parent: null,
        metrics: {},
        createdAt: new Date().toISOString(),
        power: 0.7,
        temperature: 1,
        normalize: false,
      },
      weights,
      bias,
    );
  });
}
