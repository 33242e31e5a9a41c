// `edgetune embed`: images -> embeddings, into the cache and optionally into a matrix file for scripts
// and benchmarks (raw float32 [n, dim] plus a JSON sidecar naming rows, files and classes).

import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { readFolderDataset } from '../../runtime/dataset/folder.js';
import { type BackboneFlags, addBackboneOptions, embedWithProgress, openBackbone } from '../backbone-flags.js';
import { UsageError, formatTable, printJson } from '../output.js';

interface EmbedFlags extends BackboneFlags {
  data?: string;
  out?: string;
  output?: string;
}

export function registerEmbed(program: Command): void {
  const command = program
    .command('embed')
    .description('compute backbone embeddings of images (cached by image content), optionally to a file')
    .argument('[images...]', 'image files')
    .option('--data <dir>', 'a folder with one sub-folder of photos per class')
    .option('-o, --out <file.f32>', 'write a float32 matrix [n, dim] and <file>.json (rows, files, labels)')
    .option('--output <tensor>', 'read this tensor of the model instead of its embedding output')
    .option('--json', 'print JSON with every vector');
  addBackboneOptions(command)
    .addHelpText(
      'after',
      `
Examples:
  edgetune embed ../shared/images/cat.bmp
  edgetune embed --data ../shared/datasets/flowers128 --out flowers.f32`,
    )
    .action(async (images: string[], flags: EmbedFlags) => {
      const dataset = flags.data ? readFolderDataset(flags.data) : undefined;
      const paths = [...images, ...(dataset?.items.map((i) => i.path) ?? [])];
      if (paths.length === 0) throw new UsageError('embed needs image files or --data DIR');
      const opened = await openBackbone(flags, flags.output);
      try {
        const outcomes = await embedWithProgress(paths, opened, flags);
        const ok = outcomes.filter((o) => o.embedding);
        const dim = opened.backbone.dim;
        if (flags.out) {
          const matrix = new Float32Array(ok.length * dim);
          ok.forEach((o, i) => matrix.set(o.embedding!, i * dim));
          await writeFile(flags.out, new Uint8Array(matrix.buffer));
          const labelOf = new Map(dataset?.items.map((i) => [i.path, i.label]));
          await writeFile(
            `${flags.out}.json`,
            JSON.stringify({
              backbone: opened.model.manifest.id,
              dim,
              classes: dataset?.classes ?? [],
              files: ok.map((o) => o.path),
              labels: ok.map((o) => labelOf.get(o.path) ?? -1),
            }),
          );
        }
        if (flags.json) {
          printJson(
            {
              backbone: opened.model.manifest.id,
              dim,
              results: outcomes.map((o) =>
                o.embedding
                  ? { image: o.path, sha256: o.sha256, cached: o.cached, embedding: Array.from(o.embedding) }
                  : { image: o.path, error: o.error?.message },
              ),
            },
            { exact: true },
          );
        } else {
          const rows = outcomes.map((o) => [
            o.path,
            o.embedding ? norm(o.embedding) : 0,
            o.embedding ? (o.cached ? 'cached' : 'computed') : `error: ${o.error?.message}`,
          ]);
          if (paths.length <= 50) process.stdout.write(`${formatTable(['image', 'L2 norm', 'status'], rows)}\n`);
          process.stdout.write(
            `${ok.length}/${paths.length} images embedded with ${opened.model.manifest.id} (${dim}-d)${flags.out ? ` -> ${flags.out}` : ''}\n`,
          );
        }
        if (ok.length < paths.length) process.exitCode = 1;
      } finally {
        await opened.close();
      }
    });
}

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}
