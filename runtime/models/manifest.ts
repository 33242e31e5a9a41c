// A model is a file plus this manifest: what goes in, which output is the embedding, where it came from.
// Manifests are JSON files (`<model file>.json`) beside the model, or entries in the built-in catalog.

import { z } from 'zod';
import { ModelError } from '../../core/errors.js';
import { parseWith } from '../../core/schema.js';

/** real = scale * (q - zeroPoint) */
const QuantizationSchema = z.object({
  scale: z.number().positive(),
  zeroPoint: z.number().int(),
});

const Triple = z.tuple([z.number(), z.number(), z.number()]);

/** A file beside the manifest: a name, never a path that could reach outside the model's folder. */
const FileName = z
  .string()
  .min(1)
  .refine(
    (name) => !/[/\\\0]/.test(name) && name !== '.' && name !== '..',
    'must be a file name beside the manifest, without folders or ..',
  );

export const ModelManifestSchema = z.object({
  /** Stable id; heads record it and refuse to load on another backbone. */
  id: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash or underscore'),
  format: z.enum(['tflite', 'onnx']),
  /** File name, relative to the manifest's folder or the model directory. */
  file: FileName,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
  bytes: z.number().int().positive().optional(),
  input: z.object({
    /** Tensor name in the model; the first input when absent. */
    name: z.string().optional(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    channels: z.literal(3),
    layout: z.enum(['NHWC', 'NCHW']),
    /**
     * float32: value = (pixel - mean[c]) / std[c], pixel in 0..255. uint8 takes raw pixels, int8 takes
     * pixel - 128; `quantization` records what the model makes of them.
     */
    dtype: z.enum(['uint8', 'int8', 'float32']),
    mean: Triple.optional(),
    std: Triple.refine((s) => s.every((x) => x !== 0), 'std must be non-zero').optional(),
    quantization: QuantizationSchema.optional(),
  }),
  output: z.object({
    /** Tensor name in the model. */
    name: z.string().min(1),
    kind: z.enum(['embedding', 'probabilities', 'logits']),
    /** Embedding dimension, or the number of classes for classifiers. */
    dim: z.number().int().positive(),
    quantization: QuantizationSchema.optional(),
  }),
  /** fill: stretch the whole image to the input size; crop: centre crop to the input aspect first. */
  resize: z.enum(['fill', 'crop']).default('fill'),
  /** Classifiers: labels file (one per line, line index = class index), beside the model. */
  labels: FileName.optional(),
  license: z.string().min(1),
  source: z.string().min(1),
  description: z.string().optional(),
});

export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type ModelInput = ModelManifest['input'];
export type ModelOutput = ModelManifest['output'];
export type Quantization = z.infer<typeof QuantizationSchema>;
export type ResizePolicy = ModelManifest['resize'];

/** Validates parsed JSON as a manifest; `where` names the file in errors. */
export function parseManifest(value: unknown, where: string): ModelManifest {
  return parseWith(ModelManifestSchema, value, where, ModelError, 'MANIFEST_INVALID');
}

/** Number of elements in one input image tensor. */
export function inputSize(input: ModelInput): number {
  return input.width * input.height * input.channels;
}
