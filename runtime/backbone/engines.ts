// Engine registry: the backbone asks for an engine by name and gets its factory. Imports are lazy so a
// TFLite device never loads onnxruntime (and its memory) and the other way round.

import { ModelError } from '../../core/errors.js';
import type { EngineFactory, EngineName } from './engine.js';

const ENGINES: Record<EngineName, () => Promise<EngineFactory>> = {
  tflite: async () => (await import('./tflite-engine.js')).createTfliteSession,
  onnx: async () => (await import('./onnx-engine.js')).createOnnxSession,
};

export const ENGINE_NAMES = Object.keys(ENGINES) as EngineName[];

/**
 * Work an engine does once per process rather than once per worker. The TFLite engine compiles its
 * 3.7 MB WASM module here: worker threads given the same WebAssembly.Module share its machine code,
 * instead of each compiling (and tiering up) its own copy.
 */
export async function prepareEngine(name: EngineName, threads: number): Promise<unknown> {
  // One thread per session runs the SIMD build; the threaded build loads its own.
  if (name === 'tflite' && threads === 1) return (await import('./tflite-engine.js')).compileTfliteWasm();
  return undefined;
}

export function loadEngine(name: EngineName): Promise<EngineFactory> {
  const load = ENGINES[name];
  if (!load) throw new ModelError('ENGINE_UNKNOWN', `unknown engine "${name}": use one of ${ENGINE_NAMES.join(', ')}`);
  return load();
}
