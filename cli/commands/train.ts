// `edgetune train`: a folder of sorted photos -> a head file.

import type { Command } from 'commander';
import { readFolderDataset, stratifiedSplit } from '../../runtime/dataset/folder.js';
import { classificationReport } from '../../runtime/eval/metrics.js';
import { saveHead, trainHead } from '../../runtime/head/index.js';
import type { SoftmaxReport } from '../../runtime/head/softmax.js';
import { type BackboneFlags, addBackboneOptions, embedWithProgress, openBackbone } from '../backbone-flags.js';
import { type HeadFlags, addHeadOptions, backboneMeta, pick, toMatrix, trainOptions } from '../head-flags.js';
import { percent, printJson } from '../output.js';
import { DatasetError } from '../../core/errors.js';

interface TrainFlags extends BackboneFlags, HeadFlags {
  data: string;
  out: string;
  int8?: boolean;
  validate: boolean;
}

export function registerTrain(program: Command): void {
  const command = program
    .command('train')
    .description('train a head on a folder of photos, one sub-folder per class')
    .requiredOption('--data <dir>', 'folder with one sub-folder of photos per class (the folder name is the label)')
    .option('-o, --out <file>', 'head file to write', 'edgetune.head')
    .option('--int8', 'store weights as int8 per row (4x smaller, for the wire)')
    .option('--no-validate', 'train on everything without reporting accuracy on a held-out 20 %')
    .option('--json', 'print JSON');
  addHeadOptions(command);
  addBackboneOptions(command)
    .addHelpText(
      'after',
      `
The head is trained on all photos. Unless --no-validate, a second head is first trained on a seeded
80 % to report accuracy on the other 20 % (the number you can expect on new photos).

Example:
  edgetune train --data ../shared/datasets/flowers128 -o flowers.head`,
    )
    .action(async (flags: TrainFlags) => {
      const dataset = readFolderDataset(flags.data);
      if (dataset.classes.length < 2 && flags.head === 'softmax') {
        throw new DatasetError(
          'DATASET_TOO_FEW_CLASSES',
          `${flags.data}: a softmax head needs at least 2 class folders, found ${dataset.classes.length}`,
        );
      }
      const opened = await openBackbone(flags);
      try {
        const outcomes = await embedWithProgress(
          dataset.items.map((i) => i.path),
          opened,
          flags,
        );
        const dim = opened.backbone.dim;
        const { x, y, kept } = toMatrix(dataset.items, outcomes, dim);
        const meta = backboneMeta(opened, dataset.classes);
        let validation: { accuracy: number; test: number } | undefined;
        if (flags.validate) {
          const split = stratifiedSplit(y, dataset.classes.length, 0.2, flags.seed);
          const train = pick(x, y, split.train, dim);
          const test = pick(x, y, split.test, dim);
          const { head } = trainHead(flags.head, train.x, train.y, meta, trainOptions(flags));
          const report = classificationReport(test.y, head.predictIndices(test.x), dataset.classes);
          validation = { accuracy: report.accuracy, test: split.test.length };
        }
        const { head, trainMs, report } = trainHead(flags.head, x, y, meta, trainOptions(flags));
        const final = head.withMeta({
          metrics: validation ? { validationAccuracy: validation.accuracy } : {},
        });
        saveHead(flags.out, final, flags.int8 ? 'int8' : 'float32');
        const summary = {
          head: flags.out,
          kind: flags.head,
          backbone: meta.backboneId,
          labels: dataset.classes,
          counts: final.meta.counts,
          samples: kept.length,
          failed: outcomes.length - kept.length,
          trainMs: Math.round(trainMs),
          validationAccuracy: validation?.accuracy ?? null,
          openSet: final.meta.openSet ?? null,
          regularisation: report ? regularisation(report) : null,
        };
        if (flags.json) printJson(summary);
        else {
          process.stdout.write(
            `wrote ${flags.out}: ${flags.head} head on ${meta.backboneId}, ${kept.length} photos, ${dataset.classes.length} classes (${dataset.classes
              .map((c, i) => `${c} ${final.meta.counts[i]}`)
              .join(', ')}), trained in ${summary.trainMs} ms\n`,
          );
          if (validation)
            process.stdout.write(`accuracy on a held-out 20 % (${validation.test} photos): ${percent(validation.accuracy)}\n`);
          if (summary.regularisation) process.stdout.write(`${describeRegularisation(summary.regularisation)}\n`);
          const openSet = final.meta.openSet;
          process.stdout.write(
            openSet
              ? `unknown: above distance ${openSet.threshold.toFixed(3)} to every class mean (${percent(openSet.unknownRate)} of ${openSet.samples} known photos, left out one at a time)\n`
              : 'unknown: too few photos to calibrate; this head never answers unknown by itself\n',
          );
        }
        if (summary.failed > 0) process.stderr.write(`${summary.failed} photos could not be read and were left out\n`);
      } finally {
        await opened.close();
      }
    });
}

/** Four significant digits: the strengths of a path are not round numbers. */
const round = (x: number) => Number(x.toPrecision(4));

type ChosenBy = 'cross-validation' | 'cross-validation on a sample' | 'holdout along a path' | 'given or default';

/**
 * The softmax head's L2: chosen by cross-validation on the photos (and the strengths averaged), on a sample
 * of them (large sets without a holdout), by the holdout along the mini-batch trainer's path, or given.
 */
function regularisation(report: SoftmaxReport): { l2: number; averaged: number[]; chosenBy: ChosenBy; path?: [number, number] } {
  const l2 = round(report.l2);
  if (report.l2Path) {
    return { l2, averaged: [l2], chosenBy: 'holdout along a path', path: [round(report.l2Path.strongest), round(report.l2Path.weakest)] };
  }
  if (!report.tuning) return { l2, averaged: [l2], chosenBy: 'given or default' };
  if (report.solver === 'sgd') return { l2, averaged: [l2], chosenBy: 'cross-validation on a sample' };
  return { l2, averaged: report.tuning.averaged.map((g) => g.l2), chosenBy: 'cross-validation' };
}

function describeRegularisation(r: ReturnType<typeof regularisation>): string {
  if (r.chosenBy === 'given or default') return `regularisation: L2 ${r.l2}`;
  if (r.chosenBy === 'holdout along a path') {
    return `regularisation: L2 ${r.l2} chosen by the holdout along a path from ${r.path![0]} to ${r.path![1]} over the epochs`;
  }
  if (r.chosenBy === 'cross-validation on a sample')
    return `regularisation: L2 ${r.l2} chosen by cross-validation on a sample of the photos`;
  const others = r.averaged.filter((l2) => l2 !== r.l2);
  return `regularisation: L2 ${r.l2} chosen by cross-validation on the photos${others.length > 0 ? `, averaged with ${others.join(', ')} (as good on the folds)` : ''}`;
}
