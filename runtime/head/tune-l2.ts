// The softmax head's L2 strength chosen by the head's own photos: stratified k-fold cross-validation
// over a log-spaced grid, every fit solved to its optimum in kernel form (kernel-logistic.ts) and
// warm-started along the path from the strongest L2 to the weakest. Folds share one kernel matrix, so
// the grid costs a few hundred milliseconds at the sizes a person labels (a few hundred photos). The
// head then averages the strengths the folds cannot tell apart from the best (averageWithin).

import { seededRandom, shuffle } from '../../core/random.js';
import { type KernelFit, cholesky, fitKernelLogistic } from './kernel-logistic.js';

export const TUNE_L2_DEFAULTS = {
  /** Half-decade steps, strongest first (the path is warm-started in this order). */
  grid: [10, 3, 1, 0.3, 0.1] as readonly number[],
  folds: 3,
  /**
   * Gradient tolerance of the fits that only score a strength, looser than the final fit's: on
   * other-photos (6 splits) 1e-3 gave the same accuracy as 1e-5 in 45 % of the time.
   */
  tolerance: 1e-3,
  /**
   * Half a standard error of the best accuracy. Picking the single best strength was 0.23 points under
   * the old head at 10 shots a class (flowers128, 50 photos: the folds' choice is mostly noise); averaging
   * within 0.5 / 1 / 2 standard errors gave +0.01 / +0.03 / +0.03 there, and +0.05 / -0.05 / +0.20 on
   * other-photos 70/30 where the best alone gave +0.41 (20 splits each).
   */
  averageWithin: 0.5,
} as const;

export interface L2Choice {
  l2: number;
  /**
   * The factor on the chosen fit's scores that minimised the validation loss: strong L2 shrinks scores,
   * so the head multiplies its weights by this to give calibrated probabilities (argmax unchanged).
   */
  scale: number;
  /** Per grid value: validation accuracy and temperature-calibrated loss over all folds. */
  grid: { l2: number; accuracy: number; loss: number; scale: number }[];
  /**
   * The strengths the head averages (scaled weights, equal shares): every one within averageWithin
   * standard errors of the best cross-validated accuracy, the best included.
   */
  averaged: { l2: number; scale: number }[];
  folds: number;
}

export interface KernelProblem {
  /** [n, n] Gram matrix of the standardised features. */
  kernel: Float64Array;
  n: number;
  y: Int32Array;
  k: number;
  classBalanced: boolean;
}

/**
 * Scores the L2 strengths by cross-validated accuracy; ties (common with a few photos per class)
 * go to the lower temperature-calibrated loss (calibratedLoss). The raw validation loss is no criterion
 * here: it prefers weak L2 for its confident scores while accuracy peaks at strong L2 (other-photos:
 * loss chose 0.03, accuracy 3-10).
 */
export function chooseL2(problem: KernelProblem, seed: number, grid: readonly number[] = TUNE_L2_DEFAULTS.grid): L2Choice {
  const { kernel, n, y, k } = problem;
  const totals = grid.map(() => ({ correct: 0, n: 0, logits: [] as number[], labels: [] as number[] }));
  const folds = assignFolds(y, k, TUNE_L2_DEFAULTS.folds, seed);
  const foldCount = Math.max(...folds) + 1;
  for (let f = 0; f < foldCount; f++) {
    const fit: number[] = [];
    const validation: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === f ? validation : fit).push(i);
    if (validation.length === 0 || fit.length === 0) continue;
    const sub = subProblem(problem, fit);
    let previous: KernelFit | undefined;
    for (const [g, l2] of grid.entries()) {
      previous = fitKernelLogistic(sub.l, fit.length, sub.y, k, sub.classWeight, l2, previous, TUNE_L2_DEFAULTS.tolerance);
      const scores = validationScores(kernel, n, fit, validation, previous, y, k);
      totals[g]!.logits.push(...scores.logits);
      for (const v of validation) totals[g]!.labels.push(y[v]!);
      totals[g]!.correct += scores.correct;
      totals[g]!.n += validation.length;
    }
  }
  const scored = grid.map((l2, g) => ({
    l2,
    accuracy: totals[g]!.correct / totals[g]!.n,
    ...calibratedLoss(totals[g]!.logits, totals[g]!.labels, k),
  }));
  const best = scored.reduce((a, b) => (b.accuracy > a.accuracy || (b.accuracy === a.accuracy && b.loss < a.loss) ? b : a));
  // Strengths whose accuracy is within half a standard error of the best are as good as the folds can
  // tell: the head averages them rather than betting on one.
  const standardError = Math.sqrt((best.accuracy * (1 - best.accuracy)) / totals[0]!.n);
  const averaged = scored.filter((g) => g.accuracy >= best.accuracy - TUNE_L2_DEFAULTS.averageWithin * standardError);
  return { l2: best.l2, scale: best.scale, grid: scored, folds: foldCount, averaged: averaged.map(({ l2, scale }) => ({ l2, scale })) };
}

export interface SampledL2Choice {
  /** The strength for the whole set: the sample's, scaled by sample size / set size. */
  l2: number;
  choice: L2Choice;
}

/**
 * The L2 strength for a set too large to solve in kernel form: chosen by chooseL2 on a stratified, seeded
 * sample of at most `maxRows` of `rows` (each class in its share), as the geometric mean of the strengths
 * the folds rank as good as the best, then scaled by sample size / set size. The loss is a mean over
 * rows while the penalty is not, so the same prior on the weights is a penalty that shrinks as 1/n.
 */
export function chooseL2OnSample(
  problem: { z: Float32Array; d: number; y: Int32Array; k: number; rows: number[]; classBalanced: boolean },
  seed: number,
  maxRows: number,
): SampledL2Choice {
  const { z, d, y, k, rows } = problem;
  const random = seededRandom(seed + 104729);
  const share = Math.min(1, maxRows / rows.length);
  const sample: number[] = [];
  for (let c = 0; c < k; c++) {
    const members = shuffle(
      rows.filter((i) => y[i] === c),
      random,
    );
    sample.push(...members.slice(0, Math.max(Math.min(members.length, 2), Math.round(members.length * share))));
  }
  const kernel = gramMatrix(z, d, sample);
  const choice = chooseL2(
    { kernel, n: sample.length, y: Int32Array.from(sample, (i) => y[i]!), k, classBalanced: problem.classBalanced },
    seed,
  );
  const logMean = choice.averaged.reduce((a, m) => a + Math.log(m.l2), 0) / choice.averaged.length;
  return { l2: (Math.exp(logMean) * sample.length) / rows.length, choice };
}

/** [m, m] Gram matrix of the given rows of z [n, d]. */
export function gramMatrix(z: Float32Array, d: number, rows: readonly number[]): Float64Array {
  const m = rows.length;
  const kernel = new Float64Array(m * m);
  for (let r = 0; r < m; r++) {
    const i = rows[r]! * d;
    for (let c = 0; c <= r; c++) {
      const j = rows[c]! * d;
      let s = 0;
      for (let p = 0; p < d; p++) s += z[i + p]! * z[j + p]!;
      kernel[r * m + c] = s;
      kernel[c * m + r] = s;
    }
  }
  return kernel;
}

/** Class weights n / (classes present * n_c), or all 1. */
export function classWeights(y: Int32Array, k: number, balanced: boolean): Float64Array {
  const counts = new Array<number>(k).fill(0);
  for (const c of y) counts[c]!++;
  const present = counts.filter((c) => c > 0).length;
  return Float64Array.from(counts, (c) => (!balanced || c === 0 ? 1 : y.length / (present * c)));
}

/** Cholesky factor of the kernel (with a little jitter: centred features make it singular). */
export function kernelFactor(kernel: Float64Array, n: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += kernel[i * n + i]!;
  return cholesky(kernel, n, (1e-8 * trace) / n + 1e-12);
}

function subProblem(problem: KernelProblem, rows: number[]): { l: Float64Array; y: Int32Array; classWeight: Float64Array } {
  const m = rows.length;
  const sub = new Float64Array(m * m);
  rows.forEach((i, r) => rows.forEach((j, c) => (sub[r * m + c] = problem.kernel[i * problem.n + j]!)));
  const y = Int32Array.from(rows, (i) => problem.y[i]!);
  return { l: kernelFactor(sub, m), y, classWeight: classWeights(y, problem.k, problem.classBalanced) };
}

function validationScores(
  kernel: Float64Array,
  n: number,
  fit: number[],
  validation: number[],
  model: KernelFit,
  y: Int32Array,
  k: number,
): { correct: number; logits: number[] } {
  const all: number[] = [];
  let correct = 0;
  const logits = new Float64Array(k);
  for (const v of validation) {
    logits.set(model.b);
    const m = fit.length;
    fit.forEach((i, r) => {
      const kv = kernel[v * n + i]!;
      for (let c = 0; c < k; c++) logits[c]! += kv * model.a[c * m + r]!;
    });
    all.push(...logits);
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[c]! > logits[best]!) best = c;
    if (best === y[v]) correct++;
  }
  return { correct, logits: all };
}

/**
 * Mean validation loss after the best single rescaling of the logits: how well a strength ranks the
 * classes, not how confident its raw scores happen to be (strong L2 shrinks them, weak L2 inflates them).
 */
function calibratedLoss(logits: number[], labels: number[], k: number): { loss: number; scale: number } {
  const lossAt = (logScale: number): number => {
    const s = Math.exp(logScale);
    let total = 0;
    for (let i = 0; i < labels.length; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < k; c++) max = Math.max(max, s * logits[i * k + c]!);
      let sum = 0;
      for (let c = 0; c < k; c++) sum += Math.exp(s * logits[i * k + c]! - max);
      total += max + Math.log(sum) - s * logits[i * k + labels[i]!]!;
    }
    return total / labels.length;
  };
  // Golden-section search on log(scale) in [-4, 6]: the loss is convex in the scale.
  const ratio = (Math.sqrt(5) - 1) / 2;
  let lo = -4;
  let hi = 6;
  let a = hi - ratio * (hi - lo);
  let b = lo + ratio * (hi - lo);
  let fa = lossAt(a);
  let fb = lossAt(b);
  for (let step = 0; step < 40; step++) {
    if (fa < fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - ratio * (hi - lo);
      fa = lossAt(a);
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + ratio * (hi - lo);
      fb = lossAt(b);
    }
  }
  return fa < fb ? { loss: fa, scale: Math.exp(a) } : { loss: fb, scale: Math.exp(b) };
}

/** Stratified fold index per row: each class shuffled (seeded) and dealt round-robin. */
function assignFolds(y: Int32Array, k: number, folds: number, seed: number): Int32Array {
  const random = seededRandom(seed + 7919);
  const out = new Int32Array(y.length);
  let offset = 0;
  for (let c = 0; c < k; c++) {
    const members = shuffle(
      Array.from(y.keys()).filter((i) => y[i] === c),
      random,
    );
    // Continue the deal where the last class stopped, so small classes do not all land in fold 0.
    members.forEach((i, r) => (out[i] = (offset + r) % folds));
    offset = (offset + members.length) % folds;
  }
  return out;
}
