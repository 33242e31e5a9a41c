// Small helpers shared by the ONNX writers and readers in quantize/ (onnx-proto underneath).

import onnxProto from 'onnx-proto';
import { ModelError } from '../../core/errors.js';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

/** An initializer holding `values` as raw little-endian data of `dataType` (FLOAT, DOUBLE, INT32, UINT8, INT8). */
export function initializer(name: string, values: ArrayLike<number>, dims: number[], dataType: number): onnxProto.onnx.TensorProto {
  const rawData =
    dataType === DT.FLOAT
      ? new Uint8Array(Float32Array.from(values).buffer)
      : dataType === DT.DOUBLE
        ? new Uint8Array(Float64Array.from(values).buffer)
        : dataType === DT.INT32
          ? new Uint8Array(Int32Array.from(values).buffer)
          : dataType === DT.UINT8
            ? Uint8Array.from(values)
            : new Uint8Array(Int8Array.from(values).buffer);
  return onnx.TensorProto.create({ name, dataType, dims, rawData });
}

/** Decodes an ONNX model; anything that is not one (or has no graph) is an error naming `where`. */
export function decodeOnnx(bytes: Uint8Array, where: string): onnxProto.onnx.ModelProto {
  try {
    const model = onnx.ModelProto.decode(bytes);
    if (!model.graph?.node?.length) throw new Error('no graph');
    return model;
  } catch (err) {
    throw new ModelError('ONNX_MALFORMED', `${where}: not a valid ONNX model: ${(err as Error).message}`);
  }
}
