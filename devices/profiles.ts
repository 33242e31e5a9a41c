// Device profiles: what each kind of board can afford. The agent takes engine, threads, batch size and
// queue limits from the profile unless the config says otherwise. Numbers are chosen for the board's
// smallest memory option (a 1 GiB Pi must not swap). onnxruntime (TFLite models imported to ONNX) is the
// engine wherever it has a build; 32-bit ARM runs the TFLite WASM engine, with its own thread layout.

import type { EngineName } from '../core/platform.js';

export interface ThreadLayout {
  /** Inference worker threads, and intra-op threads per worker. */
  workers: number;
  threads: number;
}

export interface DeviceProfile {
  id: string;
  name: string;
  /** The engine this board runs (detection turns 'onnx' into 'tflite' where onnxruntime has no build). */
  engine: EngineName;
  /** The thread layout for `engine`. */
  workers: number;
  threads: number;
  /** Thread layouts per engine. */
  layouts: Record<EngineName, ThreadLayout>;
  batchSize: number;
  /** Images waiting to be embedded before the drop policy applies. */
  queueLimit: number;
  maxImagePixels: number;
  /**
   * false leaves small JPEGs to sharp instead of the WebAssembly decoder (runtime/image/small-jpeg.ts):
   * the decoder saves about 1.2 ms of CPU per small photo and costs about 8 MiB of resident memory.
   */
  smallJpegDecoder?: boolean;
  retention: { maxSamples: number; maxBytes: number };
  why: string;
}

const GiB = 2 ** 30;

export const PROFILES: readonly DeviceProfile[] = [
  {
    id: 'rpi-zero-2w',
    name: 'Raspberry Pi Zero 2 W',
    engine: 'onnx',
    workers: 1,
    threads: 4,
    layouts: { onnx: { workers: 1, threads: 4 }, tflite: { workers: 1, threads: 1 } },
    batchSize: 1,
    queueLimit: 8,
    maxImagePixels: 16_000_000,
    smallJpegDecoder: false,
    retention: { maxSamples: 5_000, maxBytes: 1 * GiB },
    why: '512 MiB RAM: one inference worker, a tiny queue, sharp decodes every photo (memory before CPU); on a 32-bit OS the TFLite engine on one thread',
  },
  {
    id: 'rpi-3',
    name: 'Raspberry Pi 3',
    engine: 'onnx',
    workers: 1,
    threads: 4,
    layouts: { onnx: { workers: 1, threads: 4 }, tflite: { workers: 1, threads: 1 } },
    batchSize: 2,
    queueLimit: 16,
    maxImagePixels: 24_000_000,
    retention: { maxSamples: 10_000, maxBytes: 2 * GiB },
    why: '1 GiB RAM, often a 32-bit OS (then TFLite on one worker): leave memory and cores for the OS, camera and HTTP',
  },
  {
    id: 'rpi-4',
    name: 'Raspberry Pi 4',
    engine: 'onnx',
    workers: 1,
    threads: 4,
    layouts: { onnx: { workers: 1, threads: 4 }, tflite: { workers: 2, threads: 1 } },
    batchSize: 4,
    queueLimit: 32,
    maxImagePixels: 40_000_000,
    retention: { maxSamples: 20_000, maxBytes: 4 * GiB },
    why: '4 Cortex-A72 cores, 1-8 GiB: one onnxruntime session on all cores; TFLite fallback: two single-thread workers',
  },
  {
    id: 'rpi-5',
    name: 'Raspberry Pi 5',
    engine: 'onnx',
    workers: 1,
    threads: 4,
    layouts: { onnx: { workers: 1, threads: 4 }, tflite: { workers: 2, threads: 2 } },
    batchSize: 8,
    queueLimit: 64,
    maxImagePixels: 64_000_000,
    retention: { maxSamples: 50_000, maxBytes: 8 * GiB },
    why: '4 Cortex-A76 cores, 4-8 GiB',
  },
  {
    id: 'jetson-nano',
    name: 'NVIDIA Jetson Nano',
    engine: 'onnx',
    workers: 1,
    threads: 4,
    layouts: { onnx: { workers: 1, threads: 4 }, tflite: { workers: 2, threads: 1 } },
    batchSize: 4,
    queueLimit: 32,
    maxImagePixels: 40_000_000,
    retention: { maxSamples: 20_000, maxBytes: 8 * GiB },
    why: '4 Cortex-A57 cores, 4 GiB: CPU onnxruntime (no GPU build is assumed)',
  },
  {
    id: 'jetson-orin',
    name: 'NVIDIA Jetson Orin',
    engine: 'onnx',
    workers: 1,
    threads: 6,
    layouts: { onnx: { workers: 1, threads: 6 }, tflite: { workers: 2, threads: 2 } },
    batchSize: 16,
    queueLimit: 128,
    maxImagePixels: 64_000_000,
    retention: { maxSamples: 100_000, maxBytes: 32 * GiB },
    why: '6-12 Cortex-A78AE cores, 8-64 GiB: onnxruntime on arm64',
  },
  {
    id: 'generic-x64',
    name: 'Generic x86-64 Linux',
    engine: 'onnx',
    workers: 1,
    threads: 8,
    layouts: { onnx: { workers: 1, threads: 8 }, tflite: { workers: 2, threads: 1 } },
    batchSize: 8,
    queueLimit: 64,
    maxImagePixels: 64_000_000,
    retention: { maxSamples: 100_000, maxBytes: 32 * GiB },
    why: 'onnxruntime on all cores (capped to the cores there are)',
  },
  {
    id: 'generic-arm64',
    name: 'Generic 64-bit ARM Linux',
    engine: 'onnx',
    workers: 1,
    threads: 8,
    layouts: { onnx: { workers: 1, threads: 8 }, tflite: { workers: 2, threads: 1 } },
    batchSize: 4,
    queueLimit: 32,
    maxImagePixels: 40_000_000,
    retention: { maxSamples: 20_000, maxBytes: 4 * GiB },
    why: 'unknown ARM board: onnxruntime on all cores, middle-of-the-road queue',
  },
  {
    id: 'generic-armv7',
    name: 'Generic 32-bit ARM Linux',
    engine: 'tflite',
    workers: 1,
    threads: 1,
    layouts: { onnx: { workers: 1, threads: 1 }, tflite: { workers: 1, threads: 1 } },
    batchSize: 1,
    queueLimit: 8,
    maxImagePixels: 16_000_000,
    retention: { maxSamples: 5_000, maxBytes: 1 * GiB },
    why: 'onnxruntime-node ships no 32-bit ARM binary: TFLite WASM only',
  },
];

export function profileById(id: string): DeviceProfile | undefined {
  return PROFILES.find((p) => p.id === id);
}
