// Head kinds by name, and the one entry point that trains any of them.

import { HeadError } from '../../core/errors.js';
import type { Head, HeadKind, HeadMeta } from './head.js';
import { type PrototypeOptions, trainPrototype } from './prototype.js';
import { type SoftmaxOptions, type SoftmaxReport, trainSoftmax } from './softmax.js';

export const HEAD_KINDS: readonly HeadKind[] = ['softmax', 'prototype'];

export interface TrainOptions extends SoftmaxOptions, PrototypeOptions {}

export interface TrainResult {
  head: Head;
  trainMs: number;
  report?: SoftmaxReport;
}

/** Trains a head of `kind` on x [n, dim] with class indices y into `meta.labels`. */
export function trainHead(
  kind: HeadKind,
  x: Float32Array,
  y: ArrayLike<number>,
  meta: Pick<HeadMeta, 'backboneId' | 'dim' | 'labels'> & Partial<HeadMeta>,
  options: TrainOptions = {},
): TrainResult {
  const started = performance.now();
  if (kind === 'prototype') {
    const head = trainPrototype(x, y, meta, options);
    return { head, trainMs: performance.now() - started };
  }
  if (kind === 'softmax') {
    const { head, report } = trainSoftmax(x, y, meta, options);
    return { head, report, trainMs: report.trainMs };
  }
  throw new HeadError('HEAD_KIND', `unknown head kind "${String(kind)}": use ${HEAD_KINDS.join(' or ')}`);
}

export { Head, UNKNOWN } from './head.js';
export type { HeadKind, HeadMeta, HeadPrediction, PredictOptions } from './head.js';
export { decodeHead, encodeHead, loadHead, saveHead } from './head-file.js';
