// The console's door for device heads: every head a device sends is checked here before anything is
// stored or merged. A head whose numbers are not finite or not bounded, whose backbone or size is not
// the fleet's, or whose labels a device could never have made is refused with a reason naming the
// device; the caller turns the refusal into a problem row and counts it towards quarantine.

import type { Head } from '../runtime/head/index.js';
import { ConsoleError } from '../core/errors.js';
import { SyncError } from '../runtime/sync/protocol.js';

export interface HeadLimits {
  /** Classes one head may have. */
  maxClasses: number;
  /** Characters in one label (the agent's own limit: devices/sources/source.ts). */
  maxLabelLength: number;
  /** |weight| bound. Trained heads stay far below it (a softmax row folds standardisation in: < 100). */
  maxAbsWeight: number;
  /** |bias| bound: prototype heads mark classes without samples with -1e6. */
  maxAbsBias: number;
  /** Training samples one class may claim. */
  maxCount: number;
  /** |metric| bound (accuracies, versions, sample counts). */
  maxAbsMetric: number;
  /** Bytes of a head message. */
  maxBytes: number;
}

export const HEAD_LIMITS: HeadLimits = {
  maxClasses: 256,
  maxLabelLength: 64,
  maxAbsWeight: 1e4,
  maxAbsBias: 1e6,
  maxCount: 1e6,
  maxAbsMetric: 1e9,
  maxBytes: 1024 * 1024,
};

/** What the fleet runs: a head for anything else is refused. */
export interface FleetShape {
  backboneId: string;
  dim: number;
}

// What the agent accepts as a label (devices/sources/source.ts), and no invisible format characters
// (bidirectional overrides, zero-width joiners) that would make two labels look alike on the page.
const BAD_LABEL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}/\\]|\.\.|^\s|\s$|^\.$/u;

/** Throws a SyncError (code HEAD_REFUSED) naming the device and the first reason found. */
export function checkDeviceHead(head: Head, device: string, fleet: FleetShape | null, limits: HeadLimits = HEAD_LIMITS): void {
  const refuse = (why: string): never => {
    throw new SyncError('HEAD_REFUSED', `head of device ${device} refused: ${why}`);
  };
  const { meta } = head;
  if (fleet && (meta.backboneId !== fleet.backboneId || meta.dim !== fleet.dim))
    refuse(`backbone ${meta.backboneId.slice(0, 100)} (${meta.dim}-d); the fleet runs ${fleet.backboneId} (${fleet.dim}-d)`);
  if (meta.labels.length > limits.maxClasses) refuse(`${meta.labels.length} classes, more than ${limits.maxClasses}`);
  for (const label of meta.labels) {
    if (label.length > limits.maxLabelLength)
      refuse(`label ${JSON.stringify(label.slice(0, 40))}... has ${label.length} characters, more than ${limits.maxLabelLength}`);
    const problem = labelProblem(label);
    if (problem) refuse(`label ${JSON.stringify(label)} ${problem}`);
  }
  meta.counts.forEach((n, c) => {
    if (!(Number.isInteger(n) && n >= 0 && n <= limits.maxCount))
      refuse(`class "${meta.labels[c]}" claims ${n} samples; at most ${limits.maxCount}`);
  });
  for (const [name, value] of Object.entries(meta.metrics)) {
    if (!(Number.isFinite(value) && Math.abs(value) <= limits.maxAbsMetric)) refuse(`metric "${name.slice(0, 40)}" is ${value}`);
  }
  const accuracy = meta.metrics.holdoutAccuracy;
  if (accuracy !== undefined && !(accuracy >= 0 && accuracy <= 1)) refuse(`holdout accuracy ${accuracy} is not in [0, 1]`);
  for (const [name, value, max] of [
    ['power', meta.power, 10],
    ['temperature', meta.temperature, 1000],
  ] as const) {
    if (!(Number.isFinite(value) && value > 0 && value <= max)) refuse(`${name} ${value} is not in (0, ${max}]`);
  }
  if (meta.norms?.some((n) => !(Number.isFinite(n) && n >= 0 && n <= limits.maxAbsWeight)))
    refuse('a class norm is not finite or out of range');
  checkNumbers(head.weights, limits.maxAbsWeight, 'weight', refuse);
  checkNumbers(head.bias, limits.maxAbsBias, 'bias', refuse);
}

function checkNumbers(values: Float32Array, max: number, what: string, refuse: (why: string) => never): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // Written so that NaN fails too: every comparison with NaN is false.
    if (!(v >= -max && v <= max)) refuse(`${what} ${i} is ${v}; every ${what} must be a finite number within ±${max}`);
  }
}

function labelProblem(label: string): string | null {
  if (label.length === 0 || label.length > HEAD_LIMITS.maxLabelLength) return `must have 1-${HEAD_LIMITS.maxLabelLength} characters`;
  return BAD_LABEL.test(label) ? 'has characters a label may not have (control, format or path characters, or spaces at an end)' : null;
}

/** A label the operator names (accepting or refusing a class) follows the devices' rules. */
export function validateFleetLabel(label: string, what: string): string {
  const problem = typeof label === 'string' ? labelProblem(label) : 'must be a string';
  if (problem) throw new ConsoleError('CONSOLE_BAD_LABEL', `${what} ${JSON.stringify(String(label).slice(0, 80))} ${problem}`);
  return label;
}
