// Small ONNX models built in the tests (onnx-proto), so the ORT engine is exercised on real graphs.

import onnxProto from 'onnx-proto';
import type { ModelManifest } from '../../runtime/models/manifest.js';
import { sha256Hex } from '../../core/hash.js';

const { onnx } = onnxProto;
type DataTypeName = 'FLOAT' | 'UINT8';

function valueInfo(name: string, elemType: DataTypeName, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType[elemType],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/**
 * uint8 image [N, H, W, 3] -> per-channel mean scaled by `scale` -> "embedding" [N, 3].
 * A tiny stand-in for a backbone whose output we can compute by hand.
 */
export function channelMeanModel(options: { size: number; scale?: number; batch?: number | string }): Uint8Array {
  const { size, scale = 1 } = options;
  const batch = options.batch ?? 'N';
  const graph = onnx.GraphProto.create({
    name: 'channel_mean',
    input: [valueInfo('image', 'UINT8', [batch, size, size, 3])],
    output: [valueInfo('embedding', 'FLOAT', [batch, 3]), valueInfo('pixels', 'FLOAT', [batch, size, size, 3])],
    initializer: [
      onnx.TensorProto.create({
        name: 'scale',
        dataType: onnx.TensorProto.DataType.FLOAT,
        dims: [],
        floatData: [scale],
      }),
    ],
    node: [
      onnx.NodeProto.create({
        opType: 'Cast',
        input: ['image'],
        output: ['pixels'],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT }],
      }),
      onnx.NodeProto.create({
        opType: 'ReduceMean',
        input: ['pixels'],
        output: ['mean'],
        attribute: [
          { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 2] },
          { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
        ],
      }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['mean', 'scale'], output: ['embedding'] }),
    ],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'edgetune-tests',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

export function manifestFor(bytes: Uint8Array, size: number, overrides: Partial<ModelManifest> = {}): ModelManifest {
  return {
    id: 'test_channel_mean',
    format: 'onnx',
    file: 'channel_mean.onnx',
    sha256: sha256Hex(bytes),
    input: { name: 'image', width: size, height: size, channels: 3, layout: 'NHWC', dtype: 'uint8' },
    output: { name: 'embedding', kind: 'embedding', dim: 3 },
    resize: 'fill',
    license: 'test',
    source: 'built by the test',
    ...overrides,
  };
}
