// The options every embedding verb shares (which model, which engine, how many threads, the cache), and
// the one way the CLI opens a backbone from them.

import { Option, type Command } from 'commander';
import { Backbone } from '../runtime/backbone/backbone.js';
import type { EngineName } from '../runtime/backbone/engine.js';
import { EmbeddingCache } from '../runtime/embeddings/cache.js';
import { type EmbedOutcome, embedFiles } from '../runtime/embeddings/embed-files.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { type ResolvedModel, defaultCacheDir, resolveModel } from '../runtime/models/resolve.js';
import { positiveInt } from './number-options.js';
import { printable } from './output.js';
import { startProgress } from './progress.js';

export interface BackboneFlags {
  model?: string;
  engine?: EngineName;
  workers?: number;
  threads?: number;
  batch?: number;
  cacheDir?: string;
  cache: boolean;
  download: boolean;
  maxPixels?: number;
  json?: boolean;
}

export function addBackboneOptions(
  command: Command,
  modelHelp = `backbone: catalog id or path to a model file (default ${DEFAULT_BACKBONE_ID})`,
): Command {
  return command
    .option('-m, --model <ref>', modelHelp)
    .addOption(
      new Option(
        '--engine <name>',
        'inference engine (default: onnx, TFLite models imported to ONNX and cached; tflite pins the WASM engine)',
      ).choices(['tflite', 'onnx']),
    )
    .option('--workers <n>', 'inference worker threads (default: 2 for TFLite, 1 for ONNX)', positiveInt('--workers'))
    .option('--threads <n>', 'threads per worker (default: 1 for TFLite, all cores for ONNX)', positiveInt('--threads'))
    .option('--batch <n>', 'images per worker batch (default 8)', positiveInt('--batch'))
    .option('--cache-dir <dir>', 'cache folder for models and embeddings (default $XDG_CACHE_HOME/edgetune)')
    .option('--no-cache', 'do not read or write the embedding cache')
    .option('--no-download', 'never download a model; fail if it is not on disk')
    .option('--max-pixels <n>', 'refuse images larger than this many pixels (default 64000000)', positiveInt('--max-pixels'));
}

export interface OpenedBackbone {
  model: ResolvedModel;
  backbone: Backbone;
  cache: EmbeddingCache | undefined;
  close(): Promise<void>;
}

export async function openBackbone(flags: BackboneFlags, outputName?: string): Promise<OpenedBackbone> {
  const cacheDir = flags.cacheDir ?? defaultCacheDir();
  const model = await resolveModel(flags.model ?? DEFAULT_BACKBONE_ID, {
    cacheDir,
    download: flags.download,
  });
  const backbone = await Backbone.open(model, {
    ...(flags.engine ? { engine: flags.engine } : {}),
    ...(flags.workers ? { workers: flags.workers } : {}),
    ...(flags.threads ? { threads: flags.threads } : {}),
    ...(flags.batch ? { batchSize: flags.batch } : {}),
    ...(outputName ? { outputName } : {}),
    cacheDir,
  });
  let cache: EmbeddingCache | undefined;
  try {
    // The key names the exact model bytes and output tensor, so a changed model never reuses stale vectors.
    const key = [model.manifest.id, model.manifest.sha256.slice(0, 12), outputName].filter(Boolean).join('-');
    cache = flags.cache ? EmbeddingCache.open(cacheDir, key, backbone.dim) : undefined;
  } catch (err) {
    await backbone.close();
    throw err;
  }
  return {
    model,
    backbone,
    cache,
    async close() {
      cache?.close();
      await backbone.close();
    },
  };
}

/** Embeds files with a progress display; failed files are listed on stderr and left out by the caller. */
export async function embedWithProgress(
  paths: string[],
  opened: OpenedBackbone,
  flags: BackboneFlags,
  label = 'embedding',
): Promise<EmbedOutcome[]> {
  const progress = startProgress(label, paths.length);
  try {
    return await embedFiles(paths, opened.backbone, {
      ...(opened.cache ? { cache: opened.cache } : {}),
      ...(flags.maxPixels ? { maxPixels: flags.maxPixels } : {}),
      onProgress: (p, outcome) => {
        if (outcome.error) process.stderr.write(`\nskipped ${printable(outcome.error.message)}\n`);
        progress.update(p.done, `${p.cached} cached${p.failed ? `, ${p.failed} failed` : ''}`);
      },
    });
  } finally {
    progress.stop();
  }
}
