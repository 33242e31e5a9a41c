// ONNX engine: onnxruntime-node with full graph optimisation (int8 QDQ graphs fuse into QLinearConv only at
// level 'all'). Runs inside a worker thread: session.run blocks its thread while it computes.

import './ort-env.js';
import type * as Ort from 'onnxruntime-node';
import { ModelError, errorMessage } from '../../core/errors.js';
import type { ModelManifest } from '../models/manifest.js';
import { dequantizeInto } from './dequantize.js';
import type { EngineFactory, EngineOptions, EngineSession } from './engine.js';

// Loaded on first use, not at import: a 32-bit ARM bundle carries no onnxruntime-node at all.
let ort: typeof Ort;

export const createOnnxSession: EngineFactory = async (modelBytes, manifest, options) => {
  ort ??= await import('onnxruntime-node');
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: Math.max(1, options.threads),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      // x64quantprecision: on x64 without VNNI the uint8 x int8 kernels saturate 16-bit pair sums; this
      // runs those convolutions exactly there (the TFLite engine's outputs bit for bit; docs/models.md).
      extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' }, x64quantprecision: '1' } },
    });
  } catch (err) {
    throw new ModelError('MODEL_INVALID', `${manifest.file}: onnxruntime cannot load the model: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  try {
    return new OnnxSession(session, manifest, options);
  } catch (err) {
    await session.release();
    throw err;
  }
};

const ELEMENT_TYPE = { uint8: 'uint8', int8: 'int8', float32: 'float32' } as const;

class OnnxSession implements EngineSession {
  readonly outputDim: number;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly batchable: boolean;

  constructor(
    private readonly session: Ort.InferenceSession,
    private readonly manifest: ModelManifest,
    options: EngineOptions,
  ) {
    const where = manifest.file;
    this.inputName = manifest.input.name ?? session.inputNames[0] ?? '';
    const input = session.inputMetadata.find((m) => m.name === this.inputName);
    if (!input) {
      throw new ModelError('INPUT_NOT_FOUND', `${where}: no input tensor "${this.inputName}"; inputs: ${session.inputNames.join(', ')}`);
    }
    if (input.isTensor && input.type !== ELEMENT_TYPE[manifest.input.dtype]) {
      throw new ModelError(
        'INPUT_MISMATCH',
        `${where}: input "${this.inputName}" is ${input.type}, the manifest says ${manifest.input.dtype}`,
      );
    }
    this.batchable = input.isTensor && typeof input.shape[0] !== 'number';
    this.outputName = options.outputName ?? manifest.output.name;
    const output = session.outputMetadata.find((m) => m.name === this.outputName);
    if (!output) {
      throw new ModelError(
        'OUTPUT_NOT_FOUND',
        `${where}: no output tensor "${this.outputName}"; outputs: ${session.outputNames.join(', ')}`,
      );
    }
    const dims = output.isTensor ? output.shape.slice(1) : [];
    const dim = dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a * b, 1) : manifest.output.dim;
    if (dim !== manifest.output.dim && options.outputName === undefined) {
      throw new ModelError(
        'OUTPUT_MISMATCH',
        `${where}: output "${this.outputName}" has ${dim} values, the manifest says ${manifest.output.dim}`,
      );
    }
    this.outputDim = dim;
  }

  async run(input: Uint8Array | Int8Array | Float32Array, count: number): Promise<Float32Array> {
    const { width, height, layout } = this.manifest.input;
    const perImage = width * height * 3;
    const out = new Float32Array(count * this.outputDim);
    const step = this.batchable ? count : 1;
    for (let start = 0; start < count; start += step) {
      const n = Math.min(step, count - start);
      const dims = layout === 'NHWC' ? [n, height, width, 3] : [n, 3, height, width];
      const slice = input.subarray(start * perImage, (start + n) * perImage);
      const tensor = new ort.Tensor(ELEMENT_TYPE[this.manifest.input.dtype], slice, dims);
      const result = await this.session.run({ [this.inputName]: tensor }, [this.outputName]);
      const value = result[this.outputName] as Ort.Tensor;
      dequantizeInto(value.data as ArrayLike<number>, this.manifest.output.quantization, out, start * this.outputDim);
      value.dispose();
    }
    return out;
  }

  close(): void {
    void this.session.release();
  }
}
