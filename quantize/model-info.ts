// `edgetune model info`: what is inside a model file. Inputs and outputs, an operator histogram, the
// parameter count, multiply-accumulates per image (from the TFLite file's shapes, or shapes propagated
// through the ONNX graph from its input), and how it is quantized.

import onnxProto from 'onnx-proto';
import { BUILTIN_OPS, readTfliteModel } from '../runtime/models/tflite-file.js';
import { decodeOnnx } from '../runtime/models/onnx-graph.js';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

export interface TensorInfo {
  name: string;
  type: string;
  shape: (number | string)[];
}

export interface ModelInfo {
  format: 'onnx' | 'tflite';
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  ops: Record<string, number>;
  parameters: number;
  /** Multiply-accumulates for one image; null when a shape could not be worked out. */
  macs: number | null;
  quantization: string;
  /** Every tensor an operator computes, in graph order: the cut points `--output` takes. */
  tensors: TensorInfo[];
}

export function modelInfo(bytes: Uint8Array, where: string): ModelInfo {
  const tflite = bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(4, 8)) === 'TFL3';
  return tflite || where.endsWith('.tflite') ? tfliteInfo(bytes, where) : onnxInfo(bytes, where);
}

function tfliteInfo(bytes: Uint8Array, where: string): ModelInfo {
  const m = readTfliteModel(bytes, where);
  const ops: Record<string, number> = {};
  let macs = 0;
  for (const op of m.operators) {
    const name = BUILTIN_OPS[m.opcodes[op.opcodeIndex]?.builtinCode ?? -1] ?? `builtin ${m.opcodes[op.opcodeIndex]?.builtinCode}`;
    ops[name] = (ops[name] ?? 0) + 1;
    const out = m.tensors[op.outputs[0]!]?.shape ?? [];
    const w = m.tensors[op.inputs[1]!]?.shape ?? [];
    if (name === 'CONV_2D') macs += out[1]! * out[2]! * out[3]! * w[1]! * w[2]! * w[3]!;
    if (name === 'DEPTHWISE_CONV_2D') macs += out[1]! * out[2]! * out[3]! * w[1]! * w[2]!;
    if (name === 'FULLY_CONNECTED') macs += w[0]! * w[1]!;
  }
  const constants = m.tensors.filter((t) => (m.buffers[t.buffer]?.length ?? 0) > 0);
  const parameters = constants.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const quantized = m.tensors.filter((t) => t.quantization);
  const perChannel = quantized.some((t) => t.quantization!.scale.length > 1);
  const types = [...new Set(quantized.map((t) => t.type))].sort();
  const info = (i: number): TensorInfo => ({
    name: m.tensors[i]!.name,
    type: m.tensors[i]!.type.toLowerCase(),
    shape: m.tensors[i]!.shape,
  });
  return {
    format: 'tflite',
    inputs: m.inputs.map(info),
    outputs: m.outputs.map(info),
    tensors: m.operators.flatMap((op) => op.outputs.map(info)),
    ops,
    parameters,
    macs,
    quantization:
      quantized.length === 0 ? 'none (float)' : `${types.join('/')} tensors, ${perChannel ? 'per-channel' : 'per-tensor'} weights`,
  };
}

function onnxInfo(bytes: Uint8Array, where: string): ModelInfo {
  const graph = decodeOnnx(bytes, where).graph!;
  const ops: Record<string, number> = {};
  for (const n of graph.node!) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const parameters = graph.initializer!.reduce((s, t) => s + t.dims!.map(Number).reduce((a, b) => a * b, 1), 0);
  const typeName = (t: number) => (DT[t] ?? `type ${t}`).toString().toLowerCase();
  const info = (v: onnxProto.onnx.IValueInfoProto): TensorInfo => ({
    name: v.name!,
    type: typeName(v.type?.tensorType?.elemType ?? 0),
    shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
  });
  const inputs = graph.input!.filter((v) => !inits.has(v.name!)).map(info);
  const int8Weights = graph.initializer!.filter((t) => t.dataType === DT.INT8 && t.dims!.length === 4).length;
  const quantization =
    !ops.QuantizeLinear && !ops.QLinearConv && int8Weights === 0
      ? 'none (float)'
      : `QDQ: ${ops.QuantizeLinear ?? 0} QuantizeLinear, ${ops.DequantizeLinear ?? 0} DequantizeLinear; ${int8Weights} int8 conv weights`;
  const shapes = new Map<string, number[]>();
  const macs = onnxMacs(graph, inits, inputs[0], shapes);
  const declared = new Map([...(graph.valueInfo ?? []), ...graph.output!].map((v) => [v.name!, info(v)]));
  const computed = graph.node!.flatMap((n) => n.output!.filter((o) => o !== ''));
  return {
    format: 'onnx',
    inputs,
    outputs: graph.output!.map(info),
    ops,
    parameters,
    macs,
    quantization,
    // Shapes as declared in the file, else as propagated from the input (batch 1, type '?'); [] when neither says.
    tensors: computed.map((name) => declared.get(name) ?? { name, type: '?', shape: shapes.get(name) ?? [] }),
  };
}

/** Propagates shapes (batch 1) through the ops edgetune's models use and counts Conv and Gemm MACs. */
function onnxMacs(
  graph: onnxProto.onnx.IGraphProto,
  inits: Map<string, onnxProto.onnx.ITensorProto>,
  input: TensorInfo | undefined,
  /** Filled with every tensor's propagated shape. */
  shapes: Map<string, number[]>,
): number | null {
  if (!input) return null;
  shapes.set(
    input.name,
    input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)),
  );
  for (const [name, t] of inits) shapes.set(name, (t.dims ?? []).map(Number));
  type Node = onnxProto.onnx.INodeProto;
  const attr = (n: Node, name: string) => n.attribute?.find((a) => a.name === name);
  const ints = (n: Node, name: string, fallback: number[]): number[] => attr(n, name)?.ints?.map(Number) ?? fallback;
  let macs = 0;
  for (const n of graph.node!) {
    const x = shapes.get(n.input![0]!);
    if (!x) return null;
    let y: number[];
    switch (n.opType) {
      case 'Conv':
      case 'AveragePool':
      case 'MaxPool': {
        const w = n.opType === 'Conv' ? shapes.get(n.input![1]!) : undefined;
        const kernel = ints(n, 'kernel_shape', w ? w.slice(2) : [1, 1]);
        const strides = ints(n, 'strides', [1, 1]);
        const pads = ints(n, 'pads', [0, 0, 0, 0]);
        const dil = ints(n, 'dilations', [1, 1]);
        const spatial = [0, 1].map(
          (a) => Math.floor((x[2 + a]! + pads[a]! + pads[a + 2]! - ((kernel[a]! - 1) * dil[a]! + 1)) / strides[a]!) + 1,
        );
        y = [x[0]!, w ? w[0]! : x[1]!, ...spatial];
        if (w) macs += y[1]! * spatial[0]! * spatial[1]! * w[1]! * kernel[0]! * kernel[1]!;
        break;
      }
      case 'Transpose': {
        const perm = ints(n, 'perm', [...x.keys()].reverse());
        y = perm.map((p) => x[p]!);
        break;
      }
      case 'Flatten': {
        const axis = Number(attr(n, 'axis')?.i ?? 1);
        y = [x.slice(0, axis).reduce((a, b) => a * b, 1), x.slice(axis).reduce((a, b) => a * b, 1)];
        break;
      }
      case 'ReduceMean': {
        const axes = ints(n, 'axes', []);
        const keep = Number(attr(n, 'keepdims')?.i ?? 1) === 1;
        y = keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i));
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const w = shapes.get(n.input![1]!);
        if (!w) return null;
        y = [x[0]!, w[w.length - 1]!];
        macs += x[x.length - 1]! * w[w.length - 1]!;
        break;
      }
      default:
        y = x; // elementwise (Q/DQ, Clip, Relu, Add, Mul, Softmax, Cast)
    }
    for (const o of n.output!) shapes.set(o, y);
  }
  return macs;
}
