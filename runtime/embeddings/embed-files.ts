// Many image files -> embeddings, with the cache in front of the backbone. Decoding and hashing overlap
// with inference; a file that cannot be read is reported and the batch goes on.

import { readFileSync } from 'node:fs';
import type { Backbone } from '../backbone/backbone.js';
import { EdgetuneError, ImageError, errorMessage } from '../../core/errors.js';
import { preprocessBytes } from '../image/preprocess.js';
import { sha256Hex } from '../../core/hash.js';
import type { EmbeddingCache } from './cache.js';

export interface EmbedOutcome {
  path: string;
  /** sha256 of the file's bytes. */
  sha256?: string;
  embedding?: Float32Array;
  error?: EdgetuneError;
  cached: boolean;
}

export interface EmbedProgress {
  done: number;
  total: number;
  failed: number;
  cached: number;
}

export interface EmbedFilesOptions {
  cache?: EmbeddingCache;
  maxPixels?: number;
  /** See `PreprocessOptions.fastEnlarge` (default true). */
  fastEnlarge?: boolean;
  /** See `PreprocessOptions.smallJpegDecoder` (default true). */
  smallJpegDecoder?: boolean;
  /**
   * Images being read, decoded or computed at once: the bound on what is held in memory (a decoded
   * 224 x 224 photo is 150 KB). Default: one batch more than the workers hold, so the next batch is
   * decoded while theirs compute.
   */
  inFlight?: number;
  onProgress?: (progress: EmbedProgress, outcome: EmbedOutcome) => void;
}

export async function embedFiles(paths: string[], backbone: Backbone, options: EmbedFilesOptions = {}): Promise<EmbedOutcome[]> {
  const outcomes: EmbedOutcome[] = new Array(paths.length);
  const progress: EmbedProgress = { done: 0, total: paths.length, failed: 0, cached: 0 };
  const { workers, batchSize, batchesPerWorker } = backbone.settings;
  const inFlight = options.inFlight ?? workers * batchSize * (batchesPerWorker + 1);
  let next = 0;

  const embedOne = async (path: string): Promise<EmbedOutcome> => {
    let bytes: Buffer;
    try {
      // Read at once: a photo takes tens of microseconds to read where fs/promises' four thread-pool
      // round trips cost 200 us of CPU, taken from inference on 2 cores (this is the CLI's batch path,
      // not the agent's; the workers go on computing while it reads).
      bytes = readFileSync(path);
    } catch (err) {
      return {
        path,
        cached: false,
        error: new ImageError('IMAGE_UNREADABLE', `${path}: cannot read file: ${errorMessage(err)}`),
      };
    }
    const sha256 = sha256Hex(bytes);
    const hit = options.cache?.get(sha256);
    if (hit) return { path, sha256, embedding: hit, cached: true };
    try {
      const input = await preprocessBytes(bytes, path, backbone.manifest.input, {
        resize: backbone.manifest.resize,
        ...(options.maxPixels ? { maxPixels: options.maxPixels } : {}),
        ...(options.fastEnlarge === false ? { fastEnlarge: false } : {}),
        ...(options.smallJpegDecoder === false ? { smallJpegDecoder: false } : {}),
      });
      const embedding = await backbone.embed(input);
      options.cache?.put(sha256, embedding);
      return { path, sha256, embedding, cached: false };
    } catch (err) {
      if (err instanceof EdgetuneError) return { path, sha256, error: err, cached: false };
      throw err;
    }
  };

  const lane = async (): Promise<void> => {
    while (next < paths.length) {
      const index = next++;
      const outcome = await embedOne(paths[index]!);
      outcomes[index] = outcome;
      progress.done++;
      if (outcome.error) progress.failed++;
      if (outcome.cached) progress.cached++;
      options.onProgress?.({ ...progress }, outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, paths.length) }, lane));
  options.cache?.flush();
  return outcomes;
}
