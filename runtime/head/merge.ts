// The console's merge of what devices learned, built so that no single device can move the fleet head
// far. In order:
//   1. a head with any number that is not finite is held back (NaN-proof by construction: every later
//      step sees finite numbers only, and every comparison is written so that NaN fails it);
//   2. only accepted classes enter (the console decides: operator-accepted, or a quorum of devices);
//   3. with 3+ devices, a device whose class row (and bias) points away from the rest of the fleet's or
//      is much longer or shorter is held back and reported;
//   4. prototype heads then merge exactly (class sums and counts) among the accepted devices; softmax
//      heads merge per class: the class row and bias are a weighted mean over the devices in which a row
//      far from the coordinate-wise median is pulled in to the fleet's usual distance (centred
//      clipping), weighted by sample counts clipped to a multiple of the class's median count, with no
//      device's share above a cap; every head's rows are brought to the fleet's median scale first,
//      so a device counts by its samples, not by how sure its calibration makes it.
//   5. the merged head gets the fleet's class means and a threshold from the devices' calibrations
//      (open-set.ts).

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
  /** Softmax: a device's sample count for a class counts at most this many times the class's median. Default 3. */
  maxCountRatio?: number;
  /** Softmax, 3+ devices: the largest share of a class's weight one device may have. Default 0.34. */
  maxShare?: number;
  /** Softmax, 3+ devices: a class row further from the coordinate-wise median row than this many times
   * the median device's distance is pulled in to it. Default 2. */
  clipRadius?: number;
}

export interface MergeResult {
  head: Head;
  merged: string[];
  heldBack: { device: string; reason: string }[];
  /** Classes some device has that did not enter the merged head, with the devices that have them. */
  leftOut: { label: string; devices: string[] }[];
}

/** `acceptClass` decides which classes enter (default: every class a device has). */
export function mergeHeads(
  heads: DeviceHead[],
  options: MergeOptions = {},
  acceptClass: (label: string, devices: string[]) => boolean = () => true,
): MergeResult {
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
  const heldBack: { device: string; reason: string }[] = [];
  const finite = heads.filter(({ device, head }) => {
    const problem = nonFinite(head);
    if (problem) heldBack.push({ device, reason: problem });
    return !problem;
  });
  const owners = new Map<string, string[]>();
  for (const { device, head } of finite)
    for (const label of head.labels) {
      const list = owners.get(label) ?? [];
      list.push(device);
      owners.set(label, list);
    }
  const accepted = new Set([...owners].filter(([label, devices]) => acceptClass(label, devices)).map(([label]) => label));
  const leftOut = [...owners].filter(([label]) => !accepted.has(label)).map(([label, devices]) => ({ label, devices }));
  const restricted: DeviceHead[] = [];
  for (const { device, head } of finite) {
    const only = onlyClasses(head, accepted);
    if (only) restricted.push({ device, head: only });
  }
  const outlying = restricted.length >= 3 ? outliers(restricted, options) : [];
  heldBack.push(...outlying);
  const kept = restricted.filter((h) => !outlying.some((o) => o.device === h.device));
  if (kept.length === 0)
    throw new HeadError(
      'HEAD_MERGE',
      heldBack.length > 0
        ? `no device head can be merged: ${heldBack.map((h) => `${h.device} (${h.reason})`).join('; ')}`
        : `no device has a class the fleet accepts (left out: ${leftOut.map((c) => c.label).join(', ')})`,
    );
  const classifier =
    first.kind === 'prototype'
      ? mergePrototypes(kept.map((h) => h.head))
      : mergeSoftmax(
          kept.map((h) => h.head),
          options,
        );
  const openSet = mergeOpenSets(
    kept.map(({ head }) => ({ labels: head.labels, counts: head.meta.counts, means: head.means, calibration: head.meta.openSet })),
    classifier.labels,
    classifier.meta.dim,
  );
  return { head: classifier.withOpenSet(openSet.means, openSet.calibration), merged: kept.map((h) => h.device), heldBack, leftOut };
}

/** The reason a head cannot be merged at all, or null. */
function nonFinite(head: Head): string | null {
  const bad = (values: ArrayLike<number>) => Array.prototype.findIndex.call(values, (v: number) => !Number.isFinite(v));
  const w = bad(head.weights);
  if (w >= 0) return `weight ${w} is ${head.weights[w]}: not a finite number`;
  const b = bad(head.bias);
  if (b >= 0) return `bias ${b} is ${head.bias[b]}: not a finite number`;
  const c = bad(head.meta.counts);
  if (c >= 0 || head.meta.counts.some((n) => n < 0)) return 'a sample count is not a finite, non-negative number';
  if (head.meta.norms && bad(head.meta.norms) >= 0) return 'a class norm is not a finite number';
  return null;
}

/** The head with only the given classes (rows kept in order), or null when none is left. */
export function onlyClasses(head: Head, labels: Set<string>): Head | null {
  const keep = head.labels.flatMap((label, c) => (labels.has(label) ? [c] : []));
  if (keep.length === head.labels.length) return head;
  if (keep.length === 0) return null;
  const d = head.meta.dim;
  const rows = (matrix: Float32Array) => {
    const kept = new Float32Array(keep.length * d);
    keep.forEach((c, i) => kept.set(matrix.subarray(c * d, (c + 1) * d), i * d));
    return kept;
  };
  const weights = rows(head.weights);
  const pick = <T>(values: T[]) => keep.map((c) => values[c]!);
  return new Head(
    {
      ...head.meta,
      labels: pick(head.labels),
      counts: pick(head.meta.counts),
      ...(head.meta.norms ? { norms: pick(head.meta.norms) } : {}),
    },
    weights,
    Float32Array.from(keep, (c) => head.bias[c]!),
    head.means ? rows(head.means) : undefined,
  );
}

function mergeSoftmax(heads: Head[], options: MergeOptions): Head {
  const first = heads[0]!;
  const d = first.meta.dim;
  for (const head of heads) {
    if (head.meta.power !== first.meta.power)
      throw new HeadError('HEAD_MERGE', `heads use different feature powers (${head.meta.power}, ${first.meta.power})`);
    if (head.meta.normalize !== first.meta.normalize)
      throw new HeadError(
        'HEAD_MERGE',
        `heads disagree on normalising features (${head.meta.normalize}, ${first.meta.normalize}): one was trained by an older edgetune`,
      );
  }
  const labels = [...new Set(heads.flatMap((h) => h.labels))].sort();
  const weights = new Float32Array(labels.length * d);
  const bias = new Float32Array(labels.length);
  // Each head's rows come at its own scale: a head tuned on a few photos is calibrated to be more or
  // less sure than one tuned on many, which says nothing about which has learned more. Rows are merged
  // at one scale (each head's divided by the median length of its centred rows), so a device counts by its
  // samples, not its confidence; the merged head then takes the devices' median scale.
  const scales = heads.map((head) => rowScale(head));
  const fleetScale = median(scales);
  const counts = labels.map((label, target) => {
    // [devices, dim + 1]: each device's row for this class, its bias last.
    const rows: Float32Array[] = [];
    const samples: number[] = [];
    for (const [h, head] of heads.entries()) {
      const c = head.labels.indexOf(label);
      if (c < 0) continue;
      const row = new Float32Array(d + 1);
      row.set(head.weights.subarray(c * d, (c + 1) * d));
      row[d] = head.bias[c]!;
      const unit = fleetScale / scales[h]!;
      for (let j = 0; j <= d; j++) row[j]! *= unit;
      rows.push(row);
      samples.push(head.meta.counts[c]!);
    }
    const clipped = clipCounts(samples, options.maxCountRatio ?? 3);
    // A device that labelled nothing of a class still learned something about it: weigh it as 1.
    const shares = capShares(
      clipped.map((n) => Math.max(1, n)),
      rows.length >= 3 ? (options.maxShare ?? 0.34) : 1,
    );
    const merged = clippedMean(rows, shares, rows.length >= 3 ? (options.clipRadius ?? 2) : Infinity);
    weights.set(merged.subarray(0, d), target * d);
    bias[target] = merged[d]!;
    return Math.round(clipped.reduce((a, b) => a + b, 0));
  });
  const { openSet: _own, ...meta } = first.meta;
  return new Head({ ...meta, labels, counts, version: 0, parent: null, metrics: {}, createdAt: new Date().toISOString() }, weights, bias);
}

/** The median length of a head's centred class rows (weights only): one class or one bias blown up does
 * not change it. 1 for a head without a usable length. */
function rowScale(head: Head, rows = centredRows(head)): number {
  const d = head.meta.dim;
  const lengths = head.labels.map((_, c) => Math.hypot(...rows.subarray(c * (d + 1), c * (d + 1) + d)));
  const length = median(lengths);
  return length > 0 && Number.isFinite(length) ? length : 1;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/** Counts above `ratio` times the median count are cut down to it: a device claiming a million
 * samples weighs as one with a few times the usual number. */
function clipCounts(counts: number[], ratio: number): number[] {
  const sorted = [...counts].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const cap = Math.max(1, median) * ratio;
  return counts.map((n) => Math.min(n, cap));
}

/** Normalised weights with none above `cap` (water-filling: what a capped device loses goes to the
 * others in proportion). A cap below 1/n would be impossible and becomes equal shares. */
export function capShares(weights: number[], cap: number): number[] {
  const n = weights.length;
  const limit = Math.max(cap, 1 / n);
  const shares = new Array<number>(n).fill(0);
  const capped = new Set<number>();
  for (;;) {
    const free = weights.reduce((sum, w, i) => (capped.has(i) ? sum : sum + w), 0);
    const left = 1 - capped.size * limit;
    let changed = false;
    weights.forEach((w, i) => {
      if (capped.has(i)) return;
      shares[i] = free > 0 ? (left * w) / free : left / (n - capped.size);
      if (shares[i]! > limit + 1e-12) {
        capped.add(i);
        changed = true;
      }
    });
    if (!changed) break;
  }
  capped.forEach((i) => (shares[i] = limit));
  return shares;
}

/**
 * Centred clipping: the coordinate-wise median row is the reference, and a row further from it than
 * `radius` times the median device's distance is pulled in to that distance before the weighted mean.
 * Honest rows, about equally far from the median, pass unchanged (the merge stays the plain weighted
 * mean); a row from elsewhere counts as one at the fleet's usual distance, in its direction.
 * Coordinate-wise trimming was measured first: on flowers128 with 4 devices it cost 2.7 points.
 */
function clippedMean(rows: Float32Array[], shares: number[], radius: number): Float32Array {
  const width = rows[0]!.length;
  const n = rows.length;
  const out = new Float32Array(width);
  if (radius === Infinity) {
    rows.forEach((row, i) => row.forEach((v, j) => (out[j]! += shares[i]! * v)));
    return out;
  }
  const median = medianRow(rows);
  const distances = rows.map((row) => Math.sqrt(row.reduce((sum, v, j) => sum + (v - median[j]!) ** 2, 0)));
  const sorted = [...distances].sort((a, b) => a - b);
  const limit = radius * sorted[Math.floor((n - 1) / 2)]!;
  rows.forEach((row, i) => {
    const scale = distances[i]! > limit ? limit / distances[i]! : 1;
    for (let j = 0; j < width; j++) out[j]! += shares[i]! * (median[j]! + scale * (row[j]! - median[j]!));
  });
  return out;
}

/** Class rows minus their mean, each with its centred bias appended ([classes, dim + 1]): softmax scores
 * do not change when one vector is added to every row, so only the differences between rows say what a
 * head learned. */
function centredRows(head: Head): Float32Array {
  const d = head.meta.dim;
  const k = head.labels.length;
  const mean = new Float32Array(d + 1);
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < d; j++) mean[j]! += head.weights[c * d + j]! / k;
    mean[d]! += head.bias[c]! / k;
  }
  const out = new Float32Array(k * (d + 1));
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < d; j++) out[c * (d + 1) + j] = head.weights[c * d + j]! - mean[j]!;
    // Prototype heads mark a class without samples with a bias of -1e6: that is no direction.
    out[c * (d + 1) + d] = head.kind === 'prototype' ? 0 : head.bias[c]! - mean[d]!;
  }
  return out;
}

function outliers(heads: DeviceHead[], options: MergeOptions): { device: string; reason: string }[] {
  const minCosine = options.minCosine ?? 0;
  const maxRatio = options.maxNormRatio ?? 3;
  const w = heads[0]!.head.meta.dim + 1;
  // At one scale, as the merge takes them: a head's calibration makes it more or less sure as a whole,
  // which is no sign of an outlier; one class or bias blown up is.
  const rows = new Map(
    heads.map((h) => {
      const centred = centredRows(h.head);
      const unit = 1 / rowScale(h.head, centred);
      return [h.device, centred.map((v) => v * unit)];
    }),
  );
  // Per class, "the fleet" is the coordinate-wise median of the other devices' centred rows: unlike a
  // mean, one device cannot drag it (a mean with one huge row made every honest device look short). In
  // large fleets the median of all rows stands in, which one device's own row barely moves.
  const byLabel = new Map<string, { device: string; row: Float32Array }[]>();
  for (const { device, head } of heads) {
    const r = rows.get(device)!;
    head.labels.forEach((label, c) => {
      const list = byLabel.get(label) ?? [];
      list.push({ device, row: r.subarray(c * w, (c + 1) * w) });
      byLabel.set(label, list);
    });
  }
  const ofAll = new Map([...byLabel].map(([label, list]) => [label, list.length > 25 ? medianRow(list.map((e) => e.row)) : null]));
  const found: { device: string; reason: string }[] = [];
  for (const { device, head } of heads) {
    for (const [c, label] of head.labels.entries()) {
      const others = byLabel.get(label)!.filter((e) => e.device !== device);
      if (others.length < 2) continue;
      const fleet = ofAll.get(label) ?? medianRow(others.map((e) => e.row));
      const own = rows.get(device)!.subarray(c * w, (c + 1) * w);
      const similarity = cosine(own, fleet);
      const ratio = Math.hypot(...own) / (Math.hypot(...fleet) || 1);
      // Negated comparisons: a NaN (which step 1 rules out anyway) holds the device back.
      if (!(similarity >= minCosine) || !(ratio <= maxRatio && ratio >= 1 / maxRatio)) {
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

/** The coordinate-wise median of rows of equal length. */
function medianRow(rows: Float32Array[]): Float32Array {
  const n = rows.length;
  const width = rows[0]!.length;
  const median = new Float32Array(width);
  const column = new Float64Array(n);
  for (let j = 0; j < width; j++) {
    for (let i = 0; i < n; i++) column[i] = rows[i]![j]!;
    column.sort();
    median[j] = n % 2 ? column[(n - 1) / 2]! : (column[n / 2 - 1]! + column[n / 2]!) / 2;
  }
  return median;
}
