// What every head is: a linear map from transformed embeddings to class scores, with the metadata that
// travels with it (backbone, labels, sample counts, lineage, metrics). Kinds differ in how they are
// trained and how they turn scores into probabilities.
//
//   features f = power(x)            (then L2-normalised for prototype heads)
//   scores   s = W f + b             W: [classes, dim], b: [classes]
//   probs    p = softmax(s / T)
//   unknown  when normalize(power(x)) is far from every class mean (open-set.ts), or, with a threshold
//            given, when max p is below it

import { HeadError } from '../../core/errors.js';
import { reservedLabelProblem } from '../../core/labels.js';
import { l2Normalize, powerTransform, softmax } from './features.js';
import { type OpenSetCalibration, distanceToClasses, openSetFeatures } from './open-set.js';

export type HeadKind = 'prototype' | 'softmax';

export const UNKNOWN = 'unknown';

export interface HeadMeta {
  kind: HeadKind;
  backboneId: string;
  dim: number;
  labels: string[];
  /** Training samples per class, same order as labels. */
  counts: number[];
  version: number;
  parent: number | null;
  metrics: Record<string, number>;
  createdAt: string;
  /** Power transform applied to embeddings before the head (1 = none). */
  power: number;
  /** Softmax temperature on the scores. */
  temperature: number;
  /** Prototype heads compare directions: features are L2-normalised first. */
  normalize: boolean;
  /** Prototype heads: |class mean| per class, so sums (and exact updates) can be recovered. */
  norms?: number[];
  /** How far from the class means a photo is called unknown; absent on heads from before format 2. */
  openSet?: OpenSetCalibration;
}

export interface HeadPrediction {
  /** The top label, or "unknown". */
  label: string;
  unknown: boolean;
  /** Cosine distance to the nearest class mean (0..2), null for a head without class means. */
  distance: number | null;
  /** The distance above which this head answers unknown, null when it has no calibration. */
  distanceThreshold: number | null;
  /** Class index of `label`, -1 for unknown. */
  index: number;
  /** Probability of the top class (also when the answer is unknown). */
  score: number;
  probabilities: Float32Array;
  top: { label: string; score: number }[];
}

export interface PredictOptions {
  /**
   * Override: answer "unknown" below this top probability instead of by the head's calibrated distance
   * (0 never answers unknown).
   */
  threshold?: number;
  /** How many labels `top` lists (default 5). */
  topK?: number;
}

export class Head {
  constructor(
    readonly meta: HeadMeta,
    /** [classes, dim] */
    readonly weights: Float32Array,
    /** [classes] */
    readonly bias: Float32Array,
    /** [classes, dim] mean of normalize(power(x)) per class, for the open set (absent on older heads). */
    readonly means?: Float32Array,
  ) {
    const k = meta.labels.length;
    if (k === 0) throw new HeadError('HEAD_INVALID', 'a head needs at least one class');
    if (new Set(meta.labels).size !== k) throw new HeadError('HEAD_INVALID', `duplicate labels in ${meta.labels.join(', ')}`);
    for (const label of meta.labels) {
      const problem = reservedLabelProblem(label);
      if (problem) throw new HeadError('HEAD_LABEL', `class ${JSON.stringify(label)} ${problem}`);
    }
    if (weights.length !== k * meta.dim || bias.length !== k || meta.counts.length !== k) {
      throw new HeadError(
        'HEAD_INVALID',
        `head shapes disagree: ${k} labels, dim ${meta.dim}, ${weights.length} weights, ${bias.length} biases, ${meta.counts.length} counts`,
      );
    }
    if (means && means.length !== k * meta.dim)
      throw new HeadError('HEAD_INVALID', `${means.length} class-mean values for ${k} labels x dim ${meta.dim}`);
    if (meta.openSet && !means) throw new HeadError('HEAD_INVALID', 'the head has an open-set threshold but no class means');
  }

  get labels(): string[] {
    return this.meta.labels;
  }

  get kind(): HeadKind {
    return this.meta.kind;
  }

  /** Embedding -> the features the weights act on. */
  features(embedding: Float32Array): Float32Array {
    if (embedding.length !== this.meta.dim) {
      throw new HeadError('HEAD_DIM_MISMATCH', `embedding has ${embedding.length} values, the head takes ${this.meta.dim}`);
    }
    const f = powerTransform(embedding, this.meta.power);
    return this.meta.normalize ? l2Normalize(f) : f;
  }

  scores(embedding: Float32Array): Float32Array {
    const f = this.features(embedding);
    const k = this.meta.labels.length;
    const d = this.meta.dim;
    const s = new Float32Array(k);
    for (let c = 0; c < k; c++) {
      let acc = this.bias[c]!;
      const row = c * d;
      for (let j = 0; j < d; j++) acc += this.weights[row + j]! * f[j]!;
      s[c] = acc;
    }
    return s;
  }

  probabilities(embedding: Float32Array): Float32Array {
    return softmax(this.scores(embedding), this.meta.temperature);
  }

  /** Cosine distance from the embedding to the nearest class mean, null without class means. */
  distance(embedding: Float32Array): number | null {
    if (!this.means) return null;
    this.features(embedding); // checks the dimension
    return distanceToClasses(openSetFeatures(embedding, this.meta.power), this.means, this.meta.dim).distance;
  }

  predict(embedding: Float32Array, options: PredictOptions = {}): HeadPrediction {
    const probabilities = this.probabilities(embedding);
    const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b]! - probabilities[a]!);
    const best = order[0]!;
    const score = probabilities[best]!;
    const distance = this.distance(embedding);
    const distanceThreshold = this.meta.openSet?.threshold ?? null;
    const unknown =
      options.threshold !== undefined
        ? score < options.threshold
        : distance !== null && distanceThreshold !== null && distance > distanceThreshold;
    return {
      label: unknown ? UNKNOWN : this.labels[best]!,
      index: unknown ? -1 : best,
      unknown,
      distance,
      distanceThreshold,
      score,
      probabilities,
      top: order.slice(0, options.topK ?? 5).map((i) => ({ label: this.labels[i]!, score: probabilities[i]! })),
    };
  }

  /** Class index per row of a [n, dim] matrix (no threshold). */
  predictIndices(embeddings: Float32Array): Int32Array {
    const d = this.meta.dim;
    const n = embeddings.length / d;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const s = this.scores(embeddings.subarray(i * d, (i + 1) * d));
      let best = 0;
      for (let c = 1; c < s.length; c++) if (s[c]! > s[best]!) best = c;
      out[i] = best;
    }
    return out;
  }

  /** A copy with other metadata (version, parent, metrics...). */
  withMeta(changes: Partial<HeadMeta>): Head {
    return new Head({ ...this.meta, ...changes }, this.weights, this.bias, this.means);
  }

  /** A copy with class means and their calibration (undefined calibration: the head never says unknown). */
  withOpenSet(means: Float32Array | undefined, openSet: OpenSetCalibration | undefined): Head {
    const { openSet: _dropped, ...meta } = this.meta;
    return new Head(openSet ? { ...meta, openSet } : meta, this.weights, this.bias, means);
  }
}

export function firstNonFinite(values: Float32Array, name = 'weights'): { value: number; where: string } | undefined {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return { value: values[i]!, where: `${name}[${i}]` };
  return undefined;
}
