// On-device training: retrain the head from the labelled samples in the store (warm start from the
// current head), judge it on the stable holdout split, and keep it only if it is not worse. Every kept
// head is a new version in the store; older versions stay for rollback.

import { HeadError } from '../core/errors.js';
import { type Head, type HeadKind, decodeHead, encodeHead, trainHead } from '../runtime/head/index.js';
import type { SampleStore } from '../runtime/samples/store.js';
import { type ClassificationReport, classificationReport } from '../runtime/eval/metrics.js';

export interface TrainOutcome {
  kept: boolean;
  version: number | null;
  accuracy: number | null;
  previousAccuracy: number | null;
  samples: number;
  holdout: number;
  trainMs: number;
  reason?: string;
}

export interface TrainerOptions {
  kind: HeadKind;
  backboneId: string;
  dim: number;
  /** Keep a new head when accuracy >= current - tolerance. */
  tolerance: number;
}

/** Loads the current head version, falling back to older versions if one does not decode. */
export function loadCurrentHead(store: SampleStore, expect: { backboneId: string; dim: number }): Head | undefined {
  const current = store.currentHeadVersion();
  if (current === null) return undefined;
  const versions = store
    .headVersions()
    .map((v) => v.version)
    .filter((v) => v <= current)
    .reverse();
  for (const version of versions) {
    try {
      const head = decodeHead(store.headFile(version)!, { where: `head version ${version}`, ...expect });
      if (version !== current) store.setCurrentHead(version);
      return head;
    } catch (err) {
      if (!(err instanceof HeadError)) throw err;
    }
  }
  return undefined;
}

export function trainFromStore(
  store: SampleStore,
  current: Head | undefined,
  options: TrainerOptions,
): { outcome: TrainOutcome; head?: Head } {
  const train = store.labelledSet(options.backboneId, 'train');
  const holdout = store.labelledSet(options.backboneId, 'holdout');
  const labels = [...new Set([...train.labels, ...(current?.labels ?? [])])].filter((l) => train.labels.includes(l)).sort();
  const base = { samples: train.ids.length, holdout: holdout.ids.length, previousAccuracy: current?.meta.metrics.holdoutAccuracy ?? null };
  if (labels.length < 2) {
    return {
      outcome: {
        ...base,
        kept: false,
        version: null,
        accuracy: null,
        trainMs: 0,
        reason: `need labelled samples of at least 2 classes, have ${labels.length}`,
      },
    };
  }
  const y = Int32Array.from(train.labels, (l) => labels.indexOf(l));
  const result = trainHead(
    options.kind,
    train.embeddings,
    y,
    { backboneId: options.backboneId, dim: options.dim, labels },
    {
      ...(current && current.kind === options.kind ? { warmStart: current } : {}),
    },
  );
  // Holdout samples of classes the head does not know count as errors.
  const accuracy = evaluateOn(result.head, holdout.embeddings, holdout.labels, options.dim);
  const previous = current ? evaluateOn(current, holdout.embeddings, holdout.labels, options.dim) : null;
  const newLabels = labels.some((l) => !current?.labels.includes(l));
  const worse = accuracy !== null && previous !== null && !newLabels && accuracy < previous - options.tolerance;
  if (worse) {
    return {
      outcome: {
        ...base,
        previousAccuracy: previous,
        kept: false,
        version: null,
        accuracy,
        trainMs: result.trainMs,
        reason: `holdout accuracy ${accuracy.toFixed(3)} is below the current head's ${previous.toFixed(3)}`,
      },
    };
  }
  const parent = store.currentHeadVersion();
  const metrics: Record<string, number> = accuracy === null ? {} : { holdoutAccuracy: accuracy };
  const draft = result.head.withMeta({ parent, metrics });
  const version = store.saveHead((v) => encodeHead(draft.withMeta({ version: v })), { parent, accuracy, metrics });
  const head = draft.withMeta({ version });
  return { outcome: { ...base, previousAccuracy: previous, kept: true, version, accuracy, trainMs: result.trainMs }, head };
}

/** A head's accuracy on the store's holdout samples (null when there are none). */
export interface HeadComparison {
  before: number | null;
  after: number | null;
  samples: number;
  /** Holdout samples the old head got right and the new one wrong, and the other way round. */
  lost: number;
  gained: number;
}

/** Both heads on the same holdout, sample by sample: the discordant pairs say whether a drop is real. */
export function compareOnHoldout(
  store: SampleStore,
  before: Head | undefined,
  after: Head,
  expect: { backboneId: string; dim: number },
): HeadComparison {
  const holdout = store.labelledSet(expect.backboneId, 'holdout');
  const n = holdout.labels.length;
  const right = (head: Head | undefined) =>
    holdout.labels.map(
      (label, i) =>
        head !== undefined &&
        head.labels[head.predictIndices(holdout.embeddings.subarray(i * expect.dim, (i + 1) * expect.dim))[0]!] === label,
    );
  const old = right(before);
  const now = right(after);
  const share = (xs: boolean[]) => (n === 0 ? null : xs.filter(Boolean).length / n);
  return {
    before: before ? share(old) : null,
    after: share(now),
    samples: n,
    lost: old.filter((r, i) => r && !now[i]).length,
    gained: now.filter((r, i) => r && !old[i]).length,
  };
}

function evaluateOn(head: Head, embeddings: Float32Array, labels: string[], dim: number): number | null {
  if (labels.length === 0) return null;
  let correct = 0;
  labels.forEach((label, i) => {
    const p = head.predictIndices(embeddings.subarray(i * dim, (i + 1) * dim))[0]!;
    if (head.labels[p] === label) correct++;
  });
  return correct / labels.length;
}

/** Per-class holdout recall and the confusion matrix of a head (classes: the head's, then holdout
 * classes it does not know, which it can only get wrong). Null without holdout samples. */
export function holdoutReport(
  store: SampleStore,
  head: Head,
  expect: { backboneId: string; dim: number },
): Pick<ClassificationReport, 'classes' | 'perClass' | 'confusion' | 'total' | 'accuracy'> | null {
  const holdout = store.labelledSet(expect.backboneId, 'holdout');
  if (holdout.labels.length === 0) return null;
  const classes = [...head.labels, ...[...new Set(holdout.labels)].filter((l) => !head.labels.includes(l)).sort()];
  const truth = holdout.labels.map((l) => classes.indexOf(l));
  const predicted = holdout.labels.map(
    (_, i) => head.predictIndices(holdout.embeddings.subarray(i * expect.dim, (i + 1) * expect.dim))[0]!,
  );
  const { perClass, confusion, total, accuracy } = classificationReport(truth, predicted, classes);
  return { classes, perClass, confusion, total, accuracy };
}
