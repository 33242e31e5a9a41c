import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { createTfliteSession } from '../../runtime/backbone/tflite-engine.js';
import { ModelError } from '../../core/errors.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { catalogEntry } from '../../runtime/models/catalog.js';
import { loadLabels, resolveModel } from '../../runtime/models/resolve.js';
import { IMAGES_DIR, MODEL_DIR, modelPath } from '../support/paths.js';

const V2 = catalogEntry('mobilenet_v2_1.0_224_quant')!;
const TINY = catalogEntry('mobilenet_v1_0.25_128_quant')!;

describe('TFLite engine', () => {
  it('runs the V2 classifier: 1001 dequantized probabilities in [0, 1]', async () => {
    const session = await createTfliteSession(readFileSync(modelPath(V2.file)), V2, { threads: 1 });
    const grey = new Uint8Array(224 * 224 * 3).fill(128);
    const out = session.run(grey, 1) as Float32Array;
    expect(out).toHaveLength(1001);
    // Quantized with scale 1/256: a flat distribution rounds many small probabilities down to 0.
    expect(out.every((p) => p >= 0 && p <= 1)).toBe(true);
    expect(out.reduce((a, b) => a + b, 0)).toBeGreaterThan(0.5);
    expect(out.reduce((a, b) => a + b, 0)).toBeLessThan(1.05);
    expect(out.every((p) => Number.isInteger(p * 256))).toBe(true);
    session.close();
  });

  it('runs a batch as separate images with the same results as one by one', async () => {
    const session = await createTfliteSession(readFileSync(modelPath(TINY.file)), TINY, { threads: 1 });
    const a = new Uint8Array(128 * 128 * 3).fill(30);
    const b = new Uint8Array(128 * 128 * 3).map((_, i) => i % 251);
    const batch = session.run(new Uint8Array([...a, ...b]), 2) as Float32Array;
    expect(Array.from(batch.subarray(0, 1001))).toEqual(Array.from(session.run(a, 1) as Float32Array));
    expect(Array.from(batch.subarray(1001))).toEqual(Array.from(session.run(b, 1) as Float32Array));
    session.close();
  });

  it('names the tensor when the manifest output does not exist', async () => {
    const manifest = { ...TINY, output: { ...TINY.output, name: 'MobilenetV1/Logits/AvgPool_1a/AvgPool' } };
    const error = await createTfliteSession(readFileSync(modelPath(TINY.file)), manifest, {
      threads: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('OUTPUT_NOT_FOUND');
    expect((error as ModelError).message).toMatch(
      /"MobilenetV1\/Logits\/AvgPool_1a\/AvgPool"; outputs: MobilenetV1\/Predictions\/Reshape_1/,
    );
  });

  it('refuses a manifest whose input size differs from the model', async () => {
    const manifest = { ...TINY, input: { ...TINY.input, width: 224, height: 224 } };
    const error = await createTfliteSession(readFileSync(modelPath(TINY.file)), manifest, {
      threads: 1,
    }).catch((e: unknown) => e);
    expect((error as ModelError).code).toBe('INPUT_MISMATCH');
    expect((error as ModelError).message).toMatch(/input "input" is uint8 \[1,128,128,3\]/);
  });

  it('a file that is not a model is a clear error and the engine stays usable', async () => {
    const junk = new TextEncoder().encode('<!doctype html><p>captive portal</p>'.repeat(20));
    const error = await createTfliteSession(junk, TINY, { threads: 1 }).catch((e: unknown) => e);
    expect((error as ModelError).code).toBe('TFLITE_MALFORMED');
    expect((error as ModelError).message).toContain(TINY.file);
    const truncated = readFileSync(modelPath(TINY.file)).subarray(0, 100_000);
    expect((await createTfliteSession(truncated, TINY, { threads: 1 }).catch((e: unknown) => e)) as ModelError).toBeInstanceOf(ModelError);
    const ok = await createTfliteSession(readFileSync(modelPath(TINY.file)), TINY, { threads: 1 });
    ok.close();
  });
});

describe('classification of the sample photos (mobilenet_v2_1.0_224_quant)', () => {
  it('cat.bmp is an Egyptian cat, grace_hopper.bmp a military uniform, hot_dog.jpg a hotdog', async () => {
    const model = await resolveModel(V2.id, { modelDir: MODEL_DIR });
    const labels = await loadLabels(model, { modelDir: MODEL_DIR });
    const backbone = await Backbone.open(model, { workers: 1 });
    try {
      const expected: Record<string, [string, number]> = {
        'cat.bmp': ['Egyptian cat', 0.74],
        'grace_hopper.bmp': ['military uniform', 0.91],
        'hot_dog.jpg': ['hotdog, hot dog, red hot', 0.93],
      };
      for (const [file, [label, score]] of Object.entries(expected)) {
        const input = await preprocessFile(join(IMAGES_DIR, file), model.manifest.input, { resize: 'fill' });
        const probabilities = await backbone.embed(input);
        const top = probabilities.indexOf(Math.max(...probabilities));
        expect(labels[top], file).toBe(label);
        expect(probabilities[top]!, file).toBeCloseTo(score, 1);
      }
    } finally {
      await backbone.close();
    }
  });
});

describe('TFLite engine, threaded build', () => {
  it('gives the same embeddings on 2 threads as on 1, through the worker pool', async () => {
    const model = await resolveModel('mobilenet_v1_1.0_224_quant_embedding_extractor', { modelDir: MODEL_DIR });
    const inputs = await Promise.all(
      ['cat.bmp', 'hot_dog.jpg'].map((f) => preprocessFile(join(IMAGES_DIR, f), model.manifest.input, { resize: model.manifest.resize })),
    );
    const embed = async (threads: number) => {
      const backbone = await Backbone.open(model, { workers: 1, threads });
      try {
        return await Promise.all(inputs.map((i) => backbone.embed(i.slice())));
      } finally {
        await backbone.close();
      }
    };
    const [one, two] = [await embed(1), await embed(2)];
    // Integer arithmetic inside: the threaded build gives the same bytes, not merely close values.
    expect(two.map((e) => Array.from(e))).toEqual(one.map((e) => Array.from(e)));
    expect(one[0]!.some((v) => v !== 0)).toBe(true);
  });

  it('its pthread pool does not keep the process alive', () => {
    // A process that opens a 2-thread session and never closes it must still exit by itself.
    const script = `
      import { readFileSync } from 'node:fs';
      const { createTfliteSession } = await import(${JSON.stringify(new URL('../../runtime/backbone/tflite-engine.ts', import.meta.url).href)});
      const { catalogEntry } = await import(${JSON.stringify(new URL('../../runtime/models/catalog.ts', import.meta.url).href)});
      const entry = catalogEntry('mobilenet_v1_0.25_128_quant');
      const session = await createTfliteSession(readFileSync(${JSON.stringify(MODEL_DIR)} + '/' + entry.file), entry, { threads: 2 });
      const out = session.run(new Uint8Array(128 * 128 * 3).fill(100), 1);
      console.log('ran', out.length);`;
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('ran 1001');
    expect(result.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
