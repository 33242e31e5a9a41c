import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../core/errors.js';
import { CATALOG } from '../../runtime/models/catalog.js';
import { findTensor, readTfliteModel } from '../../runtime/models/tflite-file.js';
import { modelPath } from '../support/paths.js';

const read = (file: string) => readTfliteModel(readFileSync(modelPath(file)), file);

function malformed(bytes: Uint8Array): ModelError {
  try {
    readTfliteModel(bytes, 'broken.tflite');
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    expect((e as ModelError).code).toBe('TFLITE_MALFORMED');
    expect((e as ModelError).message).toContain('broken.tflite');
    return e as ModelError;
  }
  throw new Error('no error');
}

describe('TFLite flatbuffer reader', () => {
  it('reads the embedding extractor: uint8 input, the 1024-d AvgPool output and its quantization', () => {
    const m = read('mobilenet_v1_1.0_224_quant_embedding_extractor.tflite');
    const input = m.tensors[m.inputs[0]!]!;
    const output = m.tensors[m.outputs[0]!]!;
    expect(input).toMatchObject({ name: 'input', type: 'UINT8', shape: [1, 224, 224, 3] });
    expect(input.quantization).toMatchObject({ scale: [0.0078125], zeroPoint: [128] });
    expect(output).toMatchObject({
      name: 'MobilenetV1/Logits/AvgPool_1a/AvgPool',
      type: 'UINT8',
      shape: [1, 1, 1, 1024],
    });
    expect(output.quantization!.scale[0]).toBeCloseTo(0.0235285, 6);
    expect(output.quantization!.zeroPoint).toEqual([0]);
    expect(m.operators.length).toBeGreaterThan(20);
  });

  it('reads per-channel weight scales of the TF2 post-training-quantized model', () => {
    const m = read('tf2_mobilenet_v2_1.0_224_ptq.tflite');
    const perChannel = m.tensors.filter((t) => (t.quantization?.scale.length ?? 0) > 1);
    expect(perChannel.length).toBeGreaterThan(10);
    const first = perChannel[0]!;
    expect(first.quantization!.scale).toHaveLength(first.shape[first.quantization!.quantizedDimension]!);
    expect(m.tensors[m.inputs[0]!]!.quantization).toMatchObject({ zeroPoint: [127] });
  });

  it('agrees with every catalog manifest on input and output quantization', () => {
    for (const entry of CATALOG) {
      const m = read(entry.file);
      const input = m.tensors[m.inputs[0]!]!;
      const output = findTensor(m, entry.output.name);
      expect(output, entry.id).toBeDefined();
      expect(input.shape, entry.id).toEqual([1, entry.input.height, entry.input.width, 3]);
      expect(input.quantization!.scale[0]).toBeCloseTo(entry.input.quantization!.scale, 6);
      expect(input.quantization!.zeroPoint[0]).toBe(entry.input.quantization!.zeroPoint);
      expect(output!.quantization!.scale[0]).toBeCloseTo(entry.output.quantization!.scale, 6);
    }
  });

  it('refuses a 0-byte file, random bytes, an HTML page and a truncated model', () => {
    expect(malformed(new Uint8Array(0)).message).toMatch(/0 bytes is too short/);
    expect(malformed(Uint8Array.from({ length: 5000 }, (_, i) => (i * 31) % 256)).message).toMatch(/identifier/);
    expect(malformed(new TextEncoder().encode('<html><body>Sign in to the Wi-Fi</body></html>')).message).toMatch(/expected "TFL3"/);
    const model = readFileSync(modelPath('mobilenet_v1_0.25_128_quant.tflite'));
    expect(malformed(model.subarray(0, 64)).message).toMatch(/outside the file/);
  });

  it('refuses a model whose root offset points outside the file', () => {
    const model = Uint8Array.from(readFileSync(modelPath('mobilenet_v1_0.25_128_quant.tflite')));
    new DataView(model.buffer).setUint32(0, 0x7fffff00, true);
    expect(malformed(model).message).toMatch(/outside the file/);
  });
});
