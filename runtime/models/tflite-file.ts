// A small reader for TFLite model files (FlatBuffers, schema "TFL3": tensorflow/lite/schema/schema.fbs).
// It reads what edgetune needs: tensors with their shapes, types and quantization, the subgraph's inputs
// and outputs, operators and their op codes. Every offset is bounds-checked: a damaged or foreign file
// is a ModelError naming the file, never a RangeError or a silently wrong number.

import { ModelError } from '../../core/errors.js';

export const TENSOR_TYPES = [
  'FLOAT32',
  'FLOAT16',
  'INT32',
  'UINT8',
  'INT64',
  'STRING',
  'BOOL',
  'INT16',
  'COMPLEX64',
  'INT8',
  'FLOAT64',
  'COMPLEX128',
  'UINT64',
  'RESOURCE',
  'VARIANT',
  'UINT32',
  'UINT16',
  'INT4',
] as const;
export type TensorType = (typeof TENSOR_TYPES)[number] | `UNKNOWN_${number}`;

export interface TfliteQuantization {
  scale: number[];
  zeroPoint: number[];
  quantizedDimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: TensorType;
  buffer: number;
  quantization?: TfliteQuantization;
}

export interface TfliteOperator {
  opcodeIndex: number;
  inputs: number[];
  outputs: number[];
  /** Builtin options of the ops edgetune converts (strides, padding, fused activation, ...). */
  options: Record<string, number>;
}

export interface TfliteOpcode {
  builtinCode: number;
  customCode?: string;
  version: number;
}

export interface TfliteModel {
  version: number;
  description?: string;
  opcodes: TfliteOpcode[];
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
  /** Constant data per buffer index (empty for activations): views into the file. */
  buffers: Uint8Array[];
}

class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    private readonly where: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(why: string): never {
    throw new ModelError('TFLITE_MALFORMED', `${this.where}: not a valid TFLite model: ${why}`);
  }

  private check(offset: number, size: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.bytes.length) {
      this.fail(`offset ${offset} (+${size}) is outside the file (${this.bytes.length} bytes)`);
    }
  }

  u8(at: number): number {
    this.check(at, 1);
    return this.view.getUint8(at);
  }
  i32(at: number): number {
    this.check(at, 4);
    return this.view.getInt32(at, true);
  }
  u32(at: number): number {
    this.check(at, 4);
    return this.view.getUint32(at, true);
  }
  u16(at: number): number {
    this.check(at, 2);
    return this.view.getUint16(at, true);
  }
  f32(at: number): number {
    this.check(at, 4);
    return this.view.getFloat32(at, true);
  }
  i64(at: number): number {
    this.check(at, 8);
    return Number(this.view.getBigInt64(at, true));
  }

  /** Position of field `id` in the table at `table`, or 0 when absent. */
  field(table: number, id: number): number {
    const vtable = table - this.i32(table);
    const vtableSize = this.u16(vtable);
    const slot = 4 + 2 * id;
    if (slot >= vtableSize) return 0;
    const offset = this.u16(vtable + slot);
    return offset === 0 ? 0 : table + offset;
  }

  /** Follows a uoffset stored at `at`. */
  indirect(at: number): number {
    return at + this.u32(at);
  }

  /** Start and length of the vector referenced from `at`. */
  vector(at: number, elementSize: number): { start: number; length: number } {
    const base = this.indirect(at);
    const length = this.u32(base);
    this.check(base + 4, length * elementSize);
    return { start: base + 4, length };
  }

  string(at: number): string {
    const { start, length } = this.vector(at, 1);
    return new TextDecoder().decode(this.bytes.subarray(start, start + length));
  }

  tables(at: number): number[] {
    const { start, length } = this.vector(at, 4);
    return Array.from({ length }, (_, i) => this.indirect(start + 4 * i));
  }

  ints(at: number, read: 'i32' | 'i64' = 'i32'): number[] {
    const size = read === 'i32' ? 4 : 8;
    const { start, length } = this.vector(at, size);
    return Array.from({ length }, (_, i) => this[read](start + size * i));
  }

  floats(at: number): number[] {
    const { start, length } = this.vector(at, 4);
    return Array.from({ length }, (_, i) => this.f32(start + 4 * i));
  }
}

// Field ids from schema.fbs.
const MODEL = { version: 0, operatorCodes: 1, subgraphs: 2, description: 3, buffers: 4 };
const BUFFER = { data: 0, offset: 1, size: 2 };
const SUBGRAPH = { tensors: 0, inputs: 1, outputs: 2, operators: 3 };
const TENSOR = { shape: 0, type: 1, buffer: 2, name: 3, quantization: 4 };
const QUANT = { scale: 2, zeroPoint: 3, quantizedDimension: 6 };
const OPERATOR = { opcodeIndex: 0, inputs: 1, outputs: 2, builtinOptions: 4 };

/** Builtin op codes (schema.fbs BuiltinOperator) that edgetune knows by name. */
export const BUILTIN_OPS: Record<number, string> = {
  0: 'ADD',
  1: 'AVERAGE_POOL_2D',
  2: 'CONCATENATION',
  3: 'CONV_2D',
  4: 'DEPTHWISE_CONV_2D',
  6: 'DEQUANTIZE',
  9: 'FULLY_CONNECTED',
  14: 'LOGISTIC',
  17: 'MAX_POOL_2D',
  18: 'MUL',
  19: 'RELU',
  21: 'RELU6',
  22: 'RESHAPE',
  25: 'SOFTMAX',
  40: 'MEAN',
  114: 'QUANTIZE',
};

type FieldKind = 'u8' | 'i32' | 'f32';
/** Pool2DOptions, shared by both pooling ops. */
const POOL_2D_OPTIONS: [string, FieldKind, number][] = [
  ['padding', 'u8', 0],
  ['strideW', 'i32', 0],
  ['strideH', 'i32', 0],
  ['filterW', 'i32', 0],
  ['filterH', 'i32', 0],
  ['activation', 'u8', 0],
];
/** Builtin option tables: field name, kind and default, in schema field order. */
const OPTION_FIELDS: Record<string, [string, FieldKind, number][]> = {
  CONV_2D: [
    ['padding', 'u8', 0],
    ['strideW', 'i32', 0],
    ['strideH', 'i32', 0],
    ['activation', 'u8', 0],
    ['dilationW', 'i32', 1],
    ['dilationH', 'i32', 1],
  ],
  DEPTHWISE_CONV_2D: [
    ['padding', 'u8', 0],
    ['strideW', 'i32', 0],
    ['strideH', 'i32', 0],
    ['depthMultiplier', 'i32', 0],
    ['activation', 'u8', 0],
    ['dilationW', 'i32', 1],
    ['dilationH', 'i32', 1],
  ],
  AVERAGE_POOL_2D: POOL_2D_OPTIONS,
  MAX_POOL_2D: POOL_2D_OPTIONS,
  ADD: [['activation', 'u8', 0]],
  FULLY_CONNECTED: [['activation', 'u8', 0]],
  SOFTMAX: [['beta', 'f32', 0]],
  MEAN: [['keepDims', 'u8', 0]],
};
const OPCODE = { deprecatedBuiltinCode: 0, customCode: 1, version: 2, builtinCode: 3 };

export function readTfliteModel(bytes: Uint8Array, where: string): TfliteModel {
  const r = new Reader(bytes, where);
  if (bytes.length < 8) r.fail(`${bytes.length} bytes is too short`);
  const identifier = new TextDecoder().decode(bytes.subarray(4, 8));
  if (identifier !== 'TFL3') r.fail(`file identifier is "${identifier.replace(/[^\x20-\x7e]/g, '?')}", expected "TFL3"`);
  try {
    const root = r.indirect(0);
    const opt = <T>(at: number, read: (at: number) => T): T | undefined => (at === 0 ? undefined : read(at));
    const subgraphsAt = r.field(root, MODEL.subgraphs);
    if (subgraphsAt === 0) r.fail('no subgraphs');
    const subgraph = r.tables(subgraphsAt)[0] ?? r.fail('no subgraphs');
    const tensors = r
      .tables(r.field(subgraph, SUBGRAPH.tensors) || r.fail('subgraph has no tensors'))
      .map((t, index) => readTensor(r, t, index));
    const description = opt(r.field(root, MODEL.description), (at) => r.string(at));
    const model: TfliteModel = {
      version: opt(r.field(root, MODEL.version), (at) => r.u32(at)) ?? 0,
      opcodes: (opt(r.field(root, MODEL.operatorCodes), (at) => r.tables(at)) ?? []).map((o) => readOpcode(r, o)),
      tensors,
      inputs: opt(r.field(subgraph, SUBGRAPH.inputs), (at) => r.ints(at)) ?? [],
      outputs: opt(r.field(subgraph, SUBGRAPH.outputs), (at) => r.ints(at)) ?? [],
      operators: [],
      buffers: (opt(r.field(root, MODEL.buffers), (at) => r.tables(at)) ?? []).map((b) => readBuffer(r, b)),
      ...(description !== undefined ? { description } : {}),
    };
    model.operators = (opt(r.field(subgraph, SUBGRAPH.operators), (at) => r.tables(at)) ?? []).map((o) => {
      const opcodeIndex = opt(r.field(o, OPERATOR.opcodeIndex), (at) => r.u32(at)) ?? 0;
      const opName = BUILTIN_OPS[model.opcodes[opcodeIndex]?.builtinCode ?? -1];
      return {
        opcodeIndex,
        inputs: opt(r.field(o, OPERATOR.inputs), (at) => r.ints(at)) ?? [],
        outputs: opt(r.field(o, OPERATOR.outputs), (at) => r.ints(at)) ?? [],
        options: readOptions(r, r.field(o, OPERATOR.builtinOptions), OPTION_FIELDS[opName ?? ''] ?? []),
      };
    });
    for (const i of [...model.inputs, ...model.outputs]) {
      if (!model.tensors[i]) r.fail(`subgraph names tensor ${i}, but there are ${model.tensors.length}`);
    }
    return model;
  } catch (err) {
    if (err instanceof ModelError) throw err;
    return r.fail((err as Error).message);
  }
}

function readOptions(r: Reader, at: number, fields: [string, FieldKind, number][]): Record<string, number> {
  const options: Record<string, number> = {};
  const table = at === 0 ? 0 : r.indirect(at);
  fields.forEach(([name, kind, fallback], id) => {
    const f = table === 0 ? 0 : r.field(table, id);
    options[name] = f === 0 ? fallback : r[kind](f);
  });
  return options;
}

function readBuffer(r: Reader, table: number): Uint8Array {
  const data = r.field(table, BUFFER.data);
  if (data !== 0) {
    const { start, length } = r.vector(data, 1);
    return r.bytes.subarray(start, start + length);
  }
  // Models over 2 GB keep buffers after the flatbuffer, addressed by offset and size.
  const offset = r.field(table, BUFFER.offset) ? r.i64(r.field(table, BUFFER.offset)) : 0;
  const size = r.field(table, BUFFER.size) ? r.i64(r.field(table, BUFFER.size)) : 0;
  if (offset > 1 && size > 0) {
    if (offset + size > r.bytes.length) r.fail(`buffer at ${offset} (+${size}) is outside the file (${r.bytes.length} bytes)`);
    return r.bytes.subarray(offset, offset + size);
  }
  return new Uint8Array(0);
}

function readTensor(r: Reader, table: number, index: number): TfliteTensor {
  const at = (id: number) => r.field(table, id);
  const typeCode = at(TENSOR.type) ? r.u8(at(TENSOR.type)) : 0;
  const tensor: TfliteTensor = {
    index,
    name: at(TENSOR.name) ? r.string(at(TENSOR.name)) : '',
    shape: at(TENSOR.shape) ? r.ints(at(TENSOR.shape)) : [],
    type: TENSOR_TYPES[typeCode] ?? `UNKNOWN_${typeCode}`,
    buffer: at(TENSOR.buffer) ? r.u32(at(TENSOR.buffer)) : 0,
  };
  if (at(TENSOR.quantization)) {
    const q = r.indirect(at(TENSOR.quantization));
    const scale = r.field(q, QUANT.scale) ? r.floats(r.field(q, QUANT.scale)) : [];
    if (scale.length > 0) {
      tensor.quantization = {
        scale,
        zeroPoint: r.field(q, QUANT.zeroPoint) ? r.ints(r.field(q, QUANT.zeroPoint), 'i64') : [],
        quantizedDimension: r.field(q, QUANT.quantizedDimension) ? r.i32(r.field(q, QUANT.quantizedDimension)) : 0,
      };
    }
  }
  return tensor;
}

function readOpcode(r: Reader, table: number): TfliteOpcode {
  const at = (id: number) => r.field(table, id);
  const deprecated = at(OPCODE.deprecatedBuiltinCode) ? r.u8(at(OPCODE.deprecatedBuiltinCode)) : 0;
  const builtin = at(OPCODE.builtinCode) ? r.i32(at(OPCODE.builtinCode)) : 0;
  const custom = at(OPCODE.customCode) ? r.string(at(OPCODE.customCode)) : undefined;
  return {
    // Files from before 2.4 only have the deprecated int8 field; newer ones may have both.
    builtinCode: Math.max(deprecated, builtin),
    version: at(OPCODE.version) ? r.i32(at(OPCODE.version)) : 1,
    ...(custom !== undefined ? { customCode: custom } : {}),
  };
}

export function findTensor(model: TfliteModel, name: string): TfliteTensor | undefined {
  return model.tensors.find((t) => t.name === name);
}
