// Shared by the head benches: the default backbone's embeddings of a class-per-folder data set or of every
// photo under a folder, through the CLI's embedding cache (a second run embeds nothing).

import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { Backbone } from '../runtime/backbone/backbone.js';
import { readFolderDataset } from '../runtime/dataset/folder.js';
import { EmbeddingCache } from '../runtime/embeddings/cache.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { defaultCacheDir, resolveModel } from '../runtime/models/resolve.js';

export interface Embedded {
  backboneId: string;
  dim: number;
  classes: string[];
  /** [n, dim] */
  x: Float32Array;
  y: Int32Array;
}

const PHOTO = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp']);

/** Every photo file under `root`, sorted. */
export function photosUnder(root: string): string[] {
  return readdirSync(root)
    .sort()
    .flatMap((name) => {
      const path = join(root, name);
      if (statSync(path).isDirectory()) return photosUnder(path);
      return PHOTO.has(extname(name).toLowerCase()) ? [path] : [];
    });
}

/** Embeddings of `paths` (label -1) or of a class-per-folder data set. */
export async function embed(source: { dataset: string } | { paths: string[] }): Promise<Embedded> {
  const dataset = 'dataset' in source ? readFolderDataset(source.dataset) : null;
  const paths = dataset ? dataset.items.map((i) => i.path) : (source as { paths: string[] }).paths;
  const model = await resolveModel(DEFAULT_BACKBONE_ID);
  const backbone = await Backbone.open(model);
  const cache = EmbeddingCache.open(defaultCacheDir(), `${model.manifest.id}-${model.manifest.sha256.slice(0, 12)}`, backbone.dim);
  try {
    const outcomes = await embedFiles(paths, backbone, { cache });
    const d = backbone.dim;
    const kept = outcomes.flatMap((o, i) => (o.embedding ? [{ x: o.embedding, y: dataset ? dataset.items[i]!.label : -1 }] : []));
    const x = new Float32Array(kept.length * d);
    kept.forEach((r, i) => x.set(r.x, i * d));
    return { backboneId: model.manifest.id, dim: d, classes: dataset?.classes ?? [], x, y: Int32Array.from(kept, (r) => r.y) };
  } finally {
    cache.close();
    await backbone.close();
  }
}

/** Rows `idx` of [n, dim] x and their labels. */
export function rowsOf(data: { x: Float32Array; y: Int32Array }, idx: number[], dim: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(idx.length * dim);
  idx.forEach((i, r) => x.set(data.x.subarray(i * dim, (i + 1) * dim), r * dim));
  return { x, y: Int32Array.from(idx, (i) => data.y[i]!) };
}
