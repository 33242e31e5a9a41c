// The console's merge of what devices learned. Prototype heads merge exactly (class sums and counts).
// Softmax heads merge per class: each class row and bias is the average of the devices' rows, weighted
// by how many samples of that class each device trained on. Before merging, a device whose head is far
// from the rest of the fleet (a class row pointing elsewhere, or much longer or shorter) is held back and
// reported: a mislabelled batch or a broken camera should not spread to every device. The merged head
// gets the fleet's class means and a threshold from the devices' calibrations (open-set.ts).

import { HeadError } from '../../core/errors.js';
import { cosine } from '../eval/metrics.js';
import { Head } from './head.js';
import { mergeOpenSets } from './open-set.js';
import { mergePrototypes } from './prototype.js';

export interface DeviceHead {
  device: string;
  head: Head;
}

export interface MergeOptions {
  /**
   * Hold back a device whose class row (rows centred, as softmax scores ignore a shift shared by all
   * rows) has a cosine below this to the rest of the fleet's. Default 0: it points away from the fleet.
   * Measured on flowers128 with 10 labels per class: honest devices 0.07-0.50 (softmax) and 0.28-0.76
   * (prototype); a device with two classes' labels swapped -0.13 and -0.32.
   */
  minCosine?: number;
  /** Hold back a device whose class row is this many times longer or shorter than the fleet's. Default 3. */
  maxNormRatio?: number;
}

export interface MergeResult {
  head: Head;
  merged: string[];
  heldBack: { device: string; reason: string }[];
}

export function mergeHeads(heads: DeviceHead[], options: MergeOptions = {}): MergeResult {
  const first = heads[0]?.head;
  if (!first) throw new HeadError('HEAD_MERGE', 'no device heads to merge');
  for (const { device, head } of heads) {
    if (head.kind !== first.kind) throw new HeadError('HEAD_MERGE', `device ${device} has a ${head.kind} head, the others ${first.kind}`);
    if (head.meta.backboneId !== first.meta.backboneId || head.meta.dim !== first.meta.dim) {
      throw new HeadError(
        'HEAD_BACKBONE_MISMATCH',
        `device ${device} has a head for ${head.meta.backboneId}/${head.meta.dim}, the others ${first.meta.backboneId}/${first.meta.dim}`,
      );
    }
  }
  const heldBack = heads.length >= 3 ? outliers(heads, options) : [];
  const kept = heads.filter((h) => !heldBack.some((o) => o.device === h.device));
  if (kept.length === 0)
    throw new HeadError('HEAD_MERGE', `every device head is far from the others: ${heldBack.map((h) => h.device).join(', ')}`);
  const classifier = first.kind === 'prototype' ? mergePrototypes(kept.map((h) => h.head)) : mergeSoftmax(kept.map((h) => h.head));
  const openSet = mergeOpenSets(
    kept.map(({ head }) => ({ labels: head.labels, counts: head.meta.counts, means: head.means, calibration: head.meta.openSet })),
    classifier.labels,
    classifier.meta.dim,
  );
  return { head: classifier.withOpenSet(openSet.means, openSet.calibration), merged: kept.map((h) => h.device), heldBack };
}

function mergeSoftmax(heads: Head[]): Head {
  const first = heads[0]!;
  const d = first.meta.dim;
  const labels = [...new Set(heads.flatMap((h) => h.labels))].sort();
  const weights = new Float32Array(labels.length * d);
  const bias = new Float32Array(labels.length);
  const counts = new Array<number>(labels.length).fill(0);
  const totals = new Array<number>(labels.length).fill(0);
  for (const head of heads) {
    if (head.meta.power !== first.meta.power)
      throw new HeadError('HEAD_MERGE', `heads use different feature powers (${head.meta.power}, ${first.meta.power})`);
    if (head.meta.normalize !== first.meta.normalize)
      throw new HeadError(
        'HEAD_MERGE',
        `heads disagree on normalising features (${head.meta.normalize}, ${first.meta.normalize}): one was trained by an older edgetune`,
      );
    head.labels.forEach((label, c) => {
      const target = labels.indexOf(label);
      // A device that labelled nothing of a class still learned something about it: weigh it as 1.
      const n = Math.max(1, head.meta.counts[c] ?? 0);
      counts[target]! += head.meta.counts[c] ?? 0;
      totals[target]! += n;
      for (let j = 0; j < d; j++) weights[target * d + j]! += n * head.weights[c * d + j]!;
      bias[target]! += n * head.bias[c]!;
    });
  }
  totals.forEach((total, c) => {
    for (let j = 0; j < d; j++) weights[c * d + j]! /= total;
    bias[c]! /= total;
  });
  const { openSet: _own, ...meta } = first.meta;
  return new Head({ ...meta, labels, counts, version: 0, parent: null, metrics: {}, createdAt: new Date().toISOString() }, weights, bias);
}

/** Class rows minus their mean: softmax scores do not change when one vector is added to every row, so
 * only the differences between rows say what a head learned. */
function centredRows(head: Head): Float32Array {
  const d = head.meta.dim;
  const k = head.labels.length;
  const mean = new Float32Array(d);
  for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) mean[j]! += head.weights[c * d + j]! / k;
  return Float32Array.from(head.weights, (w, i) => w - mean[i % d]!);
}

function outliers(heads: DeviceHead[], options: MergeOptions): { device: string; reason: string }[] {
  const minCosine = options.minCosine ?? 0;
  const maxRatio = options.maxNormRatio ?? 3;
  const d = heads[0]!.head.meta.dim;
  const rows = new Map(heads.map((h) => [h.device, centredRows(h.head)]));
  // Per class, the sum of every device's centred row and how many devices know the class: "the rest of
  // the fleet" is then the sum minus a device's own row, so the check is linear in the fleet size.
  const sums = new Map<string, { sum: Float32Array; devices: number }>();
  for (const { device, head } of heads) {
    const r = rows.get(device)!;
    head.labels.forEach((label, c) => {
      const entry = sums.get(label) ?? { sum: new Float32Array(d), devices: 0 };
      for (let j = 0; j < d; j++) entry.sum[j]! += r[c * d + j]!;
      entry.devices++;
      sums.set(label, entry);
    });
  }
  const found: { device: string; reason: string }[] = [];
  const fleet = new Float32Array(d);
  for (const { device, head } of heads) {
    for (const [c, label] of head.labels.entries()) {
      const { sum, devices } = sums.get(label)!;
      if (devices - 1 < 2) continue;
      const own = rows.get(device)!.subarray(c * d, (c + 1) * d);
      for (let j = 0; j < d; j++) fleet[j] = (sum[j]! - own[j]!) / (devices - 1);
      const similarity = cosine(own, fleet);
      const ratio = Math.hypot(...own) / (Math.hypot(...fleet) || 1);
      if (similarity < minCosine || ratio > maxRatio || ratio < 1 / maxRatio) {
        found.push({
          device,
          reason: `class "${label}" is far from the fleet (cosine ${similarity.toFixed(2)}, norm ${ratio.toFixed(2)}x)`,
        });
        break;
      }
    }
  }
  return found;
}
