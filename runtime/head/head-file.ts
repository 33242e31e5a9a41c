// The head file: one versioned binary format for disk and the wire (docs/formats/head-file.md).
//
//   magic "ETHD" | format u16 | encoding u16 (0 float32, 1 int8) | header length u32 | header JSON (UTF-8)
//   | weights | bias: classes x f32 | class means (format 2, when the header says so) | sha256 of everything before (32 bytes)
//
// weights and class means, float32: classes x dim f32.  int8: per row, scale f32 then dim x i8 (w = scale * q, symmetric).
// All numbers little-endian. Format 1 (no open set) is still read.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { type ErrorCode, HeadError } from '../../core/errors.js';
import { writeDurably } from '../../core/durable.js';
import { parseWith } from '../../core/schema.js';
import { Head, type HeadMeta, firstNonFinite } from './head.js';
import { OPEN_SET_SCORE } from './open-set.js';

const MAGIC = 0x44485445; // "ETHD" little-endian
export const HEAD_FORMAT_VERSION = 2;
const READABLE_FORMATS = [1, 2];
const PREAMBLE = 12;
const HASH = 32;

export type WeightEncoding = 'float32' | 'int8';

const HeaderSchema = z.object({
  kind: z.enum(['prototype', 'softmax']),
  backboneId: z.string().min(1),
  dim: z.number().int().positive(),
  labels: z.array(z.string().min(1)).min(1),
  counts: z.array(z.number().int().min(0)),
  version: z.number().int().min(0),
  parent: z.number().int().min(0).nullable(),
  metrics: z.record(z.string(), z.number()),
  createdAt: z.string(),
  power: z.number().positive(),
  temperature: z.number().positive(),
  normalize: z.boolean(),
  norms: z.array(z.number()).optional(),
  openSet: z
    .object({
      score: z.literal(OPEN_SET_SCORE),
      threshold: z.number().min(0).max(2),
      unknownRate: z.number().gt(0).lt(1),
      samples: z.number().int().positive(),
    })
    .optional(),
  /** Format 2: a class-mean block follows the bias. */
  classMeans: z.boolean().optional(),
});

export interface DecodeExpectations {
  /** Names the file or message in errors. */
  where?: string;
  backboneId?: string;
  dim?: number;
  /** Leave non-finite numbers to the caller: the console's door refuses them itself, naming the device. */
  allowNonFinite?: boolean;
}

export function encodeHead(head: Head, encoding: WeightEncoding = 'float32'): Uint8Array {
  // Through the schema so keys come out in one canonical order: equal heads give equal bytes.
  const header = Buffer.from(JSON.stringify(HeaderSchema.parse({ ...head.meta, classMeans: head.means !== undefined })), 'utf8');
  const k = head.labels.length;
  const d = head.meta.dim;
  const matrixBytes = encoding === 'float32' ? k * d * 4 : k * (4 + d);
  const out = Buffer.alloc(PREAMBLE + header.length + matrixBytes * (head.means ? 2 : 1) + k * 4 + HASH);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt16LE(HEAD_FORMAT_VERSION, 4);
  out.writeUInt16LE(encoding === 'float32' ? 0 : 1, 6);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, PREAMBLE);
  let at = writeMatrix(out, PREAMBLE + header.length, head.weights, k, d, encoding);
  for (let c = 0; c < k; c++, at += 4) out.writeFloatLE(head.bias[c]!, at);
  if (head.means) at = writeMatrix(out, at, head.means, k, d, encoding);
  createHash('sha256').update(out.subarray(0, at)).digest().copy(out, at);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Writes [k, d] values at `at` in the encoding; returns the offset after them. */
function writeMatrix(out: Buffer, at: number, values: Float32Array, k: number, d: number, encoding: WeightEncoding): number {
  for (let c = 0; c < k; c++) {
    const row = values.subarray(c * d, (c + 1) * d);
    if (encoding === 'float32') {
      for (let j = 0; j < d; j++, at += 4) out.writeFloatLE(row[j]!, at);
    } else {
      let max = 0;
      for (let j = 0; j < d; j++) max = Math.max(max, Math.abs(row[j]!));
      const scale = max > 0 ? max / 127 : 1;
      out.writeFloatLE(scale, at);
      at += 4;
      for (let j = 0; j < d; j++, at++) out.writeInt8(Math.max(-127, Math.min(127, Math.round(row[j]! / scale))), at);
    }
  }
  return at;
}

/** Reads [k, d] values written by writeMatrix. */
function readMatrix(buf: Buffer, at: number, k: number, d: number, int8: boolean): { values: Float32Array; end: number } {
  const values = new Float32Array(k * d);
  for (let c = 0; c < k; c++) {
    if (!int8) {
      for (let j = 0; j < d; j++, at += 4) values[c * d + j] = buf.readFloatLE(at);
    } else {
      const scale = buf.readFloatLE(at);
      at += 4;
      for (let j = 0; j < d; j++, at++) values[c * d + j] = scale * buf.readInt8(at);
    }
  }
  return { values, end: at };
}

export function decodeHead(bytes: Uint8Array, expect: DecodeExpectations = {}): Head {
  const where = expect.where ?? 'head';
  const fail = (code: ErrorCode, why: string): never => {
    throw new HeadError(code, `${where}: ${why}`);
  };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREAMBLE + HASH) fail('HEAD_TRUNCATED', `${buf.length} bytes is too short for a head file`);
  if (buf.readUInt32LE(0) !== MAGIC) fail('HEAD_NOT_A_HEAD', 'not an edgetune head file (wrong magic bytes)');
  const format = buf.readUInt16LE(4);
  if (!READABLE_FORMATS.includes(format)) {
    fail('HEAD_FORMAT_UNSUPPORTED', `head format version ${format}; this edgetune reads versions ${READABLE_FORMATS.join(' and ')}`);
  }
  const encodingCode = buf.readUInt16LE(6);
  if (encodingCode > 1) fail('HEAD_INVALID', `unknown weight encoding ${encodingCode}`);
  const headerLength = buf.readUInt32LE(8);
  if (PREAMBLE + headerLength + HASH > buf.length) fail('HEAD_TRUNCATED', `header of ${headerLength} bytes runs past the end of the file`);
  const body = buf.subarray(0, buf.length - HASH);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - HASH))) fail('HEAD_CHECKSUM', 'checksum mismatch: the file is damaged or truncated');
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8', PREAMBLE, PREAMBLE + headerLength));
  } catch {
    fail('HEAD_INVALID', 'header is not valid JSON');
  }
  const { classMeans, ...meta } = parseWith(HeaderSchema, json, where, HeadError, 'HEAD_INVALID') as HeadMeta & { classMeans?: boolean };
  if (format === 1 && (classMeans || meta.openSet)) fail('HEAD_INVALID', 'a format 1 head has no open set');
  if (expect.backboneId !== undefined && meta.backboneId !== expect.backboneId) {
    fail('HEAD_BACKBONE_MISMATCH', `head was trained on backbone "${meta.backboneId}" (dim ${meta.dim}), not "${expect.backboneId}"`);
  }
  if (expect.dim !== undefined && meta.dim !== expect.dim) {
    fail('HEAD_BACKBONE_MISMATCH', `head takes ${meta.dim}-d embeddings, the backbone gives ${expect.dim}`);
  }
  const k = meta.labels.length;
  const d = meta.dim;
  const matrixBytes = encodingCode === 0 ? k * d * 4 : k * (4 + d);
  if (PREAMBLE + headerLength + matrixBytes * (classMeans ? 2 : 1) + k * 4 !== body.length) {
    fail(
      'HEAD_INVALID',
      `${body.length - PREAMBLE - headerLength} weight bytes for ${k} classes x ${d} dims${classMeans ? ' with class means' : ''}`,
    );
  }
  const int8 = encodingCode === 1;
  const { values: weights, end } = readMatrix(buf, PREAMBLE + headerLength, k, d, int8);
  let at = end;
  const bias = new Float32Array(k);
  for (let c = 0; c < k; c++, at += 4) bias[c] = buf.readFloatLE(at);
  const means = classMeans ? readMatrix(buf, at, k, d, int8).values : undefined;
  try {
    // A NaN or infinite weight makes every answer NaN: refuse the head rather than predict nonsense.
    const bad = expect.allowNonFinite ? undefined : (firstNonFinite(weights) ?? firstNonFinite(bias, 'bias'));
    if (bad) throw new HeadError('HEAD_NOT_FINITE', `${bad.value} in ${bad.where}: a head's numbers must be finite`);
    return new Head(meta, weights, bias, means);
  } catch (err) {
    return fail('HEAD_INVALID', (err as Error).message);
  }
}

/** Which encoding a head file uses, without decoding it. */
export function headEncoding(bytes: Uint8Array): WeightEncoding {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt16LE(6) === 1 ? 'int8' : 'float32';
}

/** Crash-safe save: temp file, fsync, rename. */
export function saveHead(path: string, head: Head, encoding: WeightEncoding = 'float32'): void {
  writeDurably(path, encodeHead(head, encoding));
}

export function loadHead(path: string, expect: Omit<DecodeExpectations, 'where'> = {}): Head {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new HeadError('HEAD_UNREADABLE', `${path}: cannot read head file: ${(err as Error).message}`);
  }
  return decodeHead(bytes, { ...expect, where: path });
}

export type { HeadMeta };
