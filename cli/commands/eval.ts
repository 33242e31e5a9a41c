// `edgetune eval`: how well a head learns these classes, on photos it did not train on.

import type { Command } from 'commander';
import { type FolderDataset, readFolderDataset, shotSplit, stratifiedSplit } from '../../runtime/dataset/folder.js';
import { type ClassificationReport, classificationReport, meanAndStd } from '../../runtime/eval/metrics.js';
import { trainHead } from '../../runtime/head/index.js';
import { type BackboneFlags, addBackboneOptions, embedWithProgress, openBackbone } from '../backbone-flags.js';
import { positiveInt } from '../number-options.js';
import { type HeadFlags, addHeadOptions, backboneMeta, pick, toMatrix, trainOptions } from '../head-flags.js';
import { UsageError, formatTable, percent, printJson } from '../output.js';

interface EvalFlags extends BackboneFlags, HeadFlags {
  data: string;
  test?: string;
  shots?: number;
  repeats: number;
  split: number;
}

export function registerEval(program: Command): void {
  const command = program
    .command('eval')
    .description('train a head and measure accuracy, per-class recall and the confusion matrix')
    .requiredOption('--data <dir>', 'folder with one sub-folder of photos per class')
    .option('--test <dir>', 'evaluate on this folder (same class names) after training on all of --data')
    .option('--shots <k>', 'few-shot: train on K random photos per class, test on the rest', positiveInt('--shots'))
    .option('--repeats <r>', 'with --shots: repeat with R seeds and report the mean', positiveInt('--repeats'), 1)
    .option('--split <fraction>', 'share held out for testing without --test/--shots', Number.parseFloat, 0.2)
    .option('--json', 'print JSON (top-level "accuracy")');
  addHeadOptions(command);
  addBackboneOptions(command)
    .addHelpText(
      'after',
      `
Without --test or --shots, a seeded stratified split holds out 20 % of every class. Embeddings are
cached by image content, so a second run only trains and tests.

Examples:
  edgetune eval --data ../shared/datasets/flowers128
  edgetune eval --data ../shared/datasets/flowers128 --shots 10 --repeats 10 --json`,
    )
    .action(async (flags: EvalFlags) => {
      if (!(flags.split > 0 && flags.split < 1)) throw new UsageError(`--split must be between 0 and 1, got ${flags.split}`);
      if (flags.test && flags.shots) throw new UsageError('--test and --shots do not go together');
      const data = readFolderDataset(flags.data);
      const testSet: FolderDataset | undefined = flags.test ? readFolderDataset(flags.test, data.classes) : undefined;
      const opened = await openBackbone(flags);
      try {
        const items = [...data.items, ...(testSet?.items ?? [])];
        const outcomes = await embedWithProgress(
          items.map((i) => i.path),
          opened,
          flags,
        );
        const dim = opened.backbone.dim;
        const all = toMatrix(items, outcomes, dim);
        const isTest = new Set(testSet?.items.map((i) => i.path));
        const meta = backboneMeta(opened, data.classes);
        const k = data.classes.length;

        const runs: { train: number[]; test: number[]; seed: number }[] = [];
        if (testSet) {
          const indices = all.kept.map((_, i) => i);
          runs.push({
            train: indices.filter((i) => !isTest.has(all.kept[i]!.path)),
            test: indices.filter((i) => isTest.has(all.kept[i]!.path)),
            seed: flags.seed,
          });
        } else if (flags.shots) {
          for (let r = 0; r < flags.repeats; r++)
            runs.push({
              ...shotSplitNamed(all.y, data.classes, flags.shots, flags.seed + r),
              seed: flags.seed + r,
            });
        } else {
          runs.push({ ...stratifiedSplit(all.y, k, flags.split, flags.seed), seed: flags.seed });
        }

        const reports: ClassificationReport[] = [];
        const trainMs: number[] = [];
        for (const run of runs) {
          const train = pick(all.x, all.y, run.train, dim);
          const test = pick(all.x, all.y, run.test, dim);
          const result = trainHead(flags.head, train.x, train.y, meta, {
            ...trainOptions(flags),
            seed: run.seed,
          });
          trainMs.push(result.trainMs);
          reports.push(classificationReport(test.y, result.head.predictIndices(test.x), data.classes));
        }
        const summary = summarize(reports, data.classes);
        const mode = testSet
          ? `test folder ${flags.test}`
          : flags.shots
            ? `${flags.shots} shots per class x ${runs.length} repeats`
            : `seeded stratified ${Math.round((1 - flags.split) * 100)}/${Math.round(flags.split * 100)} split (seed ${flags.seed})`;
        const result = {
          accuracy: summary.accuracy,
          accuracyStd: summary.accuracyStd,
          balancedAccuracy: summary.balancedAccuracy,
          mode,
          head: flags.head,
          backbone: meta.backboneId,
          classes: data.classes,
          train: runs[0]!.train.length,
          test: runs[0]!.test.length,
          repeats: runs.length,
          runs: reports.map((r) => r.accuracy),
          trainMs: Math.round(trainMs.reduce((a, b) => a + b, 0) / trainMs.length),
          perClass: summary.perClass,
          confusion: summary.confusion,
          failed: outcomes.length - all.kept.length,
        };
        if (flags.json) printJson(result);
        else printReport(result);
      } finally {
        await opened.close();
      }
    });
}

function shotSplitNamed(y: Int32Array, classes: string[], shots: number, seed: number) {
  try {
    return shotSplit(y, classes.length, shots, seed);
  } catch {
    const counts = classes.map((c, i) => `${c} ${y.filter((l) => l === i).length}`).join(', ');
    throw new UsageError(`--shots ${shots} needs more than ${shots} photos in every class (have ${counts})`);
  }
}

/** Mean over runs; per-class recall averaged; confusion matrices summed. */
function summarize(reports: ClassificationReport[], classes: string[]) {
  const acc = meanAndStd(reports.map((r) => r.accuracy));
  const confusion = classes.map((_, t) => classes.map((__, p) => reports.reduce((a, r) => a + r.confusion[t]![p]!, 0)));
  return {
    accuracy: acc.mean,
    accuracyStd: acc.std,
    balancedAccuracy: meanAndStd(reports.map((r) => r.balancedAccuracy)).mean,
    perClass: classes.map((label, c) => ({
      label,
      support: reports[0]!.perClass[c]!.support,
      recall: meanAndStd(reports.map((r) => r.perClass[c]!.recall)).mean,
      precision: meanAndStd(reports.map((r) => r.perClass[c]!.precision)).mean,
    })),
    confusion,
  };
}

function printReport(r: {
  accuracy: number;
  accuracyStd: number;
  mode: string;
  head: string;
  backbone: string;
  classes: string[];
  train: number;
  test: number;
  repeats: number;
  trainMs: number;
  perClass: { label: string; support: number; recall: number; precision: number }[];
  confusion: number[][];
  failed: number;
}): void {
  const out: string[] = [];
  out.push(`${r.head} head on ${r.backbone}; ${r.mode}; ${r.train} train / ${r.test} test photos; trained in ${r.trainMs} ms`);
  out.push(`accuracy: ${percent(r.accuracy)}${r.repeats > 1 ? ` (mean of ${r.repeats}, std ${percent(r.accuracyStd)})` : ''}`);
  out.push('');
  out.push(
    formatTable(
      ['class', 'test photos', 'recall', 'precision'],
      r.perClass.map((c) => [c.label, c.support, percent(c.recall), percent(c.precision)]),
    ),
  );
  out.push('');
  out.push(`confusion matrix (rows: true class, columns: predicted${r.repeats > 1 ? `, summed over ${r.repeats} runs` : ''})`);
  out.push(
    formatTable(
      ['', ...r.classes],
      r.confusion.map((row, i) => [r.classes[i]!, ...row]),
    ),
  );
  if (r.failed > 0) out.push(`\n${r.failed} photos could not be read and were left out`);
  process.stdout.write(`${out.join('\n')}\n`);
}
