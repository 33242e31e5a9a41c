// Prototype head (weight imprinting): each class is the mean direction of its L2-normalised features;
// a photo goes to the class whose mean is closest in angle. Training is a sum, so adding samples and
// merging heads from several devices are exact.
//
//   f_i = normalize(power(x_i))                   [dim]
//   m_c = (1 / n_c) * sum_{i in c} f_i            [dim]
//   W_c = m_c / |m_c|,  b_c = 0,  scores = W f   (cosines in [-1, 1])

import { HeadError } from '../../core/errors.js';
import { Head, type HeadMeta } from './head.js';

export interface PrototypeOptions {
  power?: number;
  /** Cosines differ by a few hundredths between similar classes: a low temperature spreads them. */
  temperature?: number;
}

export const PROTOTYPE_DEFAULTS = { power: 0.5, temperature: 0.05 } as const;

type BaseMeta = Pick<HeadMeta, 'backboneId' | 'dim' | 'labels'> & Partial<HeadMeta>;

/** Class means of normalised features: sums[c] / counts[c]. `y[i]` indexes `labels`. */
export function trainPrototype(x: Float32Array, y: ArrayLike<number>, meta: BaseMeta, options: PrototypeOptions = {}): Head {
  const k = meta.labels.length;
  const empty = emptyPrototype(meta, options);
  const sums = new Float32Array(k * meta.dim);
  const counts = new Array<number>(k).fill(0);
  accumulate(empty, x, y, sums, counts);
  return fromSums(empty.meta, sums, counts);
}

/** Adds samples to a prototype head: the result equals training on all samples at once. */
export function updatePrototype(head: Head, x: Float32Array, y: ArrayLike<number>): Head {
  assertPrototype(head);
  const { sums, counts } = sumsOf(head);
  accumulate(head, x, y, sums, counts);
  return fromSums(head.meta, sums, counts);
}

/** Merges prototype heads with the same labels and backbone: class means weighted by sample counts. */
export function mergePrototypes(heads: Head[]): Head {
  const first = heads[0];
  if (!first) throw new HeadError('HEAD_MERGE', 'nothing to merge');
  const labels = [...new Set(heads.flatMap((h) => h.labels))];
  const sums = new Float32Array(labels.length * first.meta.dim);
  const counts = new Array<number>(labels.length).fill(0);
  for (const head of heads) {
    assertPrototype(head);
    if (head.meta.backboneId !== first.meta.backboneId || head.meta.dim !== first.meta.dim) {
      throw new HeadError(
        'HEAD_BACKBONE_MISMATCH',
        `cannot merge heads of ${head.meta.backboneId}/${head.meta.dim} and ${first.meta.backboneId}/${first.meta.dim}`,
      );
    }
    const own = sumsOf(head);
    head.labels.forEach((label, c) => {
      const target = labels.indexOf(label);
      counts[target]! += own.counts[c]!;
      const d = head.meta.dim;
      for (let j = 0; j < d; j++) sums[target * d + j]! += own.sums[c * d + j]!;
    });
  }
  return fromSums({ ...first.meta, labels }, sums, counts);
}

function emptyPrototype(meta: BaseMeta, options: PrototypeOptions): Head {
  const k = meta.labels.length;
  return new Head(
    {
      version: 1,
      parent: null,
      metrics: {},
      createdAt: new Date().toISOString(),
      ...meta,
      kind: 'prototype',
      counts: new Array<number>(k).fill(0),
      power: options.power ?? PROTOTYPE_DEFAULTS.power,
      temperature: options.temperature ?? PROTOTYPE_DEFAULTS.temperature,
      normalize: true,
      norms: new Array<number>(k).fill(0),
    },
    new Float32Array(k * meta.dim),
    new Float32Array(k),
  );
}

function accumulate(head: Head, x: Float32Array, y: ArrayLike<number>, sums: Float32Array, counts: number[]): void {
  const d = head.meta.dim;
  if (x.length !== y.length * d) throw new HeadError('HEAD_DIM_MISMATCH', `${x.length} values for ${y.length} samples of dim ${d}`);
  for (let i = 0; i < y.length; i++) {
    const c = y[i]!;
    if (!(c >= 0 && c < counts.length))
      throw new HeadError('HEAD_LABEL', `sample ${i} has class index ${c}; the head has ${counts.length} classes`);
    const f = head.features(x.subarray(i * d, (i + 1) * d));
    for (let j = 0; j < d; j++) sums[c * d + j]! += f[j]!;
    counts[c]!++;
  }
}

/** Recovers per-class sums from the normalised weights and the stored norms. */
function sumsOf(head: Head): { sums: Float32Array; counts: number[] } {
  const d = head.meta.dim;
  const norms = head.meta.norms ?? [];
  const sums = new Float32Array(head.weights.length);
  head.labels.forEach((_, c) => {
    const scale = (norms[c] ?? 0) * head.meta.counts[c]!;
    for (let j = 0; j < d; j++) sums[c * d + j] = head.weights[c * d + j]! * scale;
  });
  return { sums, counts: [...head.meta.counts] };
}

function fromSums(meta: HeadMeta, sums: Float32Array, counts: number[]): Head {
  const d = meta.dim;
  const weights = new Float32Array(sums.length);
  const norms = counts.map((n, c) => {
    if (n === 0) return 0;
    let s = 0;
    for (let j = 0; j < d; j++) s += (sums[c * d + j]! / n) ** 2;
    const norm = Math.sqrt(s);
    for (let j = 0; j < d; j++) weights[c * d + j] = norm > 0 ? sums[c * d + j]! / n / norm : 0;
    return norm;
  });
  // A class with no samples gets a bias that keeps it from ever winning.
  const bias = Float32Array.from(counts, (n) => (n === 0 ? -1e6 : 0));
  // The open set is fitted on the photos afterwards (trainHead, mergeHeads): an old one would not match.
  const { openSet: _stale, ...rest } = meta;
  return new Head({ ...rest, kind: 'prototype', counts, norms }, weights, bias);
}

function assertPrototype(head: Head): void {
  if (head.kind !== 'prototype') throw new HeadError('HEAD_KIND', `expected a prototype head, got ${head.kind}`);
}
