// `edgetune classify`: run an ImageNet classifier on photos and print its top labels.

import type { Command } from 'commander';
import { loadLabels } from '../../runtime/models/resolve.js';
import { type BackboneFlags, addBackboneOptions, embedWithProgress, openBackbone } from '../backbone-flags.js';
import { positiveInt } from '../number-options.js';
import { UsageError, formatTable, printJson } from '../output.js';

interface ClassifyFlags extends BackboneFlags {
  top: number;
}

export function registerClassify(program: Command): void {
  const command = program
    .command('classify')
    .description('classify photos with an ImageNet classifier model (top-5 labels with scores)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, TIFF, BMP)')
    .option('--top <k>', 'labels to show per image', positiveInt('--top'), 5)
    .option('--json', 'print JSON');
  addBackboneOptions(command, 'classifier: catalog id or model file (required), e.g. mobilenet_v2_1.0_224_quant')
    .addHelpText(
      'after',
      `
Example:
  edgetune classify --model ../shared/models/mobilenet_v2_1.0_224_quant.tflite ../shared/images/cat.bmp`,
    )
    .action(async (images: string[], flags: ClassifyFlags) => {
      if (!flags.model) throw new UsageError('classify needs --model (a classifier such as mobilenet_v2_1.0_224_quant)');
      const opened = await openBackbone({ ...flags, cache: false });
      try {
        const { manifest } = opened.model;
        if (manifest.output.kind === 'embedding') {
          throw new UsageError(`model "${manifest.id}" gives embeddings, not class scores: use "edgetune embed" or train a head`);
        }
        const labels = await loadLabels(opened.model, {
          ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
          download: flags.download,
        });
        const outcomes = await embedWithProgress(images, opened, flags, 'classifying');
        const results = outcomes.map((o) => {
          if (!o.embedding) return { image: o.path, error: o.error?.message ?? 'failed' };
          const scores = manifest.output.kind === 'logits' ? softmax(o.embedding) : o.embedding;
          const top = topK(scores, flags.top).map((i) => ({
            label: shortLabel(labels[i]!),
            index: i,
            score: scores[i]!,
          }));
          return { image: o.path, top };
        });
        if (flags.json) printJson({ model: manifest.id, results });
        else {
          for (const r of results) {
            process.stdout.write(`\n${r.image}\n`);
            if ('error' in r) process.stdout.write(`  error: ${r.error}\n`);
            else
              process.stdout.write(
                `${formatTable(
                  ['label', 'score'],
                  r.top.map((t) => [t.label, t.score]),
                )}\n`,
              );
          }
        }
        if (results.some((r) => 'error' in r)) process.exitCode = 1;
      } finally {
        await opened.close();
      }
    });
}

/** "hotdog, hot dog, red hot" -> "hotdog": the first name is the one people say. */
function shortLabel(line: string): string {
  return line.split(',')[0]!.trim();
}

export function topK(scores: Float32Array, k: number): number[] {
  return Array.from(scores.keys())
    .sort((a, b) => scores[b]! - scores[a]!)
    .slice(0, k);
}

function softmax(logits: Float32Array): Float32Array {
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((x) => x / sum);
}
