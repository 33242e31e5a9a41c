// Softmax head: multinomial logistic regression on power-transformed, L2-normalised, standardised
// embeddings with a class-balanced cross-entropy and L2. Two solvers:
//   - up to KERNEL_MAX_ROWS photos (what a person labels on site): solved to its optimum in kernel form,
//     the L2 strength chosen by cross-validation on the photos themselves (tune-l2.ts);
//   - more photos: mini-batch Adam, early-stopped on a holdout carved from the training data, optionally
//     warm-started from a previous head.
// Standardisation is folded into the weights at the end, so the stored head is a plain linear map over
// normalize(power(x)).
//
//   f = power(x) / |power(x)|                         [dim]
//   z = (f - mu) / sigma                              [dim]
//   p = softmax(Wz z + bz)                             Wz: [k, dim]
//   L = (1/B) sum_i w_{y_i} * -log p_{i, y_i} + (l2/2) |Wz|^2,   w_c = n / (k n_c)

import { HeadError } from '../../core/errors.js';
import { seededRandom, shuffle } from '../../core/random.js';
import { l2Normalize, powerTransform } from './features.js';
import { Head, type HeadMeta } from './head.js';
import { fitKernelLogistic } from './kernel-logistic.js';
import { type L2Choice, TUNE_L2_DEFAULTS, chooseL2, chooseL2OnSample, classWeights, gramMatrix, kernelFactor } from './tune-l2.js';

export interface SoftmaxOptions {
  /** Power transform of the embeddings (1 = none). Default 0.7. */
  power?: number;
  /**
   * After centring: divide every feature by one global scale ('global', default) or standardise each
   * feature on its own ('feature'). Per-feature scaling blows up rare, noisy features; on flowers128
   * 'global' gives 0.760 against 0.741 on the 80/20 split.
   */
  scaling?: 'global' | 'feature';
  /** Scale each power-transformed embedding to unit length first. Default true. */
  normalize?: boolean;
  /**
   * L2 strength on the standardised weights. Default: chosen by cross-validation on the training photos
   * (larger sets than KERNEL_MAX_ROWS: on a stratified sample of that many, scaled to the set's size).
   */
  l2?: number;
  /**
   * false: no search, the constants the head used before it tuned itself (SOFTMAX_DEFAULTS.l2, or
   * fewShotL2 under 20 photos a class). Default true.
   */
  tuneL2?: boolean;
  /**
   * 'exact' solves the regularised problem to its optimum in kernel form (up to KERNEL_MAX_ROWS photos);
   * 'sgd' is mini-batch Adam with early stopping. Default 'auto': exact when the set is small enough.
   */
  solver?: 'auto' | 'exact' | 'sgd';

  /** Epochs of the cosine learning-rate schedule (an upper bound when a holdout can stop earlier). Default 10. */
  maxEpochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Epochs without a lower holdout loss before stopping. Default 3. */
  patience?: number;
  /** Share of each class kept out for early stopping; only used with enough samples. Default 0.1. */
  holdoutFraction?: number;
  /** Weight classes inversely to their frequency. Default true. */
  classBalanced?: boolean;
  seed?: number;
  /** Previous head: its weights start training; classes it lacks start at zero. */
  warmStart?: Head;
}

export interface SoftmaxReport {
  epochs: number;
  bestEpoch: number;
  /** Accuracy on the early-stopping holdout, when one was used. */
  holdoutAccuracy: number | null;
  trainMs: number;
  solver: 'exact' | 'sgd';
  l2: number;
  /** How the L2 was chosen, when it was by cross-validation over a grid (of all photos, or a sample). */
  tuning: L2Choice | null;
  /**
   * The mini-batch trainer's strengths from the first epoch to the last, when it tuned along a path (the
   * holdout's best epoch chose `l2`).
   */
  l2Path: { strongest: number; weakest: number } | null;
}

// Chosen on flowers128 embeddings of the default backbone (`edgetune eval` reproduces them); the L2
// constants now only apply to sets over KERNEL_MAX_ROWS photos (or with solver 'sgd'). The holdout
// picks the epoch by loss, which unlike accuracy does not chase noise in early, high-learning-rate epochs.
//
// Few shots: without a holdout nothing stops training early, and with a few samples a photo's overall
// activation level (lighting, blur: these are pooled ReLU6 maps) is as loud as what it shows. Unit-length
// features and a stronger L2 take both out: 10 shots per class go from 0.5425 to 0.5514 (seeds 42..51;
// 35 of 40 seeded draws better, +0.87 points on average). With many photos normalising costs nothing:
// 80/20 split 0.7593 -> 0.7535 on eval's split, 0.7439 -> 0.7450 on the mean of 20 seeded splits.
// Augmenting the few shots with embeddings of flipped or cropped copies of the photos made them worse
// (0.530, 0.531), as did shrinking toward the class means or an LDA with a shrunk covariance.
export const SOFTMAX_DEFAULTS = {
  power: 0.7,
  normalize: true,
  scaling: 'global',
  l2: 0.1,
  /** L2 when most classes have fewer than MIN_PER_CLASS_FOR_HOLDOUT samples. */
  fewShotL2: 1,
  maxEpochs: 8,
  batchSize: 64,
  learningRate: 0.01,
  patience: 3,
  holdoutFraction: 0.1,
  seed: 1,
} as const;

/**
 * Up to this many photos the head is solved exactly in kernel form with its L2 cross-validated (cost grows
 * with n^2 per step); beyond it the mini-batch trainer, whose cost grows with n.
 */
export const KERNEL_MAX_ROWS = 500;
/**
 * Gradient tolerance of the exact head's final fits: on other-photos and flowers128 10 shots (8 splits)
 * 1e-4 gave the accuracy of 1e-5 (to 0.01 points) in 80 % of the time.
 */
const FINAL_TOLERANCE = 1e-4;
/**
 * The mini-batch trainer's L2 path for `n` photos: the cross-validation grid (TUNE_L2_DEFAULTS.grid, for
 * sets up to KERNEL_MAX_ROWS) scaled by KERNEL_MAX_ROWS / n, the same prior on the weights for a mean
 * loss over more photos, walked from strongest to weakest over the epochs (each warm-starting the next) so
 * that the early-stopping holdout chooses the strength with the epoch at no extra cost. On 20 classes
 * (flowers128 and other-photos, 5 splits) it gave 0.7506 against 0.7409 for the old constant 0.1.
 */
function l2Path(n: number): { strongest: number; weakest: number } {
  const grid = TUNE_L2_DEFAULTS.grid;
  const scale = KERNEL_MAX_ROWS / n;
  return { strongest: Math.max(...grid) * scale, weakest: Math.min(...grid) * scale };
}

/** Classes need this many samples each before a holdout is carved out for early stopping. */
const MIN_PER_CLASS_FOR_HOLDOUT = 20;
/** Tiny sets (few-shot) still get this many optimizer steps. */
const MIN_STEPS = 100;
/** Gradient contributions smaller than this are skipped: confident rows cost only their forward pass. */
const SKIP = 1e-4;

type BaseMeta = Pick<HeadMeta, 'backboneId' | 'dim' | 'labels'> & Partial<HeadMeta>;

export function trainSoftmax(
  x: Float32Array,
  y: ArrayLike<number>,
  meta: BaseMeta,
  options: SoftmaxOptions = {},
): { head: Head; report: SoftmaxReport } {
  const started = performance.now();
  const d = meta.dim;
  const k = meta.labels.length;
  const n = y.length;
  if (x.length !== n * d) throw new HeadError('HEAD_DIM_MISMATCH', `${x.length} values for ${n} samples of dim ${d}`);
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const c = y[i]!;
    if (!(c >= 0 && c < k)) throw new HeadError('HEAD_LABEL', `sample ${i} has class index ${c}; the head has ${k} classes`);
    counts[c]!++;
  }
  const present = counts.filter((c) => c > 0).length;
  if (present < 2) throw new HeadError('NOT_ENOUGH_LABELS', `a softmax head needs samples of at least 2 classes, got ${present}`);

  const power = options.power ?? SOFTMAX_DEFAULTS.power;
  const normalize = options.normalize ?? SOFTMAX_DEFAULTS.normalize;
  const random = seededRandom(options.seed ?? SOFTMAX_DEFAULTS.seed);

  // z = standardised features, [n, d]
  const z = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const f = powerTransform(x.subarray(i * d, (i + 1) * d), power);
    z.set(normalize ? l2Normalize(f) : f, i * d);
  }
  const { mean, std } = columnStats(z, n, d, options.scaling ?? SOFTMAX_DEFAULTS.scaling);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) z[row + j] = (z[row + j]! - mean[j]!) / std[j]!;
  }

  const solver = options.solver ?? 'auto';
  // Without any L2 the exact optimum of separable photos is at infinity: only early stopping makes sense.
  const exactPossible = (options.l2 === undefined && options.tuneL2 !== false) || (options.l2 ?? 0) > 0;
  if (exactPossible && (solver === 'exact' || (solver === 'auto' && n <= KERNEL_MAX_ROWS))) {
    const labels = Int32Array.from(y);
    const exact = solveExact(z, labels, n, d, k, options);
    const folded = fold(exact.w, exact.b, mean, std, d, k);
    return {
      head: softmaxHead(meta, counts, { power, normalize }, folded),
      report: {
        epochs: 0,
        bestEpoch: 0,
        holdoutAccuracy: null,
        trainMs: performance.now() - started,
        solver: 'exact',
        l2: exact.l2,
        tuning: exact.tuning,
        l2Path: null,
      },
    };
  }

  const fewShot = isFewShot(counts);
  const { fit, holdout } = fewShot
    ? { fit: Array.from({ length: n }, (_, i) => i), holdout: [] }
    : splitForEarlyStopping(y, counts, options.holdoutFraction ?? SOFTMAX_DEFAULTS.holdoutFraction, random);
  const fitCounts = new Array<number>(k).fill(0);
  for (const i of fit) fitCounts[y[i]!]!++;
  const classWeight = Float64Array.from(fitCounts, (c) => (options.classBalanced === false || c === 0 ? 1 : fit.length / (present * c)));
  const labels = Int32Array.from(y);

  const w = new Float64Array(k * d);
  const b = new Float64Array(k);
  if (options.warmStart) warmStartInto(options.warmStart, meta.labels, mean, std, { power, normalize }, w, b);

  // Tuned without a given L2: along a path of strengths over the epochs, chosen by the holdout; with no
  // holdout (few photos a class), by cross-validation on a sample.
  const tune = options.l2 === undefined && options.tuneL2 !== false;
  const path = tune && holdout.length > 0 ? l2Path(fit.length) : undefined;
  const sampled =
    tune && !path
      ? chooseL2OnSample(
          { z, d, y: labels, k, rows: fit, classBalanced: options.classBalanced !== false },
          options.seed ?? SOFTMAX_DEFAULTS.seed,
          KERNEL_MAX_ROWS,
        )
      : undefined;
  const fixedL2 = options.l2 ?? sampled?.l2 ?? (fewShot ? SOFTMAX_DEFAULTS.fewShotL2 : SOFTMAX_DEFAULTS.l2);
  const batchSize = options.batchSize ?? SOFTMAX_DEFAULTS.batchSize;
  const stepsPerEpoch = Math.ceil(fit.length / batchSize);
  const maxEpochs = Math.max(options.maxEpochs ?? SOFTMAX_DEFAULTS.maxEpochs, Math.ceil(MIN_STEPS / stepsPerEpoch));
  const patience = options.patience ?? SOFTMAX_DEFAULTS.patience;
  const adam = new Adam(k * d + k, options.learningRate ?? SOFTMAX_DEFAULTS.learningRate);
  const grad = new Float64Array(k * d + k);
  const logits = new Float64Array(k);

  let best = { accuracy: -1, loss: Number.POSITIVE_INFINITY, epoch: 0, l2: fixedL2, w: w.slice(), b: b.slice() };
  let epoch = 0;
  let l2 = fixedL2;
  for (epoch = 1; epoch <= maxEpochs; epoch++) {
    shuffle(fit, random);
    if (path) l2 = path.strongest * (path.weakest / path.strongest) ** ((epoch - 1) / Math.max(1, maxEpochs - 1));
    // A cosine schedule settles on the regularised optimum; the holdout, when there is one, can stop earlier.
    adam.lrScale = 0.5 * (1 + Math.cos((Math.PI * (epoch - 1)) / maxEpochs));
    const order = Int32Array.from(fit);
    for (let start = 0; start < order.length; start += batchSize) {
      const end = Math.min(order.length, start + batchSize);
      accumulateGradient(w, b, z, order, start, end, labels, classWeight, d, k, grad, logits);
      for (let p = 0; p < k * d; p++) grad[p]! += l2 * w[p]!;
      adam.step(w, b, grad);
    }
    if (holdout.length === 0) continue;
    const { accuracy, loss } = evaluate(w, b, z, y, holdout, d, k, logits);
    if (loss < best.loss) {
      best = { accuracy, loss, epoch, l2, w: w.slice(), b: b.slice() };
    } else if (epoch - best.epoch >= patience) {
      break;
    }
  }
  const finalW = holdout.length > 0 ? best.w : w;
  const finalB = holdout.length > 0 ? best.b : b;
  const folded = fold(finalW, finalB, mean, std, d, k);
  const head = softmaxHead(meta, counts, { power, normalize }, folded);
  return {
    head,
    report: {
      epochs: Math.min(epoch, maxEpochs),
      bestEpoch: holdout.length > 0 ? best.epoch : maxEpochs,
      holdoutAccuracy: holdout.length > 0 ? best.accuracy : null,
      trainMs: performance.now() - started,
      solver: 'sgd',
      l2: holdout.length > 0 ? best.l2 : l2,
      tuning: sampled?.choice ?? null,
      l2Path: path ?? null,
    },
  };
}

function softmaxHead(
  meta: BaseMeta,
  counts: number[],
  features: { power: number; normalize: boolean },
  folded: { w: Float32Array; b: Float32Array },
): Head {
  return new Head(
    {
      version: 1,
      parent: null,
      metrics: {},
      createdAt: new Date().toISOString(),
      ...meta,
      kind: 'softmax',
      counts,
      power: features.power,
      temperature: 1,
      normalize: features.normalize,
    },
    folded.w,
    folded.b,
  );
}

/**
 * The regularised optimum in kernel form: L2 cross-validated over a grid unless given, then a fit on every
 * photo for each strength the folds rank as good as the best, each scaled as calibrated on the folds and
 * averaged (still one linear map). W = A Z maps back to [k, d] weights over the standardised features.
 */
function solveExact(
  z: Float32Array,
  y: Int32Array,
  n: number,
  d: number,
  k: number,
  options: SoftmaxOptions,
): { w: Float64Array; b: Float64Array; l2: number; tuning: L2Choice | null } {
  const kernel = gramMatrix(
    z,
    d,
    Array.from({ length: n }, (_, i) => i),
  );
  const classBalanced = options.classBalanced !== false;
  const tuning = options.l2 === undefined ? chooseL2({ kernel, n, y, k, classBalanced }, options.seed ?? SOFTMAX_DEFAULTS.seed) : null;
  const l2 = options.l2 ?? tuning!.l2;
  const factor = kernelFactor(kernel, n);
  const weights = classWeights(y, k, classBalanced);
  const members = tuning ? tuning.averaged : [{ l2, scale: 1 }];
  const combined = new Float64Array(k * n);
  const b = new Float64Array(k);
  let previous;
  for (const member of members) {
    const fit = fitKernelLogistic(factor, n, y, k, weights, member.l2, previous, FINAL_TOLERANCE);
    previous = fit;
    const f = member.scale / members.length;
    for (let q = 0; q < k * n; q++) combined[q]! += f * fit.a[q]!;
    for (let c = 0; c < k; c++) b[c]! += f * fit.b[c]!;
  }
  const w = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < n; i++) {
      const a = combined[c * n + i]!;
      for (let p = 0; p < d; p++) w[c * d + p]! += a * z[i * d + p]!;
    }
  }
  return { w, b, l2, tuning };
}

/** Per-column mean and standard deviation of a [n, d] matrix; constant columns get std 1. */
function columnStats(z: Float32Array, n: number, d: number, scaling: 'feature' | 'global'): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += z[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j] = mean[j]! / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = z[i * d + j]! - mean[j]!;
      std[j]! += v * v;
    }
  }
  let averageVariance = 0;
  for (let j = 0; j < d; j++) averageVariance += std[j]! / n / d;
  const globalScale = Math.sqrt(averageVariance) || 1;
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt(std[j]! / n);
    std[j] = scaling === 'global' ? globalScale : s > 1e-6 ? s : 1;
  }
  return { mean, std };
}

/**
 * Few-shot training (no holdout, the stronger L2) when most classes are too small for a holdout. Judged
 * by the median class, not the smallest: a new class with 5 photos beside classes with hundreds must not
 * switch the whole head to few-shot settings, which cost the other classes 2.5 points (bench/new-class).
 */
function isFewShot(counts: number[]): boolean {
  const sizes = counts.filter((c) => c > 0).sort((a, b) => a - b);
  return sizes[Math.floor((sizes.length - 1) / 2)]! < MIN_PER_CLASS_FOR_HOLDOUT;
}

/** Holds `fraction` of every class with enough photos out for early stopping; smaller classes all train. */
function splitForEarlyStopping(
  y: ArrayLike<number>,
  counts: number[],
  fraction: number,
  random: () => number,
): { fit: number[]; holdout: number[] } {
  const all = Array.from({ length: y.length }, (_, i) => i);
  if (!(fraction > 0)) return { fit: all, holdout: [] };
  const fit: number[] = [];
  const holdout: number[] = [];
  counts.forEach((_, c) => {
    const members = shuffle(
      all.filter((i) => y[i] === c),
      random,
    );
    const h = counts[c]! >= MIN_PER_CLASS_FOR_HOLDOUT ? Math.round(members.length * fraction) : 0;
    holdout.push(...members.slice(0, h));
    fit.push(...members.slice(h));
  });
  return { fit, holdout };
}

/**
 * grad = (1/B) sum_{t in batch} w_{y} (p_t - onehot_t) z_t^T, for the rows order[start..end).
 * Typed arrays only, so the JIT keeps this loop tight: it is nearly all of the training time.
 */
function accumulateGradient(
  w: Float64Array,
  b: Float64Array,
  z: Float32Array,
  order: Int32Array,
  start: number,
  end: number,
  labels: Int32Array,
  classWeight: Float64Array,
  d: number,
  k: number,
  grad: Float64Array,
  p: Float64Array,
): void {
  grad.fill(0);
  const scale = 1 / (end - start);
  const biasAt = k * d;
  for (let t = start; t < end; t++) {
    const i = order[t]!;
    const row = i * d;
    softmaxScores(w, b, z, row, d, k, p);
    const yi = labels[i]!;
    const wi = classWeight[yi]! * scale;
    for (let c = 0; c < k; c++) {
      const r = wi * (p[c]! - (c === yi ? 1 : 0));
      // Confident, correct rows contribute almost nothing: skipping them is most of the speed late in training.
      if (r > -SKIP && r < SKIP) continue;
      const g = c * d;
      for (let j = 0; j < d; j++) grad[g + j]! += r * z[row + j]!;
      grad[biasAt + c]! += r;
    }
  }
}

/** Probabilities for row `row` of z into `out`. */
function softmaxScores(w: Float64Array, b: Float64Array, z: Float32Array, row: number, d: number, k: number, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < k; c++) {
    let s = b[c]!;
    const g = c * d;
    for (let j = 0; j < d; j++) s += w[g + j]! * z[row + j]!;
    out[c] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let c = 0; c < k; c++) {
    const e = Math.exp(out[c]! - max);
    out[c] = e;
    sum += e;
  }
  for (let c = 0; c < k; c++) out[c] = out[c]! / sum;
}

function evaluate(
  w: Float64Array,
  b: Float64Array,
  z: Float32Array,
  y: ArrayLike<number>,
  rows: number[],
  d: number,
  k: number,
  p: Float64Array,
): { accuracy: number; loss: number } {
  let correct = 0;
  let loss = 0;
  for (const i of rows) {
    softmaxScores(w, b, z, i * d, d, k, p);
    let best = 0;
    for (let c = 1; c < k; c++) if (p[c]! > p[best]!) best = c;
    if (best === y[i]) correct++;
    loss -= Math.log(Math.max(1e-12, p[y[i]!]!));
  }
  return { accuracy: correct / rows.length, loss: loss / rows.length };
}

/** Moves a previous head (over the same features) into this run's standardised space. */
function warmStartInto(
  previous: Head,
  labels: string[],
  mean: Float64Array,
  std: Float64Array,
  features: { power: number; normalize: boolean },
  w: Float64Array,
  b: Float64Array,
): void {
  const d = mean.length;
  if (previous.meta.dim !== d) throw new HeadError('HEAD_DIM_MISMATCH', `warm start head has dim ${previous.meta.dim}, data has ${d}`);
  // A head over other features (another power, or made before features were normalised) starts nothing.
  if (previous.kind !== 'softmax' || previous.meta.power !== features.power || previous.meta.normalize !== features.normalize) return;
  labels.forEach((label, c) => {
    const old = previous.labels.indexOf(label);
    if (old < 0) return;
    let bias = previous.bias[old]!;
    for (let j = 0; j < d; j++) {
      const wRaw = previous.weights[old * d + j]!;
      w[c * d + j] = wRaw * std[j]!;
      bias += wRaw * mean[j]!;
    }
    b[c] = bias;
  });
}

/** Folds standardisation into the weights: W z + b == W' power(x) + b'. */
function fold(
  w: Float64Array,
  b: Float64Array,
  mean: Float64Array,
  std: Float64Array,
  d: number,
  k: number,
): { w: Float32Array; b: Float32Array } {
  const outW = new Float32Array(k * d);
  const outB = new Float32Array(k);
  for (let c = 0; c < k; c++) {
    let bias = b[c]!;
    for (let j = 0; j < d; j++) {
      const v = w[c * d + j]! / std[j]!;
      outW[c * d + j] = v;
      bias -= v * mean[j]!;
    }
    outB[c] = bias;
  }
  return { w: outW, b: outB };
}

class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  lrScale = 1;

  constructor(
    size: number,
    private readonly lr: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** grad = [dW..., db...] for params w then b. */
  step(w: Float64Array, b: Float64Array, grad: Float64Array): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    const update = (p: number, g: number): number => {
      const m = this.beta1 * this.m[p]! + (1 - this.beta1) * g;
      const v = this.beta2 * this.v[p]! + (1 - this.beta2) * g * g;
      this.m[p] = m;
      this.v[p] = v;
      return (this.lr * this.lrScale * (m / c1)) / (Math.sqrt(v / c2) + this.eps);
    };
    for (let p = 0; p < w.length; p++) w[p]! -= update(p, grad[p]!);
    for (let c = 0; c < b.length; c++) b[c]! -= update(w.length + c, grad[w.length + c]!);
  }
}
