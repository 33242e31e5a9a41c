// Options and helpers shared by the verbs that train heads (train, eval).

import { Option, type Command } from 'commander';
import type { OpenedBackbone } from './backbone-flags.js';
import type { EmbedOutcome } from '../runtime/embeddings/embed-files.js';
import type { LabelledImage } from '../runtime/dataset/folder.js';
import { HEAD_KINDS, type HeadKind, type TrainOptions } from '../runtime/head/index.js';
import { nonNegativeNumber, wholeNumber } from './number-options.js';
import { UsageError } from './output.js';

export interface HeadFlags {
  head: HeadKind;
  l2?: number;
  epochs?: number;
  unknownRate?: number;
  seed: number;
}

export function addHeadOptions(command: Command): Command {
  return command
    .addOption(new Option('--head <kind>', 'head kind').choices([...HEAD_KINDS]).default('softmax'))
    .option(
      '--l2 <x>',
      'softmax: L2 strength (default: chosen from the photos: cross-validation up to 500, the holdout along a path above)',
      nonNegativeNumber('--l2'),
    )
    .option('--epochs <n>', 'softmax over 500 photos: epochs of the learning-rate schedule (default 8)', nonNegativeNumber('--epochs'))
    .option('--unknown-rate <p>', 'share of known photos the calibrated open set may call unknown (default 0.05)', unknownRate)
    .option('--seed <n>', 'seed for splits and training', wholeNumber('--seed', 0, Number.MAX_SAFE_INTEGER), 42);
}

function unknownRate(value: string): number {
  const p = Number(value);
  if (!(p > 0 && p < 1)) throw new UsageError(`--unknown-rate must be between 0 and 1 (exclusive), got "${value}"`);
  return p;
}

export function trainOptions(flags: HeadFlags): TrainOptions {
  return {
    seed: flags.seed,
    ...(flags.l2 !== undefined ? { l2: flags.l2 } : {}),
    ...(flags.epochs !== undefined ? { maxEpochs: Math.max(1, Math.round(flags.epochs)) } : {}),
    ...(flags.unknownRate !== undefined ? { unknownRate: flags.unknownRate } : {}),
  };
}

/** Rows that embedded, as a matrix [n, dim] with their labels. */
export function toMatrix(
  items: LabelledImage[],
  outcomes: EmbedOutcome[],
  dim: number,
): { x: Float32Array; y: Int32Array; kept: LabelledImage[] } {
  const kept: LabelledImage[] = [];
  const rows: Float32Array[] = [];
  outcomes.forEach((o, i) => {
    if (!o.embedding) return;
    kept.push(items[i]!);
    rows.push(o.embedding);
  });
  const x = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => x.set(r, i * dim));
  return { x, y: Int32Array.from(kept, (k) => k.label), kept };
}

export function pick(x: Float32Array, y: Int32Array, indices: number[], dim: number): { x: Float32Array; y: Int32Array } {
  const out = new Float32Array(indices.length * dim);
  indices.forEach((i, r) => out.set(x.subarray(i * dim, (i + 1) * dim), r * dim));
  return { x: out, y: Int32Array.from(indices, (i) => y[i]!) };
}

export function backboneMeta(opened: OpenedBackbone, labels: string[]) {
  return { backboneId: opened.model.manifest.id, dim: opened.backbone.dim, labels };
}
