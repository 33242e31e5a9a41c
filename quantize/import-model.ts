// `edgetune model import`: a TFLite model (catalog id or file) to an ONNX file with its manifest beside it.

import { copyFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeDurably } from '../core/durable.js';
import type { ModelManifest } from '../runtime/models/manifest.js';
import { type ResolveOptions, resolveModel } from '../runtime/models/resolve.js';
import { ModelError } from '../core/errors.js';
import { type ImportOptions, importTflite, importedManifest } from '../runtime/models/tflite-import.js';

export interface ImportedModel {
  path: string;
  manifestPath: string;
  manifest: ModelManifest;
  ops: Record<string, number>;
  outputTensor: string;
  importMs: number;
}

export async function importModelFile(
  ref: string,
  out: string,
  options: ImportOptions & { resolve?: ResolveOptions } = {},
): Promise<ImportedModel> {
  const source = await resolveModel(ref, options.resolve);
  if (source.manifest.format !== 'tflite') {
    throw new ModelError(
      'IMPORT_NOT_TFLITE',
      `${source.path}: model "${source.manifest.id}" is ${source.manifest.format}; only TFLite models are imported`,
    );
  }
  const started = performance.now();
  const result = importTflite(source.bytes, source.path, options);
  const importMs = performance.now() - started;
  const labels = source.manifest.labels;
  const labelsBeside = labels !== undefined && existsSync(join(dirname(source.path), labels));
  const manifest = importedManifest(source.manifest, result, { ...options, file: basename(out), keepLabels: labelsBeside });
  writeDurably(out, result.bytes);
  const manifestPath = `${out}.json`;
  writeDurably(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  if (manifest.labels && !existsSync(join(dirname(out), manifest.labels)))
    copyFileSync(join(dirname(source.path), manifest.labels), join(dirname(out), manifest.labels));
  return { path: out, manifestPath, manifest, ops: result.ops, outputTensor: result.outputTensor, importMs };
}
