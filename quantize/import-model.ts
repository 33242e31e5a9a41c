// `edgetune model import`: a TFLite model (catalog id or file) to an ONNX file with its manifest beside it.

import { copyFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeDurably } from '../runtime/durable.js';
import { type ModelManifest, parseManifest } from '../runtime/models/manifest.js';
import { type ResolveOptions, resolveModel, sha256Hex } from '../runtime/models/resolve.js';
import { ModelError } from '../runtime/errors.js';
import { type ImportOptions, importTflite } from './tflite-import.js';

export interface ImportedModel {
  path: string;
  manifestPath: string;
  manifest: ModelManifest;
  ops: Record<string, number>;
  outputTensor: string;
  importMs: number;
}

export async function importModelFile(ref: string, out: string, options: ImportOptions & { resolve?: ResolveOptions } = {}): Promise<ImportedModel> {
  const source = await resolveModel(ref, options.resolve);
  if (source.manifest.format !== 'tflite') {
    throw new ModelError('IMPORT_NOT_TFLITE', `${source.path}: model "${source.manifest.id}" is ${source.manifest.format}; only TFLite models are imported`);
  }
  const started = performance.now();
  const result = importTflite(source.bytes, source.path, options);
  const importMs = performance.now() - started;
  const cut = options.output !== undefined && result.outputTensor !== source.manifest.output.name;
  // A plain import computes what the TFLite model computes, so it keeps the model's id and heads
  // trained on one run on the other; a cut or dequantized model is a different backbone.
  const suffix = `${cut ? `-cut-${result.outputTensor.replace(/[^A-Za-z0-9._-]/g, '_')}` : ''}${options.float ? '-float' : ''}`;
  const { bytes: _bytes, labels, ...rest } = source.manifest;
  const copyLabels = !cut && labels !== undefined && existsSync(join(dirname(source.path), labels));
  const manifest = parseManifest(
    {
      ...rest,
      id: `${source.manifest.id}${suffix}`,
      format: 'onnx',
      file: basename(out),
      sha256: sha256Hex(result.bytes),
      bytes: result.bytes.length,
      output: { name: result.outputName, kind: cut ? 'embedding' : source.manifest.output.kind, dim: result.outputDim },
      ...(copyLabels ? { labels } : {}),
      description: `${source.manifest.description ?? source.manifest.id}; imported to ONNX by edgetune${cut ? `, cut at ${result.outputTensor}` : ''}${options.float ? ', dequantized to float32' : ''}`,
    },
    `manifest for ${out}`,
  );
  writeDurably(out, result.bytes);
  const manifestPath = `${out}.json`;
  writeDurably(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  if (copyLabels && !existsSync(join(dirname(out), labels!))) copyFileSync(join(dirname(source.path), labels!), join(dirname(out), labels!));
  return { path: out, manifestPath, manifest, ops: result.ops, outputTensor: result.outputTensor, importMs };
}
