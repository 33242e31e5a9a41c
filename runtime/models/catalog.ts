// Known backbones and classifiers: where they come from, their checksums and how to feed them.
// The files are Google Coral's public test data (Apache-2.0).

import type { ModelManifest } from './manifest.js';

const CORAL = 'https://github.com/google-coral/test_data/raw/master';
const LICENSE = 'Apache-2.0 (Google Coral test data)';

/** 224x224 RGB uint8, real = (q - 128) / 128, i.e. pixels mapped to [-1, 1]. */
const MOBILENET_224_INPUT = {
  width: 224,
  height: 224,
  channels: 3,
  layout: 'NHWC',
  dtype: 'uint8',
  quantization: { scale: 0.0078125, zeroPoint: 128 },
} as const;

export const DEFAULT_BACKBONE_ID = 'mobilenet_v1_1.0_224_quant_embedding_extractor';

export const CATALOG: readonly ModelManifest[] = [
  {
    id: DEFAULT_BACKBONE_ID,
    description: 'MobileNet V1 1.0 224 int8, ImageNet-trained, classifier removed: 1024-d embeddings (default)',
    format: 'tflite',
    file: 'mobilenet_v1_1.0_224_quant_embedding_extractor.tflite',
    sha256: 'f409ef4f73fcbb9667841965623c5c8524aac33d41b9bf5f3667161fb4a76319',
    bytes: 3251736,
    input: MOBILENET_224_INPUT,
    output: {
      name: 'MobilenetV1/Logits/AvgPool_1a/AvgPool',
      kind: 'embedding',
      dim: 1024,
      quantization: { scale: 0.0235285, zeroPoint: 0 },
    },
    resize: 'fill',
    license: LICENSE,
    source: `${CORAL}/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite`,
  },
  {
    id: 'mobilenet_v2_1.0_224_quant',
    description: 'MobileNet V2 1.0 224 ImageNet classifier, quantization-aware trained',
    format: 'tflite',
    file: 'mobilenet_v2_1.0_224_quant.tflite',
    sha256: '7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776',
    bytes: 3610798,
    input: MOBILENET_224_INPUT,
    output: {
      name: 'MobilenetV2/Predictions/Softmax',
      kind: 'probabilities',
      dim: 1001,
      quantization: { scale: 0.00390625, zeroPoint: 0 },
    },
    resize: 'fill',
    labels: 'imagenet_labels.txt',
    license: LICENSE,
    source: `${CORAL}/mobilenet_v2_1.0_224_quant.tflite`,
  },
  {
    id: 'tf2_mobilenet_v2_1.0_224_ptq',
    description: 'MobileNet V2 1.0 224 ImageNet classifier, TF2 post-training quantization (per-channel)',
    format: 'tflite',
    file: 'tf2_mobilenet_v2_1.0_224_ptq.tflite',
    sha256: '5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c',
    bytes: 4070174,
    input: { ...MOBILENET_224_INPUT, quantization: { scale: 0.0078431, zeroPoint: 127 } },
    output: {
      name: 'Identity',
      kind: 'probabilities',
      dim: 1001,
      quantization: { scale: 0.00390625, zeroPoint: 0 },
    },
    resize: 'fill',
    labels: 'imagenet_labels.txt',
    license: LICENSE,
    source: `${CORAL}/tf2_mobilenet_v2_1.0_224_ptq.tflite`,
  },
  {
    id: 'mobilenet_v1_0.25_128_quant',
    description: 'MobileNet V1 0.25 128 ImageNet classifier (tiny, for fast tests)',
    format: 'tflite',
    file: 'mobilenet_v1_0.25_128_quant.tflite',
    sha256: 'cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785',
    bytes: 525598,
    input: { ...MOBILENET_224_INPUT, width: 128, height: 128 },
    output: {
      name: 'MobilenetV1/Predictions/Reshape_1',
      kind: 'probabilities',
      dim: 1001,
      quantization: { scale: 0.00390625, zeroPoint: 0 },
    },
    resize: 'fill',
    labels: 'imagenet_labels.txt',
    license: LICENSE,
    source: `${CORAL}/mobilenet_v1_0.25_128_quant.tflite`,
  },
];

export function catalogEntry(idOrFile: string, catalog: readonly ModelManifest[] = CATALOG): ModelManifest | undefined {
  return catalog.find((m) => m.id === idOrFile || m.file === idOrFile);
}

/** Labels files that classifiers in the catalog refer to. */
export const LABEL_FILES: Readonly<Record<string, { sha256: string; source: string }>> = {
  'imagenet_labels.txt': {
    sha256: 'b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1',
    source: `${CORAL}/imagenet_labels.txt`,
  },
};
