// Tried for the heads, not adopted (bench/head-train measures it against the defaults): regularisation chosen by the head's own photos: the softmax trainer is run over a small log-spaced grid
// of L2 strengths on folds of the training photos, strongest first, each fit warm-started from the one
// before (a regularisation path: later fits start near their optimum and stop early), and the strength
// with the best validation accuracy (ties: lower validation loss) trains the final head on every photo.
//
//   small sets (some class under MANY_PER_CLASS photos): stratified k-fold, every photo validates once
//   larger sets: one stratified split, because k fits of thousands of photos cost k times the time

import { seededRandom, shuffle } from '../core/random.js';
import type { HeadMeta } from '../runtime/head/head.js';
import { type SoftmaxOptions, trainSoftmax } from '../runtime/head/softmax.js';

export const TUNE_DEFAULTS = {
  /** Half-decade steps around 1/dim-scaled values: wide enough for 5 shots and for thousands of photos. */
  grid: [3, 1, 0.3, 0.1, 0.03] as readonly number[],
  folds: 3,
  /** Share of each class validating when there is one split. */
  validationFraction: 0.2,
} as const;

/** With this many photos in every class, one split validates well enough. */
const MANY_PER_CLASS = 50;

export interface TuneReport {
  l2: number;
  /** Per grid value: mean validation accuracy and loss. */
  grid: { l2: number; accuracy: number; loss: number }[];
  folds: number;
}

type BaseMeta = Pick<HeadMeta, 'backboneId' | 'dim' | 'labels'> & Partial<HeadMeta>;

export function chooseL2(x: Float32Array, y: ArrayLike<number>, meta: BaseMeta, options: SoftmaxOptions = {}): TuneReport {
  const d = meta.dim;
  const k = meta.labels.length;
  const grid = [...TUNE_DEFAULTS.grid];
  const byClass = Array.from({ length: k }, () => [] as number[]);
  for (let i = 0; i < y.length; i++) byClass[y[i]!]!.push(i);
  const random = seededRandom((options.seed ?? 1) + 7919);
  byClass.forEach((members) => shuffle(members, random));
  const smallest = Math.min(...byClass.filter((m) => m.length > 0).map((m) => m.length));
  const folds = smallest >= MANY_PER_CLASS ? 1 : Math.min(TUNE_DEFAULTS.folds, smallest);
  const totals = grid.map(() => ({ correct: 0, loss: 0, n: 0 }));
  for (let f = 0; f < folds; f++) {
    const validation: number[] = [];
    const fit: number[] = [];
    for (const members of byClass) {
      members.forEach((i, r) => {
        const inFold = folds === 1 ? r < Math.round(members.length * TUNE_DEFAULTS.validationFraction) : r % folds === f;
        (inFold ? validation : fit).push(i);
      });
    }
    // A class with every photo in validation cannot be learned from this fold: the fold still counts them as errors.
    const fitX = gather(x, fit, d);
    const fitY = Int32Array.from(fit, (i) => y[i]!);
    let previous;
    for (const [g, l2] of grid.entries()) {
      const { head } = trainSoftmax(fitX, fitY, meta, { ...options, l2, ...(previous ? { warmStart: previous } : {}) });
      previous = head;
      for (const i of validation) {
        const p = head.probabilities(x.subarray(i * d, (i + 1) * d));
        let best = 0;
        for (let c = 1; c < k; c++) if (p[c]! > p[best]!) best = c;
        totals[g]!.correct += best === y[i] ? 1 : 0;
        totals[g]!.loss -= Math.log(Math.max(1e-12, p[y[i]!]!));
        totals[g]!.n++;
      }
    }
  }
  const scored = grid.map((l2, g) => ({ l2, accuracy: totals[g]!.correct / totals[g]!.n, loss: totals[g]!.loss / totals[g]!.n }));
  const best = scored.reduce((a, b) => (b.accuracy > a.accuracy || (b.accuracy === a.accuracy && b.loss < a.loss) ? b : a));
  return { l2: best.l2, grid: scored, folds };
}

function gather(x: Float32Array, rows: number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((i, r) => out.set(x.subarray(i * d, (i + 1) * d), r * d));
  return out;
}
