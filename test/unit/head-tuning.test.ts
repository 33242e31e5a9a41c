// The softmax head tuned by its own photos: the exact kernel-form solver and the cross-validated L2.

import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../core/random.js';
import { gaussianClusters } from '../support/clusters.js';
import { cholesky, fitKernelLogistic } from '../../runtime/head/kernel-logistic.js';
import { KERNEL_MAX_ROWS, trainSoftmax } from '../../runtime/head/softmax.js';

const DIM = 64;

/** Non-negative Gaussian clusters: class c is bright in its own block of dims, `spread` the noise. */
function clusters(perClass: number[], seed: number, spread: number): { x: Float32Array; y: Int32Array } {
  return gaussianClusters(perClass, seed, { dim: DIM, spread, bright: 1.2 });
}

/** k classes, each told apart by features 2c and 2c+1: both carry one large nuisance, only 2c the class. */
function nuisance(perClass: number, k: number, seed: number): { x: Float32Array; y: Int32Array } {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const x = new Float32Array(perClass * k * DIM);
  const y = Int32Array.from({ length: perClass * k }, (_, i) => i % k);
  y.forEach((c, i) => {
    const row = x.subarray(i * DIM, (i + 1) * DIM);
    for (let j = 0; j < DIM; j++) row[j] = 1 + 0.02 * gauss();
    for (let p = 0; p < k; p++) {
      const shared = 0.8 * gauss();
      row[2 * p]! += shared + (p === c ? 0.3 : 0);
      row[2 * p + 1]! += shared;
    }
    for (let j = 0; j < DIM; j++) row[j] = Math.max(0, row[j]!);
  });
  return { x, y };
}

const data = (set: { x: Float32Array; y: Int32Array }) => [set.x, set.y] as const;

const meta = (k: number) => ({ backboneId: 'test-backbone', dim: DIM, labels: Array.from({ length: k }, (_, c) => `class${c}`) });

describe('kernel-form logistic regression', () => {
  it('reaches the regularised optimum: the kernel weights equal minus the residuals over the L2 strength', () => {
    // At the optimum of (1/n) sum CE + (l2/2)|W|^2 with W = A Z, the gradient vanishes exactly when A = -R / l2.
    const random = seededRandom(3);
    const n = 40;
    const k = 3;
    const d = 20;
    const z = Float64Array.from({ length: n * d }, () => random() - 0.5);
    const y = Int32Array.from({ length: n }, (_, i) => i % k);
    const kernel = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let p = 0; p < d; p++) kernel[i * n + j]! += z[i * d + p]! * z[j * d + p]!;
    const l2 = 0.05;
    const weights = new Float64Array(k).fill(1);
    const fit = fitKernelLogistic(cholesky(kernel, n, 1e-10), n, y, k, weights, l2);
    let worst = 0;
    let largest = 0;
    for (let i = 0; i < n; i++) {
      const logits = Array.from({ length: k }, (_, c) => {
        let s = fit.b[c]!;
        for (let j = 0; j < n; j++) s += kernel[i * n + j]! * fit.a[c * n + j]!;
        return s;
      });
      const max = Math.max(...logits);
      const sum = logits.reduce((a, v) => a + Math.exp(v - max), 0);
      for (let c = 0; c < k; c++) {
        const residual = (Math.exp(logits[c]! - max) / sum - (c === y[i] ? 1 : 0)) / n;
        worst = Math.max(worst, Math.abs(fit.a[c * n + i]! + residual / l2));
        largest = Math.max(largest, Math.abs(fit.a[c * n + i]!));
      }
    }
    expect(largest).toBeGreaterThan(0.1);
    expect(worst).toBeLessThan(1e-3 * largest);
  });
});

describe('softmax head with its L2 chosen by its own photos', () => {
  it('a tiny noisy set chooses stronger regularisation than a large clean one', () => {
    // Tiny and noisy: 5 photos a class, classes barely apart. Large and clean: 100 a class, told apart only
    // by a difference of two features that share a large nuisance, which weak L2 finds and strong L2 (close
    // to comparing class means) does not.
    const noisy = [1, 2, 3].map((seed) => trainSoftmax(...data(clusters([5, 5, 5, 5], seed, 3)), meta(4), { seed: 1 }).report);
    const clean = [1, 2, 3].map((seed) => trainSoftmax(...data(nuisance(100, 4, seed)), meta(4), { seed: 1 }).report);
    for (const r of [...noisy, ...clean]) expect(r.solver).toBe('exact');
    expect(Math.min(...noisy.map((r) => r.l2))).toBeGreaterThanOrEqual(3);
    expect(Math.max(...clean.map((r) => r.l2))).toBeLessThanOrEqual(0.3);
    // The choice is the best cross-validated accuracy among the grid values; the head averages it with
    // the strengths within half a standard error of it, never with a clearly worse one.
    for (const [r, n] of [...noisy.map((r) => [r, 20] as const), ...clean.map((r) => [r, 400] as const)]) {
      const best = Math.max(...r.tuning!.grid.map((g) => g.accuracy));
      expect(r.tuning!.grid.find((g) => g.l2 === r.l2)!.accuracy).toBe(best);
      expect(r.tuning!.averaged.map((g) => g.l2)).toContain(r.l2);
      const halfStandardError = 0.5 * Math.sqrt((best * (1 - best)) / n);
      for (const member of r.tuning!.averaged) {
        expect(r.tuning!.grid.find((g) => g.l2 === member.l2)!.accuracy).toBeGreaterThanOrEqual(best - halfStandardError - 1e-12);
      }
    }
    expect(clean.every((r) => r.tuning!.averaged.every((g) => g.l2 <= 1))).toBe(true);
  });

  it('is deterministic for a seed, strength and weights alike', () => {
    const data = clusters([15, 15, 15], 4, 0.8);
    const a = trainSoftmax(data.x, data.y, meta(3), { seed: 9 });
    const b = trainSoftmax(data.x, data.y, meta(3), { seed: 9 });
    expect(a.report.l2).toBe(b.report.l2);
    expect(Array.from(a.head.weights)).toEqual(Array.from(b.head.weights));
  });

  it('its probabilities are calibrated on the folds: confident where held-out photos are right, unsure where they are not', () => {
    const train = clusters([20, 20, 20], 5, 1.5);
    const test = clusters([100, 100, 100], 6, 1.5);
    const { head } = trainSoftmax(train.x, train.y, meta(3), { seed: 1 });
    const predicted = head.predictIndices(test.x);
    let correct = 0;
    let confidence = 0;
    for (let i = 0; i < test.y.length; i++) {
      correct += predicted[i] === test.y[i] ? 1 : 0;
      confidence += Math.max(...head.probabilities(test.x.subarray(i * DIM, (i + 1) * DIM)));
    }
    const accuracy = correct / test.y.length;
    expect(accuracy).toBeGreaterThan(0.6);
    expect(accuracy).toBeLessThan(0.99);
    expect(Math.abs(confidence / test.y.length - accuracy)).toBeLessThan(0.1);
  });

  it('an explicit --l2 skips the search', () => {
    const data = clusters([15, 15, 15], 7, 0.8);
    const fixed = trainSoftmax(data.x, data.y, meta(3), { seed: 1, l2: 0.3 }).report;
    expect(fixed).toMatchObject({ solver: 'exact', l2: 0.3, tuning: null, l2Path: null });
  });

  it('a set over the kernel size trains by mini-batches along an L2 path, the holdout choosing the strength', () => {
    const perClass = Math.ceil((KERNEL_MAX_ROWS + 1) / 3);
    const large = clusters([perClass, perClass, perClass], 8, 0.8);
    const { report } = trainSoftmax(large.x, large.y, meta(3), { seed: 1 });
    // 10 % of each class is the holdout; the grid 10..0.1 scaled by KERNEL_MAX_ROWS / the photos that fit.
    const fit = 3 * (perClass - Math.round(perClass * 0.1));
    expect(report).toMatchObject({ solver: 'sgd', tuning: null });
    expect(report.l2Path!.strongest).toBeCloseTo((10 * KERNEL_MAX_ROWS) / fit, 10);
    expect(report.l2Path!.weakest).toBeCloseTo((0.1 * KERNEL_MAX_ROWS) / fit, 10);
    // The strength of the holdout's best epoch, one of the path's steps.
    const steps = Array.from({ length: report.epochs }, (_, e) => report.l2Path!.strongest * 0.01 ** (e / Math.max(1, report.epochs - 1)));
    expect(steps.some((s) => Math.abs(s - report.l2) < 1e-12)).toBe(true);
    expect(report.l2).toBeCloseTo(steps[report.bestEpoch - 1]!, 12);
    // Without the search: the constant the head used before it tuned itself.
    expect(trainSoftmax(large.x, large.y, meta(3), { seed: 1, tuneL2: false }).report).toMatchObject({
      solver: 'sgd',
      l2: 0.1,
      l2Path: null,
    });
  });

  it('a large set of small classes (no holdout) chooses its L2 by cross-validation on a sample, scaled to its size', () => {
    // 34 classes of 15 photos: over the kernel size, each class too small for a holdout.
    const many = gaussianClusters(new Array<number>(34).fill(15), 9, { dim: DIM, spread: 0.8, bright: 1.2 });
    const { report } = trainSoftmax(many.x, many.y, meta(34), { seed: 1 });
    expect(report).toMatchObject({ solver: 'sgd', holdoutAccuracy: null, l2Path: null });
    const tuning = report.tuning!;
    const geometricMean = Math.exp(tuning.averaged.reduce((a, g) => a + Math.log(g.l2), 0) / tuning.averaged.length);
    const sampled = 34 * Math.max(2, Math.round(15 * (KERNEL_MAX_ROWS / 510)));
    expect(report.l2).toBeCloseTo((geometricMean * sampled) / 510, 12);
  });
});
