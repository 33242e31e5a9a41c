// `edgetune quantize`: a float ONNX model (with its manifest) to a static int8 one, calibrated on a folder
// of on-site photos through the same preprocessing as inference; the manifest is written beside it.

import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isImageFile } from '../core/image-files.js';
import { writeDurably } from '../core/durable.js';
import { DatasetError, EdgetuneError, ModelError } from '../core/errors.js';
import { preprocessFile } from '../runtime/image/preprocess.js';
import { type ModelManifest, parseManifest } from '../runtime/models/manifest.js';
import { type ResolveOptions, resolveModel } from '../runtime/models/resolve.js';
import { sha256Hex } from '../core/hash.js';
import { seededRandom, shuffle } from '../core/random.js';
import { type LayerReport, PTQ_DEFAULTS, type PtqOptions, quantizeStatic } from './ptq.js';

export interface QuantizedModel {
  path: string;
  manifestPath: string;
  manifest: ModelManifest;
  calibrationImages: number;
  skippedImages: { file: string; error: string }[];
  layers: LayerReport[];
  outputCosine: number;
  quantizedConvs: number;
  seconds: number;
}

/** Image files in a folder and its sub-folders (class folders work as they are). */
export function calibrationFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    throw new DatasetError('DATASET_UNREADABLE', `${dir}: cannot read calibration folder: ${(err as Error).message}`);
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return calibrationFiles(path);
    return isImageFile(name) ? [path] : [];
  });
}

export async function quantizeModelFile(
  ref: string,
  calibrateDir: string,
  out: string,
  options: PtqOptions & { images?: number; seed?: number; resolve?: ResolveOptions } = {},
): Promise<QuantizedModel> {
  const started = performance.now();
  const source = await resolveModel(ref, options.resolve);
  if (source.manifest.format !== 'onnx') {
    throw new ModelError(
      'QUANTIZE_NOT_ONNX',
      `${source.path}: quantize takes a float ONNX model; import a TFLite model first (edgetune model import --float)`,
    );
  }
  const files = calibrationFiles(calibrateDir);
  if (files.length === 0) throw new DatasetError('DATASET_EMPTY', `${calibrateDir}: no images to calibrate with`);
  shuffle(files, seededRandom(options.seed ?? 42));
  const chosen = files.slice(0, options.images ?? 100);
  const skippedImages: { file: string; error: string }[] = [];
  const inputs: Uint8Array[] = [];
  for (const file of chosen) {
    try {
      inputs.push((await preprocessFile(file, source.manifest.input, { resize: source.manifest.resize })) as Uint8Array);
    } catch (err) {
      if (!(err instanceof EdgetuneError)) throw err;
      skippedImages.push({ file, error: err.message });
    }
  }
  const result = await quantizeStatic(source.bytes, inputs, source.path, options);
  const manifest = parseManifest(
    {
      ...source.manifest,
      id: `${source.manifest.id.replace(/-float$/, '')}-ptq`,
      file: basename(out),
      sha256: sha256Hex(result.bytes),
      bytes: result.bytes.length,
      description: `${source.manifest.description ?? source.manifest.id}; int8 post-training quantization by edgetune (${options.calibrator ?? PTQ_DEFAULTS.calibrator}${(options.biasCorrection ?? PTQ_DEFAULTS.biasCorrection) ? ', bias correction' : ''}, ${inputs.length} images from ${calibrateDir})`,
    },
    `manifest for ${out}`,
  );
  writeDurably(out, result.bytes);
  const manifestPath = `${out}.json`;
  writeDurably(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
  return {
    path: out,
    manifestPath,
    manifest,
    calibrationImages: inputs.length,
    skippedImages,
    layers: result.layers,
    outputCosine: result.outputCosine,
    quantizedConvs: result.quantizedConvs,
    seconds: (performance.now() - started) / 1000,
  };
}
