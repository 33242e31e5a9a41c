// TFLite -> ONNX. Quantized models stay quantized: every int8/uint8 activation becomes a
// QuantizeLinear -> DequantizeLinear pair with the file's own scale and zero point, weights are
// quantized initializers behind a DequantizeLinear (per tensor or per channel), and int32 biases keep
// their scale (input scale x weight scale). onnxruntime fuses DQ -> Conv -> Q into QLinearConv. Layout:
// the ONNX model takes the same uint8 NHWC image as the TFLite one, transposes it once to NCHW, and the
// convolutions run NCHW. `float: true` writes a dequantized float32 model instead.

import onnxProto from 'onnx-proto';
import { ModelError } from '../../core/errors.js';
import { type ModelManifest, parseManifest } from './manifest.js';
import { sha256Hex } from '../../core/hash.js';
import { initializer } from './onnx-graph.js';
import { BUILTIN_OPS, type TfliteModel, type TfliteOperator, type TfliteTensor, readTfliteModel } from './tflite-file.js';

const { onnx } = onnxProto;
type Node = ReturnType<typeof onnx.NodeProto.create>;
type Initializer = ReturnType<typeof onnx.TensorProto.create>;
const DT = onnx.TensorProto.DataType;
const ATTR = onnx.AttributeProto.AttributeType;

export interface ImportOptions {
  /** Cut the graph here: this tensor becomes the output (e.g. a classifier's pre-logits). */
  output?: string;
  /** Write a dequantized float32 model. */
  float?: boolean;
}

export interface ImportResult {
  bytes: Uint8Array;
  sha256: string;
  inputName: string;
  outputName: string;
  /** The TFLite tensor the output comes from. */
  outputTensor: string;
  outputDim: number;
  ops: Record<string, number>;
}

type Quant = { scale: number; zero: number; type: number };

/** Fused activations (schema.fbs ActivationFunctionType). */
const ACTIVATIONS: Record<number, [number, number] | null> = { 0: null, 1: [0, Infinity], 2: [-1, 1], 3: [0, 6] };

/**
 * The manifest of an imported model. A plain import computes what the TFLite model computes, so it keeps
 * the model's id (heads trained on one run on the other); a cut or dequantized model is a different
 * backbone with an id of its own.
 */
export function importedManifest(
  source: ModelManifest,
  result: Pick<ImportResult, 'bytes' | 'sha256' | 'outputName' | 'outputTensor' | 'outputDim'>,
  options: ImportOptions & { file: string; keepLabels: boolean },
): ModelManifest {
  const cut = options.output !== undefined && result.outputTensor !== source.output.name;
  const suffix = `${cut ? `-cut-${result.outputTensor.replace(/[^A-Za-z0-9._-]/g, '_')}` : ''}${options.float ? '-float' : ''}`;
  const { bytes: _bytes, labels, ...rest } = source;
  return parseManifest(
    {
      ...rest,
      id: `${source.id}${suffix}`,
      format: 'onnx',
      file: options.file,
      sha256: result.sha256,
      bytes: result.bytes.length,
      output: { name: result.outputName, kind: cut ? 'embedding' : source.output.kind, dim: result.outputDim },
      ...(options.keepLabels && !cut && labels !== undefined ? { labels } : {}),
      description: `${source.description ?? source.id}; imported to ONNX by edgetune${cut ? `, cut at ${result.outputTensor}` : ''}${options.float ? ', dequantized to float32' : ''}`,
    },
    `manifest for ${options.file}`,
  );
}

export function importTflite(bytes: Uint8Array, where: string, options: ImportOptions = {}): ImportResult {
  return new Importer(readTfliteModel(bytes, where), where, options).run();
}

class Importer {
  private readonly nodes: Node[] = [];
  private readonly initializers: Initializer[] = [];
  /** ONNX name of each TFLite tensor's value in NCHW: quantized (QDQ mode) or float. */
  private readonly values = new Map<number, string>();
  private readonly ops: Record<string, number> = {};
  private unique = 0;

  constructor(
    private readonly model: TfliteModel,
    private readonly where: string,
    private readonly options: ImportOptions,
  ) {}

  run(): ImportResult {
    const { model } = this;
    const input = this.tensor(model.inputs[0]!);
    const outputIndex = this.outputIndex();
    const inputName = 'image';
    const inputType = input.type === 'FLOAT32' ? DT.FLOAT : input.type === 'INT8' ? DT.INT8 : DT.UINT8;
    const nchw = this.name('input_nchw');
    this.node('Transpose', [inputName], [nchw], { perm: [0, 3, 1, 2] });
    this.values.set(input.index, this.quantized(input) && this.options.float ? this.dequantize(nchw, input) : nchw);

    for (const op of model.operators) {
      if (this.values.has(outputIndex)) break;
      this.convert(op);
    }
    if (!this.values.has(outputIndex)) {
      throw new ModelError('IMPORT_UNREACHABLE', `${this.where}: no operator produces tensor "${this.tensor(outputIndex).name}"`);
    }
    const out = this.tensor(outputIndex);
    let value = this.float(outputIndex);
    const shape = out.shape;
    if (shape.length === 4) {
      // Back to the TFLite element order (NHWC) before flattening, so a cut feature map reads the same.
      const nhwc = this.name('output_nhwc');
      this.node('Transpose', [value], [nhwc], { perm: [0, 2, 3, 1] });
      value = nhwc;
    }
    const outputName = 'embedding';
    this.node('Flatten', [value], [outputName], { axis: 1 });
    const outputDim = shape.slice(1).reduce((a, b) => a * b, 1);

    const graph = onnx.GraphProto.create({
      name: 'edgetune_import',
      input: [valueInfo(inputName, inputType, ['N', ...input.shape.slice(1)])],
      output: [valueInfo(outputName, DT.FLOAT, ['N', outputDim])],
      initializer: this.initializers,
      node: this.nodes,
    });
    const onnxModel = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'edgetune',
      docString: `imported from ${this.where}${this.options.output ? `, cut at ${out.name}` : ''}${this.options.float ? ', dequantized' : ''}`,
      graph,
    });
    const bytes = onnx.ModelProto.encode(onnxModel).finish();
    return { bytes, sha256: sha256Hex(bytes), inputName, outputName, outputTensor: out.name, outputDim, ops: this.ops };
  }

  private outputIndex(): number {
    if (this.options.output === undefined) return this.model.outputs[0]!;
    const found = this.model.tensors.find((t) => t.name === this.options.output);
    if (!found) {
      const names = this.model.tensors.filter((t) => this.model.buffers[t.buffer]?.length === 0).map((t) => t.name);
      throw new ModelError(
        'OUTPUT_NOT_FOUND',
        `${this.where}: no tensor "${this.options.output}" to cut at; activations include ${names.slice(-5).join(', ')}`,
      );
    }
    return found.index;
  }

  private convert(op: TfliteOperator): void {
    const code = this.model.opcodes[op.opcodeIndex]?.builtinCode ?? -1;
    const name = BUILTIN_OPS[code] ?? `builtin ${code}`;
    const out = this.tensor(op.outputs[0]!);
    this.ops[name] = (this.ops[name] ?? 0) + 1;
    switch (name) {
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D':
        return this.conv(op, name === 'DEPTHWISE_CONV_2D');
      case 'AVERAGE_POOL_2D':
      case 'MAX_POOL_2D':
        return this.pool(op, name === 'AVERAGE_POOL_2D' ? 'AveragePool' : 'MaxPool');
      case 'ADD':
        return this.add(op);
      case 'RESHAPE':
        return this.reshape(op);
      case 'SOFTMAX': {
        let logits = this.float(op.inputs[0]!);
        const beta = op.options.beta ?? 1;
        if (beta !== 1) logits = this.emit('Mul', [logits, this.constant([beta], [], DT.FLOAT)]);
        return this.finish(op, this.emit('Softmax', [logits], { axis: -1 }), 0);
      }
      case 'MEAN':
        return this.mean(op);
      case 'QUANTIZE':
      case 'DEQUANTIZE':
        return this.finish(op, this.float(op.inputs[0]!), 0);
      default:
        throw new ModelError(
          'IMPORT_UNSUPPORTED_OP',
          `${this.where}: operator ${name} (producing tensor "${out.name}") is not supported by the importer`,
        );
    }
  }

  private conv(op: TfliteOperator, depthwise: boolean): void {
    const x = this.tensor(op.inputs[0]!);
    const w = this.tensor(op.inputs[1]!);
    const out = this.tensor(op.outputs[0]!);
    // TFLite: conv weights OHWI, depthwise 1HW(C*M); ONNX: OIHW, depthwise (C*M)1HW with group C.
    const [o, kh, kw, i] = depthwise ? [w.shape[3]!, w.shape[1]!, w.shape[2]!, 1] : (w.shape as [number, number, number, number]);
    const weights = this.weight(
      w,
      [o, i, kh, kw],
      (oo, ii, y, xx) => (depthwise ? (y * kw + xx) * o + oo : ((oo * kh + y) * kw + xx) * i + ii),
      depthwise ? 3 : 0,
    );
    const inputs = [this.float(x.index), weights];
    if (op.inputs[2] !== undefined && op.inputs[2] >= 0) inputs.push(this.bias(this.tensor(op.inputs[2]), x, w));
    const [sh, sw] = [op.options.strideH || 1, op.options.strideW || 1];
    const [dh, dw] = [op.options.dilationH || 1, op.options.dilationW || 1];
    const pads = samePads(op.options.padding ?? 0, x.shape, out.shape, [kh, kw], [sh, sw], [dh, dw]);
    const y = this.emit('Conv', inputs, {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      dilations: [dh, dw],
      pads,
      group: depthwise ? x.shape[3]! : 1,
    });
    this.finish(op, y, op.options.activation ?? 0);
  }

  private pool(op: TfliteOperator, type: 'AveragePool' | 'MaxPool'): void {
    const x = this.tensor(op.inputs[0]!);
    const out = this.tensor(op.outputs[0]!);
    const kernel = [op.options.filterH!, op.options.filterW!];
    const strides = [op.options.strideH || 1, op.options.strideW || 1];
    const pads = samePads(op.options.padding ?? 0, x.shape, out.shape, kernel, strides, [1, 1]);
    const attrs: Record<string, number | number[]> = { kernel_shape: kernel, strides, pads };
    if (type === 'AveragePool') attrs.count_include_pad = 0; // TFLite averages over the valid pixels only
    this.finish(op, this.emit(type, [this.float(x.index)], attrs), op.options.activation ?? 0);
  }

  /**
   * A quantized ADD is computed the way TFLite's XNNPACK kernel (qs8/qu8 vadd) does it, in integers:
   *   out = clamp(zo + ((bias + a * ma + b * mb) >> shift)),  ma = round(sa / so * 2^shift), shift = 20 - exponent(max(sa, sb) / so)
   * so the rounding matches bit for bit. onnxruntime's QLinearAdd rounds its float sum slightly differently;
   * a one-step difference on a few elements of the first residual ADD grows through the later ones (on
   * tf2_mobilenet_v2 it moved a class in and out of the top 5). The arithmetic runs in float64, where
   * every term is exact; a QuantizeLinear with scale 1 adds the zero point and saturates.
   */
  private add(op: TfliteOperator): void {
    const [a, b, out] = [this.tensor(op.inputs[0]!), this.tensor(op.inputs[1]!), this.tensor(op.outputs[0]!)];
    const activation = op.options.activation ?? 0;
    const perTensor = (t: TfliteTensor) => this.quantized(t) && t.quantization!.scale.length === 1;
    if (this.options.float || !perTensor(a) || !perTensor(b) || !perTensor(out)) {
      return this.finish(op, this.emit('Add', [this.float(a.index), this.float(b.index)]), activation);
    }
    const [qa, qb, qo] = [a, b, out].map((t) => this.activationQuantization(t)) as [Quant, Quant, Quant];
    const { multipliers, shift, bias } = addRequantization(qa, qb, qo.scale);
    const term = (t: TfliteTensor, multiplier: number) =>
      this.emit('Mul', [
        this.emit('Cast', [this.values.get(t.index)!], { to: DT.DOUBLE }),
        this.constant([multiplier / 2 ** shift], [], DT.DOUBLE),
      ]);
    const sum = this.emit('Add', [term(a, multipliers[0]), term(b, multipliers[1])]);
    let r = this.emit('Cast', [this.emit('Floor', [this.emit('Add', [sum, this.constant([bias / 2 ** shift], [], DT.DOUBLE)])])], {
      to: DT.FLOAT,
    });
    const range = ACTIVATIONS[activation];
    if (range === undefined)
      throw new ModelError('IMPORT_UNSUPPORTED_OP', `${this.where}: fused activation ${activation} on "${out.name}" is not supported`);
    if (range) {
      // TFLite's quantized activation range, relative to the zero point.
      const lo = Math.round(range[0] / qo.scale);
      const hi = range[1] === Infinity ? 1e9 : Math.round(range[1] / qo.scale);
      r = this.emit('Clip', [r, this.constant([lo], [], DT.FLOAT), this.constant([hi], [], DT.FLOAT)]);
    }
    const y = this.name(out.name);
    this.node('QuantizeLinear', [r, this.constant([1], [], DT.FLOAT), this.constant([qo.zero], [], qo.type)], [y]);
    this.values.set(out.index, y);
  }

  private reshape(op: TfliteOperator): void {
    const x = this.tensor(op.inputs[0]!);
    const out = this.tensor(op.outputs[0]!);
    // In NCHW, [N, C, 1, 1] -> [N, C] is the only reshape that means the same as in NHWC without a
    // transpose; it is the one classifiers use before their softmax.
    const flat = x.shape.length === 4 && x.shape[1] === 1 && x.shape[2] === 1 && out.shape.length === 2;
    if (!flat && !(x.shape.length === out.shape.length && x.shape.every((d, i) => d === out.shape[i]))) {
      throw new ModelError(
        'IMPORT_UNSUPPORTED_OP',
        `${this.where}: RESHAPE of "${x.name}" [${x.shape}] to "${out.name}" [${out.shape}] is not supported (only flattening a 1x1 feature map)`,
      );
    }
    this.finish(op, flat ? this.emit('Flatten', [this.float(x.index)], { axis: 1 }) : this.float(x.index), 0);
  }

  private mean(op: TfliteOperator): void {
    const x = this.tensor(op.inputs[0]!);
    const axesTensor = this.tensor(op.inputs[1]!);
    const axes = Array.from(new Int32Array(copy(this.model.buffers[axesTensor.buffer]!).buffer));
    // NHWC axes -> NCHW axes.
    const map = [0, 2, 3, 1];
    const reduced = this.emit('ReduceMean', [this.float(x.index)], {
      axes: axes.map((a) => map[a < 0 ? a + 4 : a]!),
      keepdims: op.options.keepDims ? 1 : 0,
    });
    this.finish(op, reduced, 0);
  }

  /** Applies the fused activation and, for quantized outputs, QuantizeLinear with the file's parameters. */
  private finish(op: TfliteOperator, value: string, activation: number): void {
    const out = this.tensor(op.outputs[0]!);
    const range = ACTIVATIONS[activation];
    if (range === undefined)
      throw new ModelError('IMPORT_UNSUPPORTED_OP', `${this.where}: fused activation ${activation} on "${out.name}" is not supported`);
    let y = value;
    if (range) {
      y =
        range[1] === Infinity && range[0] === 0
          ? this.emit('Relu', [y])
          : this.emit('Clip', [y, this.constant([range[0]], [], DT.FLOAT), this.constant([range[1]], [], DT.FLOAT)]);
    }
    if (this.quantized(out) && !this.options.float) {
      const q = this.name(out.name);
      const { scale, zero } = this.qparams(out);
      this.node('QuantizeLinear', [y, scale, zero], [q]);
      this.values.set(out.index, q);
    } else {
      this.values.set(out.index, y);
    }
  }

  /** A float value of the tensor: a fresh DequantizeLinear per consumer when it is quantized. */
  private float(index: number): string {
    const value = this.values.get(index);
    if (value === undefined)
      throw new ModelError(
        'IMPORT_UNSUPPORTED_OP',
        `${this.where}: tensor "${this.tensor(index).name}" is used before it is computed (graphs with constants as activations are not supported)`,
      );
    const t = this.tensor(index);
    return this.quantized(t) && !this.options.float ? this.dequantize(value, t) : value;
  }

  private dequantize(value: string, t: TfliteTensor): string {
    const { scale, zero } = this.qparams(t);
    return this.emit('DequantizeLinear', [value, scale, zero]);
  }

  private qparams(t: TfliteTensor): { scale: string; zero: string } {
    const { scale, zero, type } = this.activationQuantization(t);
    return { scale: this.constant([scale], [], DT.FLOAT), zero: this.constant([zero], [], type) };
  }

  /**
   * How a quantized activation is stored in the ONNX graph. int8 activations become uint8 with the zero
   * point moved up by 128: the same grid and the same integer results, but onnxruntime on x86 fuses
   * uint8-activation convolutions into QLinearConv, and leaves int8 ones that feed two consumers as
   * float Conv between DequantizeLinear and QuantizeLinear: slower, and rounded differently from TFLite.
   * The graph input keeps its type.
   */
  private activationQuantization(t: TfliteTensor): { scale: number; zero: number; type: number } {
    const q = t.quantization!;
    const zero = q.zeroPoint[0] ?? 0;
    if (t.type !== 'INT8') return { scale: q.scale[0]!, zero, type: DT.UINT8 };
    return t.index === this.model.inputs[0]
      ? { scale: q.scale[0]!, zero, type: DT.INT8 }
      : { scale: q.scale[0]!, zero: zero + 128, type: DT.UINT8 };
  }

  /** Conv weights re-laid out to ONNX order; quantized behind a DequantizeLinear unless `float`. */
  private weight(
    w: TfliteTensor,
    dims: [number, number, number, number],
    source: (o: number, i: number, y: number, x: number) => number,
    channelAxis: number,
  ): string {
    const data = this.model.buffers[w.buffer];
    const count = dims.reduce((a, b) => a * b, 1);
    const elementSize = w.type === 'FLOAT32' ? 4 : 1;
    if (!data || data.length !== count * elementSize) {
      throw new ModelError(
        'TFLITE_MALFORMED',
        `${this.where}: weights "${w.name}" have ${data?.length ?? 0} bytes, expected ${count * elementSize}`,
      );
    }
    const src =
      w.type === 'FLOAT32'
        ? new Float32Array(copy(data).buffer)
        : w.type === 'INT8'
          ? new Int8Array(data.buffer, data.byteOffset, data.length)
          : data;
    const [o, i, kh, kw] = dims;
    const order = new Int32Array(count);
    let at = 0;
    for (let oo = 0; oo < o; oo++)
      for (let ii = 0; ii < i; ii++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) order[at++] = source(oo, ii, y, x);
    const q = w.quantization;
    const perChannel = q !== undefined && q.scale.length > 1;
    if (perChannel && q.quantizedDimension !== channelAxis) {
      throw new ModelError(
        'IMPORT_UNSUPPORTED_OP',
        `${this.where}: weights "${w.name}" are quantized along axis ${q.quantizedDimension}, expected ${channelAxis}`,
      );
    }
    if (!q || w.type === 'FLOAT32' || this.options.float) {
      const values = new Float32Array(count);
      for (let k = 0; k < count; k++) {
        const c = Math.floor(k / (count / o));
        const raw = src[order[k]!]!;
        values[k] = !q || w.type === 'FLOAT32' ? raw : q.scale[perChannel ? c : 0]! * (raw - (q.zeroPoint[perChannel ? c : 0] ?? 0));
      }
      return this.constant(values, dims, DT.FLOAT);
    }
    // uint8 weights become int8 exactly (q - 128 with zero point - 128): onnxruntime's fast x86 and
    // ARM kernels take uint8 activations with int8 weights.
    const shift = w.type === 'UINT8' ? 128 : 0;
    const values = new Int32Array(count);
    for (let k = 0; k < count; k++) values[k] = src[order[k]!]! - shift;
    const weights = this.constant(values, dims, DT.INT8);
    const scale = this.constant(q.scale, perChannel ? [o] : [], DT.FLOAT);
    const zero = this.constant(
      (perChannel ? q.zeroPoint : [q.zeroPoint[0] ?? 0]).map((z) => (z ?? 0) - shift),
      perChannel ? [o] : [],
      DT.INT8,
    );
    return this.emit('DequantizeLinear', [weights, scale, zero], perChannel ? { axis: 0 } : {});
  }

  private bias(b: TfliteTensor, x: TfliteTensor, w: TfliteTensor): string {
    const data = this.model.buffers[b.buffer]!;
    if (b.type === 'FLOAT32') return this.constant(new Float32Array(copy(data).buffer), [b.shape[0]!], DT.FLOAT);
    if (b.type !== 'INT32') throw new ModelError('IMPORT_UNSUPPORTED_OP', `${this.where}: bias "${b.name}" is ${b.type}`);
    const values = new Int32Array(copy(data).buffer);
    const n = values.length;
    // The bias scale is input scale x weight scale (per channel when the weights are).
    const ws = w.quantization!.scale;
    const scales = Array.from({ length: ws.length > 1 ? n : 1 }, (_, c) => x.quantization!.scale[0]! * ws[ws.length > 1 ? c : 0]!);
    if (this.options.float) {
      return this.constant(
        Float32Array.from(values, (v, c) => v * scales[scales.length > 1 ? c : 0]!),
        [n],
        DT.FLOAT,
      );
    }
    const bias = this.constant(values, [n], DT.INT32);
    const scale = this.constant(scales, scales.length > 1 ? [n] : [], DT.FLOAT);
    const zero = this.constant(new Array<number>(scales.length).fill(0), scales.length > 1 ? [n] : [], DT.INT32);
    return this.emit('DequantizeLinear', [bias, scale, zero], scales.length > 1 ? { axis: 0 } : {});
  }

  private quantized(t: TfliteTensor): boolean {
    return (t.type === 'UINT8' || t.type === 'INT8') && t.quantization !== undefined;
  }

  private tensor(index: number): TfliteTensor {
    const t = this.model.tensors[index];
    if (!t)
      throw new ModelError('TFLITE_MALFORMED', `${this.where}: operator names tensor ${index}, but there are ${this.model.tensors.length}`);
    return t;
  }

  private name(base: string): string {
    return `${base.replace(/[^A-Za-z0-9_/.:-]/g, '_')}#${this.unique++}`;
  }

  private emit(opType: string, inputs: string[], attrs: Record<string, number | number[]> = {}): string {
    const output = this.name(opType.toLowerCase());
    this.node(opType, inputs, [output], attrs);
    return output;
  }

  private node(opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}): void {
    const attribute = Object.entries(attrs).map(([name, value]) =>
      Array.isArray(value) ? { name, type: ATTR.INTS, ints: value } : { name, type: ATTR.INT, i: value },
    );
    this.nodes.push(onnx.NodeProto.create({ opType, input, output, attribute }));
  }

  private constant(values: ArrayLike<number>, dims: number[], dataType: number): string {
    const name = this.name('const');
    this.initializers.push(initializer(name, values, dims, dataType));
    return name;
  }
}

/**
 * XNNPACK's fixed-point parameters for a quantized ADD (`xnn_init_qs8_add_minmax_params`): 20-bit
 * multipliers of the float32 scale ratios, a shift that puts the larger one just under 2^21, and a bias
 * that folds in both zero points and rounds half up.
 */
export function addRequantization(
  a: { scale: number; zero: number },
  b: { scale: number; zero: number },
  outScale: number,
): { multipliers: [number, number]; shift: number; bias: number } {
  const ratios = [Math.fround(a.scale / outScale), Math.fround(b.scale / outScale)] as const;
  const bits = new DataView(new ArrayBuffer(4));
  bits.setFloat32(0, Math.max(ratios[0], ratios[1]), true);
  const exponent = ((bits.getUint32(0, true) >>> 23) & 0xff) - 127;
  const shift = 20 - exponent;
  const multipliers: [number, number] = [roundHalfEven(ratios[0] * 2 ** shift), roundHalfEven(ratios[1] * 2 ** shift)];
  const bias = 2 ** (shift - 1) - multipliers[0] * a.zero - multipliers[1] * b.zero;
  return { multipliers, shift, bias };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Explicit [top, left, bottom, right] pads for TFLite's SAME (0) or VALID (1) padding. */
function samePads(
  padding: number,
  inShape: number[],
  outShape: number[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): number[] {
  if (padding === 1) return [0, 0, 0, 0];
  const pad = (axis: 0 | 1) => {
    const size = inShape[1 + axis]!;
    const out = outShape[1 + axis]!;
    const effective = (kernel[axis]! - 1) * dilations[axis]! + 1;
    return Math.max(0, (out - 1) * strides[axis]! + effective - size);
  };
  const [ph, pw] = [pad(0), pad(1)];
  return [Math.floor(ph / 2), Math.floor(pw / 2), ph - Math.floor(ph / 2), pw - Math.floor(pw / 2)];
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
}

/** An aligned copy (buffers in a flatbuffer need not be 4-byte aligned). */
function copy(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes);
}
