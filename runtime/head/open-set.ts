// Open set: a head answers "unknown" by itself when a photo is far from every class it was trained on.
// The score is the cosine distance from the photo's features to the nearest class mean; the threshold is
// calibrated on the head's own training photos, leave-one-out, to a target share of known photos that
// would be called unknown. Measured on flowers128 with 4 of 5 classes (npm run bench -- open-set): the
// top softmax probability separates known photos from unrelated ones with AUROC 0.63-0.78, this
// distance 0.996-0.997; nearest neighbours over every training photo reach 1.000 but cost n x dim
// numbers in the head file, and centring the features made every distance worse (0.86-0.97).
//
//   f = normalize(power(x))                        [dim]
//   m_c = mean of f over class c                   [classes, dim]  (stored, not normalised: merges exactly)
//   distance(x) = 1 - max_c cos(f, m_c)            0 (on a class mean) .. 2
//   unknown  <=>  distance > threshold

import { HeadError } from '../../core/errors.js';
import { l2Normalize, powerTransform } from './features.js';

export const OPEN_SET_SCORE = 'class-mean-cosine';

export interface OpenSetCalibration {
  score: typeof OPEN_SET_SCORE;
  /** Distances above this answer "unknown". */
  threshold: number;
  /** Share of known photos the threshold was set to call unknown. */
  unknownRate: number;
  /** Known photos the threshold was calibrated on (leave-one-out). */
  samples: number;
}

export const OPEN_SET_DEFAULTS = {
  /** Share of known photos called unknown. */
  unknownRate: 0.05,
  /** Below this many photos with a class of 2+ photos, no threshold is set (the head never says unknown). */
  minSamples: 5,
} as const;

/** Unit-length power features of one embedding. */
export function openSetFeatures(embedding: Float32Array, power: number): Float32Array {
  return l2Normalize(powerTransform(embedding, power));
}

/** Cosine distance from features `f` [dim] to the nearest of the class means [classes, dim]. */
export function distanceToClasses(f: Float32Array, means: Float32Array, dim: number): { distance: number; nearest: number } {
  let best = Number.NEGATIVE_INFINITY;
  let nearest = -1;
  for (let c = 0; c < means.length / dim; c++) {
    let dot = 0;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const m = means[c * dim + j]!;
      dot += m * f[j]!;
      norm += m * m;
    }
    if (norm === 0) continue;
    const cos = dot / Math.sqrt(norm);
    if (cos > best) {
      best = cos;
      nearest = c;
    }
  }
  return nearest < 0 ? { distance: 2, nearest } : { distance: 1 - best, nearest };
}

/**
 * Class means of x [n, dim] and a threshold calibrated leave-one-out: each photo is scored against the
 * means with itself taken out of its own class (exact for a mean), as a new photo of that class would be.
 */
export function fitOpenSet(
  x: Float32Array,
  y: ArrayLike<number>,
  classes: number,
  dim: number,
  power: number,
  unknownRate: number = OPEN_SET_DEFAULTS.unknownRate,
): { means: Float32Array; calibration: OpenSetCalibration | undefined } {
  if (!(unknownRate > 0 && unknownRate < 1))
    throw new HeadError('HEAD_OPEN_SET', `the unknown rate must be between 0 and 1, got ${unknownRate}`);
  const n = y.length;
  const features = new Float32Array(n * dim);
  const sums = new Float64Array(classes * dim);
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) {
    const f = openSetFeatures(x.subarray(i * dim, (i + 1) * dim), power);
    features.set(f, i * dim);
    const c = y[i]!;
    counts[c]!++;
    for (let j = 0; j < dim; j++) sums[c * dim + j]! += f[j]!;
  }
  const means = new Float32Array(classes * dim);
  for (let c = 0; c < classes; c++) for (let j = 0; j < dim; j++) means[c * dim + j] = counts[c]! > 0 ? sums[c * dim + j]! / counts[c]! : 0;

  // Leave-one-out by algebra, not by copying means: with m the class mean of n photos and f one of them,
  // the mean without f is m' = (n m - f) / (n - 1), so f.m' and |m'| follow from f.m, |m|^2 and |f|^2 = 1.
  const meanNorms = Array.from({ length: classes }, (_, c) => Math.sqrt(dot(means, c * dim, means, c * dim, dim)));
  const distances: number[] = [];
  for (let i = 0; i < n; i++) {
    const own = y[i]!;
    const m = counts[own]!;
    if (m < 2) continue;
    let best = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) {
      if (counts[c] === 0) continue;
      const fm = dot(features, i * dim, means, c * dim, dim);
      if (c !== own) {
        best = Math.max(best, fm / meanNorms[c]!);
        continue;
      }
      const fmLeft = (m * fm - 1) / (m - 1);
      const normLeft = Math.sqrt(Math.max(0, m * m * meanNorms[c]! ** 2 - 2 * m * fm + 1)) / (m - 1);
      if (normLeft > 0) best = Math.max(best, fmLeft / normLeft);
    }
    distances.push(1 - best);
  }
  if (distances.length < OPEN_SET_DEFAULTS.minSamples) return { means, calibration: undefined };
  return {
    means,
    calibration: { score: OPEN_SET_SCORE, threshold: quantile(distances, 1 - unknownRate), unknownRate, samples: distances.length },
  };
}

function dot(a: Float32Array, at: number, b: Float32Array, bt: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[at + j]! * b[bt + j]!;
  return s;
}

/** The q-quantile of values, interpolated between order statistics. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (at - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface OpenSetPart {
  labels: string[];
  counts: number[];
  means: Float32Array | undefined;
  calibration: OpenSetCalibration | undefined;
}

/**
 * The fleet's open set from the devices': each class mean is the count-weighted mean of the devices'
 * (exact: a mean of means), the threshold the count-weighted mean of their thresholds. The merged means
 * rest on more photos than any device's, so known photos lie nearer to them and the rate of known photos
 * called unknown can only fall. Nothing is merged unless every device's head has an open set.
 */
export function mergeOpenSets(parts: OpenSetPart[], labels: string[], dim: number): Pick<OpenSetPart, 'means' | 'calibration'> {
  if (parts.length === 0 || parts.some((p) => !p.means || !p.calibration)) return { means: undefined, calibration: undefined };
  const means = new Float32Array(labels.length * dim);
  const weights = new Array<number>(labels.length).fill(0);
  let thresholdSum = 0;
  let samples = 0;
  for (const part of parts) {
    part.labels.forEach((label, c) => {
      const target = labels.indexOf(label);
      const n = part.counts[c] ?? 0;
      if (target < 0 || n === 0) return;
      weights[target]! += n;
      for (let j = 0; j < dim; j++) means[target * dim + j]! += n * part.means![c * dim + j]!;
    });
    thresholdSum += part.calibration!.threshold * part.calibration!.samples;
    samples += part.calibration!.samples;
  }
  weights.forEach((w, c) => {
    if (w > 0) for (let j = 0; j < dim; j++) means[c * dim + j]! /= w;
  });
  const first = parts[0]!.calibration!;
  return { means, calibration: { score: OPEN_SET_SCORE, threshold: thresholdSum / samples, unknownRate: first.unknownRate, samples } };
}
