// Classification metrics from true and predicted class indices: accuracy, per-class recall and precision,
// and the confusion matrix (rows = true class, columns = predicted; an extra last column counts
// "unknown" answers when the head abstains).

export interface ClassificationReport {
  accuracy: number;
  /** Mean of per-class recalls: accuracy that every class counts for equally. */
  balancedAccuracy: number;
  total: number;
  correct: number;
  classes: string[];
  perClass: { label: string; support: number; recall: number; precision: number }[];
  /** [classes][classes + 1]: the last column counts unknown answers. */
  confusion: number[][];
}

/** `predicted[i]` is a class index, or -1 for "unknown". */
export function classificationReport(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: string[]): ClassificationReport {
  const k = classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const p = predicted[i]!;
    confusion[t]![p < 0 ? k : p]!++;
    if (t === p) correct++;
  }
  const perClass = perClassOf(confusion, classes);
  const withSupport = perClass.filter((c) => c.support > 0);
  return {
    accuracy: truth.length > 0 ? correct / truth.length : 0,
    balancedAccuracy: withSupport.length > 0 ? withSupport.reduce((a, c) => a + c.recall, 0) / withSupport.length : 0,
    total: truth.length,
    correct,
    classes,
    perClass,
    confusion,
  };
}

/** Support, recall and precision per class of a confusion matrix ([classes][classes + 1]). */
export function perClassOf(confusion: number[][], classes: string[]): ClassificationReport['perClass'] {
  return classes.map((label, c) => {
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predictedAsC = confusion.reduce((a, row) => a + row[c]!, 0);
    return {
      label,
      support,
      recall: support > 0 ? confusion[c]![c]! / support : 0,
      precision: predictedAsC > 0 ? confusion[c]![c]! / predictedAsC : 0,
    };
  });
}

export function meanAndStd(values: number[]): { mean: number; std: number; min: number; max: number } {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length);
  return { mean, std: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

/** Cosine similarity of two vectors of the same length (0 when either is all zeros). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
