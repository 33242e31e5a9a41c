// Head kinds by name, and the one entry point that trains any of them (and fits its open set).

import { HeadError } from '../../core/errors.js';
import type { Head, HeadKind, HeadMeta } from './head.js';
import { type PrototypeOptions, trainPrototype } from './prototype.js';
import { type SoftmaxOptions, type SoftmaxReport, trainSoftmax } from './softmax.js';
import { fitOpenSet } from './open-set.js';

type BaseMeta = Pick<HeadMeta, 'backboneId' | 'dim' | 'labels'> & Partial<HeadMeta>;

export const HEAD_KINDS: readonly HeadKind[] = ['softmax', 'prototype'];

export interface TrainOptions extends SoftmaxOptions, PrototypeOptions {
  /** Share of known photos the open-set threshold calls unknown (default 0.05). */
  unknownRate?: number;
}

export interface TrainResult {
  head: Head;
  trainMs: number;
  report?: SoftmaxReport;
}

/** Trains a head of `kind` on x [n, dim] with class indices y into `meta.labels`. */
export function trainHead(kind: HeadKind, x: Float32Array, y: ArrayLike<number>, meta: BaseMeta, options: TrainOptions = {}): TrainResult {
  const started = performance.now();
  const trained = trainClassifier(kind, x, y, meta, options);
  const { means, calibration } = fitOpenSet(x, y, meta.labels.length, meta.dim, trained.head.meta.power, options.unknownRate);
  return { ...trained, head: trained.head.withOpenSet(means, calibration), trainMs: performance.now() - started };
}

function trainClassifier(
  kind: HeadKind,
  x: Float32Array,
  y: ArrayLike<number>,
  meta: BaseMeta,
  options: TrainOptions,
): Omit<TrainResult, 'trainMs'> {
  if (kind === 'prototype') return { head: trainPrototype(x, y, meta, options) };
  if (kind === 'softmax') return trainSoftmax(x, y, meta, options);
  throw new HeadError('HEAD_KIND', `unknown head kind "${String(kind)}": use ${HEAD_KINDS.join(' or ')}`);
}

export { Head, UNKNOWN } from './head.js';
export type { HeadKind, HeadMeta, HeadPrediction, PredictOptions } from './head.js';
export { decodeHead, encodeHead, loadHead, saveHead } from './head-file.js';
