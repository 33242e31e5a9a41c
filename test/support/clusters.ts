// Synthetic embeddings for head tests: non-negative Gaussian clusters (like pooled ReLU features) where
// class c is bright in its own block of dims.

import { seededRandom } from '../../core/random.js';

export function gaussianClusters(
  perClass: number[],
  seed: number,
  shape: { dim: number; spread: number; bright: number; dark?: number },
): { x: Float32Array; y: Int32Array } {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const { dim, spread, bright, dark = 0.5 } = shape;
  const n = perClass.reduce((a, b) => a + b, 0);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  let i = 0;
  perClass.forEach((count, c) => {
    for (let s = 0; s < count; s++, i++) {
      y[i] = c;
      for (let j = 0; j < dim; j++) {
        const centre = Math.floor(j / (dim / perClass.length)) === c ? bright : dark;
        x[i * dim + j] = Math.max(0, centre + spread * gauss());
      }
    }
  });
  return { x, y };
}
