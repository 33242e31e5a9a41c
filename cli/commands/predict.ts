// `edgetune predict`: photos -> labels with a trained head.

import type { Command } from 'commander';
import { loadHead } from '../../runtime/head/index.js';
import { decodeHead } from '../../runtime/head/head-file.js';
import { readFileSync } from 'node:fs';
import { type BackboneFlags, addBackboneOptions, embedWithProgress, openBackbone } from '../backbone-flags.js';
import { positiveInt } from '../number-options.js';
import { UsageError, formatTable, printJson } from '../output.js';
import { HeadError } from '../../core/errors.js';

interface PredictFlags extends BackboneFlags {
  head: string;
  threshold?: number;
  top: number;
}

export function registerPredict(program: Command): void {
  const command = program
    .command('predict')
    .description('predict labels of photos with a trained head')
    .requiredOption('--head <file>', 'head file from "edgetune train"')
    .argument('<images...>', 'image files')
    .option(
      '--threshold <p>',
      'override the head\'s calibrated unknown: answer "unknown" when the top probability is below this (0..1; 0 never)',
      parseProbability,
    )
    .option('--top <k>', 'labels listed per photo with --json', positiveInt('--top'), 3)
    .option('--json', 'print JSON');
  addBackboneOptions(command, 'backbone (default: the one the head was trained on)')
    .addHelpText(
      'after',
      `
A head answers "unknown" by itself when a photo is farther from every class than the known photos it
was calibrated on (its distance above the head's threshold); --json shows both per photo.

Example:
  edgetune predict --head flowers.head photos/*.jpg`,
    )
    .action(async (images: string[], flags: PredictFlags) => {
      // Peek at the head first: it names its backbone, which is the one to load.
      const peek = decodeHead(readHeadBytes(flags.head), { where: flags.head });
      const opened = await openBackbone({ ...flags, model: flags.model ?? peek.meta.backboneId });
      try {
        const head = loadHead(flags.head, { backboneId: opened.model.manifest.id, dim: opened.backbone.dim });
        const outcomes = await embedWithProgress(images, opened, flags, 'predicting');
        const results = outcomes.map((o) => {
          if (!o.embedding) return { image: o.path, error: o.error?.message ?? 'failed' };
          const p = head.predict(o.embedding, {
            ...(flags.threshold !== undefined ? { threshold: flags.threshold } : {}),
            topK: flags.top,
          });
          return {
            image: o.path,
            label: p.label,
            unknown: p.unknown,
            score: p.score,
            distance: p.distance,
            distanceThreshold: p.distanceThreshold,
            top: p.top,
          };
        });
        if (flags.json) printJson({ head: flags.head, labels: head.labels, results });
        else {
          const rows = results.map((r) =>
            'error' in r ? [r.image, 'error', 0, '', r.error ?? ''] : [r.image, r.label, r.score, r.distance ?? '', unknownNote(r)],
          );
          process.stdout.write(`${formatTable(['image', 'label', 'score', 'distance', 'note'], rows)}\n`);
        }
        if (results.some((r) => 'error' in r)) process.exitCode = 1;
      } finally {
        await opened.close();
      }
    });
}

function unknownNote(r: { unknown: boolean; top: { label: string }[]; distanceThreshold: number | null }): string {
  return r.unknown ? `nearest: ${r.top[0]?.label ?? ''}` : '';
}

function readHeadBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new HeadError('HEAD_UNREADABLE', `${path}: cannot read head file: ${(err as Error).message}`);
  }
}

function parseProbability(value: string): number {
  const p = Number(value);
  if (!(p >= 0 && p <= 1)) throw new UsageError(`--threshold must be between 0 and 1, got "${value}"`);
  return p;
}
