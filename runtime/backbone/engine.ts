// The seam between the backbone and the inference engines. An engine session runs synchronously inside
// a worker thread (both engines block while they compute); `runtime/backbone/pool.ts` owns the threads.

import type { ModelManifest } from '../models/manifest.js';

import type { EngineName } from '../../core/platform.js';

export type { EngineName };

export interface EngineOptions {
  /** Intra-op threads for this session. */
  threads: number;
  /** onnxruntime: let idle intra-op threads busy-wait for the next op (see BackboneOptions.spinning). */
  spinning?: boolean;
  /** Output tensor to read; the manifest's output when absent. */
  outputName?: string;
  /** What the engine's `prepare` made once for all workers (the TFLite engine: its compiled WASM). */
  prepared?: unknown;
}

/** A loaded model that turns preprocessed images into float vectors. */
export interface EngineSession {
  /** Length of one output vector. */
  readonly outputDim: number;
  /**
   * Runs `count` images. `input` holds them back to back in the manifest's layout and dtype
   * ([count, H, W, C] or [count, C, H, W]); the result is [count, outputDim], dequantized.
   */
  run(input: Uint8Array | Int8Array | Float32Array, count: number): Float32Array | Promise<Float32Array>;
  close(): void;
}

export type EngineFactory = (modelBytes: Uint8Array, manifest: ModelManifest, options: EngineOptions) => Promise<EngineSession>;
