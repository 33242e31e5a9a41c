// Multinomial logistic regression with L2, solved to its optimum in kernel form, for sets with fewer
// photos than feature dimensions (the sizes a person labels on site). The weights of an L2-regularised
// linear model lie in the span of its training rows (W = A Z), so with K = Z Z^T = L L^T (Cholesky) and
// beta = L^T A the problem is an ordinary one over n features with the same L2 on beta:
//
//   logits = L beta + b   (per class),   |W|^2 = |beta|^2,
//   J = (1/n) sum_i w_{y_i} * -log p_{i, y_i} + (l2/2) |beta|^2
//
// Each gradient costs n^2 k instead of n d k, and sub-kernels of folds are sub-matrices of K, which is
// what makes cross-validating the L2 strength cheap.

export interface KernelFit {
  /** [k, n]: W = A Z */
  a: Float64Array;
  /** [k] */
  b: Float64Array;
  /** [k, n], for warm starts along a path of L2 strengths. */
  beta: Float64Array;
}

const MAX_ITERATIONS = 300;
const MEMORY = 8;
/** Stop when the gradient's largest entry is below this (cross-validation fits pass a looser one). */
const TOLERANCE = 1e-5;

/** Lower Cholesky factor of the [n, n] matrix `k` plus `jitter` on the diagonal (in a new array). */
export function cholesky(k: Float64Array, n: number, jitter: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = k[i * n + j]! + (i === j ? jitter : 0);
      for (let p = 0; p < j; p++) s -= l[i * n + p]! * l[j * n + p]!;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, jitter)) : s / l[j * n + j]!;
    }
  }
  return l;
}

/**
 * Fits on rows of a kernel whose Cholesky factor is `l` [n, n]: labels y [n] in 0..k-1, per-class
 * weights, L2 strength on the mean loss. `start` (a previous fit's beta and b) only speeds convergence.
 */
export function fitKernelLogistic(
  l: Float64Array,
  n: number,
  y: Int32Array,
  k: number,
  classWeight: Float64Array,
  l2: number,
  start?: Pick<KernelFit, 'beta' | 'b'>,
  tolerance = TOLERANCE,
): KernelFit {
  const size = n * k + k;
  const params = new Float64Array(size);
  if (start) {
    params.set(start.beta);
    params.set(start.b, n * k);
  }
  // Parameters class-major: beta[c * n + j], then b[c]; inner loops run along rows of L.
  const logits = new Float64Array(k * n);
  const residual = new Float64Array(k * n);
  const objective = (p: Float64Array, grad: Float64Array): number => {
    // logits = L beta + b   (L lower triangular)
    for (let c = 0; c < k; c++) {
      const base = c * n;
      const bias = p[n * k + c]!;
      for (let i = 0; i < n; i++) {
        const row = i * n;
        let s = bias;
        for (let j = 0; j <= i; j++) s += l[row + j]! * p[base + j]!;
        logits[base + i] = s;
      }
    }
    let loss = 0;
    for (let i = 0; i < n; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < k; c++) max = Math.max(max, logits[c * n + i]!);
      let sum = 0;
      for (let c = 0; c < k; c++) sum += Math.exp(logits[c * n + i]! - max);
      const lse = max + Math.log(sum);
      const yi = y[i]!;
      const wi = classWeight[yi]! / n;
      loss += wi * (lse - logits[yi * n + i]!);
      for (let c = 0; c < k; c++) residual[c * n + i] = wi * (Math.exp(logits[c * n + i]! - lse) - (c === yi ? 1 : 0));
    }
    // grad beta = L^T residual + l2 beta, grad b = sums of residual
    grad.fill(0);
    for (let c = 0; c < k; c++) {
      const base = c * n;
      let bias = 0;
      for (let i = 0; i < n; i++) {
        const r = residual[base + i]!;
        bias += r;
        const row = i * n;
        for (let j = 0; j <= i; j++) grad[base + j]! += l[row + j]! * r;
      }
      grad[n * k + c] = bias;
    }
    let penalty = 0;
    for (let q = 0; q < n * k; q++) {
      penalty += p[q]! * p[q]!;
      grad[q]! += l2 * p[q]!;
    }
    return loss + 0.5 * l2 * penalty;
  };
  minimizeLbfgs(objective, params, tolerance);
  const beta = params.slice(0, n * k);
  const b = params.slice(n * k);
  return { a: solveUpperTransposed(l, n, beta, k), b, beta };
}

/** A = L^{-T} beta (both class-major): back substitution with the transpose of lower-triangular L. */
function solveUpperTransposed(l: Float64Array, n: number, beta: Float64Array, k: number): Float64Array {
  const a = new Float64Array(n * k);
  for (let c = 0; c < k; c++) {
    const base = c * n;
    for (let i = n - 1; i >= 0; i--) {
      let s = beta[base + i]!;
      for (let j = i + 1; j < n; j++) s -= l[j * n + i]! * a[base + j]!;
      a[base + i] = s / l[i * n + i]!;
    }
  }
  return a;
}

/** Limited-memory BFGS with a backtracking (Armijo) line search, minimising in place. */
function minimizeLbfgs(f: (x: Float64Array, g: Float64Array) => number, x: Float64Array, tolerance: number): void {
  const size = x.length;
  const g = new Float64Array(size);
  let value = f(x, g);
  const s: Float64Array[] = [];
  const yv: Float64Array[] = [];
  const rho: number[] = [];
  const direction = new Float64Array(size);
  const trial = new Float64Array(size);
  const trialGrad = new Float64Array(size);
  const alpha = new Array<number>(MEMORY).fill(0);
  for (let iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
    if (maxAbs(g) < tolerance) return;
    // Two-loop recursion: direction = -H g
    for (let p = 0; p < size; p++) direction[p] = -g[p]!;
    for (let m = s.length - 1; m >= 0; m--) {
      alpha[m] = rho[m]! * dot(s[m]!, direction);
      axpy(-alpha[m]!, yv[m]!, direction);
    }
    if (s.length > 0) {
      const last = s.length - 1;
      const gamma = dot(s[last]!, yv[last]!) / dot(yv[last]!, yv[last]!);
      for (let p = 0; p < size; p++) direction[p]! *= gamma;
    } else {
      const scale = 1 / Math.max(1, Math.sqrt(dot(g, g)));
      for (let p = 0; p < size; p++) direction[p]! *= scale;
    }
    for (let m = 0; m < s.length; m++) {
      const beta = rho[m]! * dot(yv[m]!, direction);
      axpy(alpha[m]! - beta, s[m]!, direction);
    }
    let slope = dot(g, direction);
    if (!(slope < 0)) {
      // Not a descent direction (curvature lost): restart from steepest descent.
      s.length = yv.length = rho.length = 0;
      for (let p = 0; p < size; p++) direction[p] = -g[p]!;
      slope = -dot(g, g);
    }
    let step = 1;
    let trialValue = Number.POSITIVE_INFINITY;
    for (let tries = 0; tries < 30; tries++) {
      for (let p = 0; p < size; p++) trial[p] = x[p]! + step * direction[p]!;
      trialValue = f(trial, trialGrad);
      if (trialValue <= value + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(trialValue < value)) return;
    const sNew = new Float64Array(size);
    const yNew = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      sNew[p] = trial[p]! - x[p]!;
      yNew[p] = trialGrad[p]! - g[p]!;
    }
    const sy = dot(sNew, yNew);
    if (sy > 1e-12) {
      if (s.length === MEMORY) {
        s.shift();
        yv.shift();
        rho.shift();
      }
      s.push(sNew);
      yv.push(yNew);
      rho.push(1 / sy);
    }
    const improvement = value - trialValue;
    x.set(trial);
    g.set(trialGrad);
    value = trialValue;
    if (improvement < 1e-10 * Math.max(1, Math.abs(value))) return;
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function axpy(scale: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += scale * x[i]!;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
