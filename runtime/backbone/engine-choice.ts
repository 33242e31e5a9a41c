// Which engine runs a model. ONNX files run on onnxruntime. A TFLite file runs on onnxruntime too,
// through an ONNX import cached on disk (about 4x faster than the WASM engine on 2 cores, same numbers
// for the int8 models we ship), unless the caller pins the TFLite engine, onnxruntime-node has no build
// for this CPU (32-bit ARM), or the model uses an op the importer does not convert.

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type ImportResult, importTflite, importedManifest } from '../models/tflite-import.js';
import { writeDurably } from '../../core/durable.js';
import { EdgetuneError, ModelError, errorMessage } from '../../core/errors.js';
import { type ResolvedModel, defaultCacheDir } from '../models/resolve.js';
import { sha256Hex } from '../../core/hash.js';
import { onnxRuntimeAvailable } from '../../core/platform.js';
import type { EngineName } from './engine.js';

/** Bump when the importer's output changes, so cached imports are made again. */
const IMPORTER_VERSION = 3;

export interface EngineChoice {
  model: ResolvedModel;
  engine: EngineName;
  /** The output to read when the import did not already cut there. */
  outputName?: string;
  /** Why this engine, for logs and `edgetune device info`. */
  reason: string;
}

export function chooseEngine(
  model: ResolvedModel,
  options: { engine?: EngineName; outputName?: string; cacheDir?: string; ortAvailable?: boolean } = {},
): EngineChoice {
  const keepOutput = options.outputName ? { outputName: options.outputName } : {};
  if (model.manifest.format === 'onnx') {
    if (options.engine === 'tflite') {
      throw new ModelError('ENGINE_MISMATCH', `model "${model.manifest.id}" is onnx; the tflite engine cannot run it`);
    }
    return { model, engine: 'onnx', ...keepOutput, reason: 'an ONNX model' };
  }
  if (options.engine === 'tflite') return { model, engine: 'tflite', ...keepOutput, reason: 'the TFLite engine was asked for' };
  const available = options.ortAvailable ?? onnxRuntimeAvailable();
  if (!available) {
    if (options.engine === 'onnx') {
      throw new ModelError(
        'ENGINE_UNAVAILABLE',
        `onnxruntime-node has no build for ${process.platform}-${process.arch}; use the tflite engine`,
      );
    }
    return { model, engine: 'tflite', ...keepOutput, reason: `onnxruntime has no build for ${process.arch}` };
  }
  try {
    return {
      model: importedModel(model, options.outputName, options.cacheDir ?? defaultCacheDir()),
      engine: 'onnx',
      reason: 'TFLite model imported to ONNX',
    };
  } catch (err) {
    // Asked for ORT: the import's error is the answer. Automatic: the WASM engine still runs the model.
    if (options.engine === 'onnx' || !(err instanceof EdgetuneError)) throw err;
    return { model, engine: 'tflite', ...keepOutput, reason: `the ONNX import failed (${errorMessage(err)})` };
  }
}

/** A cached import whose bytes still match the checksum written beside them; anything else is redone. */
function readCached(path: string, metaPath: string): ImportResult | undefined {
  if (!existsSync(path) || !existsSync(metaPath)) return undefined;
  try {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Omit<ImportResult, 'bytes'>;
    const bytes = new Uint8Array(readFileSync(path));
    return sha256Hex(bytes) === meta.sha256 ? { ...meta, bytes } : undefined;
  } catch {
    return undefined;
  }
}

function importedModel(source: ResolvedModel, output: string | undefined, cacheDir: string): ResolvedModel {
  const cutTag = output ? `-${sha256Hex(new TextEncoder().encode(output)).slice(0, 12)}` : '';
  const path = join(cacheDir, 'imported', `${source.manifest.sha256.slice(0, 24)}${cutTag}-v${IMPORTER_VERSION}.onnx`);
  const metaPath = `${path}.json`;
  let result = readCached(path, metaPath);
  if (!result) {
    result = importTflite(source.bytes, source.path, output ? { output } : {});
    const { bytes, ...meta } = result;
    writeDurably(path, bytes);
    writeDurably(metaPath, new TextEncoder().encode(JSON.stringify(meta)));
  }
  return {
    ...source,
    path,
    bytes: result.bytes,
    manifest: importedManifest(source.manifest, result, { ...(output ? { output } : {}), file: basename(path), keepLabels: true }),
  };
}
