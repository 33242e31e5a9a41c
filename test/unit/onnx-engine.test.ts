import { describe, expect, it } from 'vitest';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { createOnnxSession } from '../../runtime/backbone/onnx-engine.js';
import { ModelError } from '../../core/errors.js';
import { channelMeanModel, manifestFor } from '../support/onnx-graphs.js';

const SIZE = 4;

function image(r: number, g: number, b: number): Uint8Array {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let p = 0; p < SIZE * SIZE; p++) data.set([r, g, b], p * 3);
  return data;
}

describe('ONNX engine', () => {
  it('runs a batch through a dynamic-batch graph and returns one vector per image', async () => {
    const bytes = channelMeanModel({ size: SIZE, scale: 0.5 });
    const session = await createOnnxSession(bytes, manifestFor(bytes, SIZE), { threads: 1 });
    const input = new Uint8Array([...image(10, 20, 30), ...image(200, 100, 0)]);
    const out = await session.run(input, 2);
    expect(Array.from(out)).toEqual([5, 10, 15, 100, 50, 0]);
    session.close();
  });

  it('loops over images when the graph has a fixed batch of 1', async () => {
    const bytes = channelMeanModel({ size: SIZE, batch: 1 });
    const session = await createOnnxSession(bytes, manifestFor(bytes, SIZE), { threads: 1 });
    const out = await session.run(new Uint8Array([...image(1, 2, 3), ...image(4, 5, 6), ...image(7, 8, 9)]), 3);
    expect(Array.from(out)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    session.close();
  });

  it('dequantizes integer outputs with the manifest quantization', async () => {
    // Same graph, but we read the float "pixels" tensor as if quantized: scale applies only to integer
    // outputs, so a float output is copied unchanged.
    const bytes = channelMeanModel({ size: SIZE });
    const manifest = manifestFor(bytes, SIZE, {
      output: { name: 'embedding', kind: 'embedding', dim: 3, quantization: { scale: 2, zeroPoint: 1 } },
    });
    const session = await createOnnxSession(bytes, manifest, { threads: 1 });
    expect(Array.from(await session.run(image(4, 4, 4), 1))).toEqual([4, 4, 4]);
    session.close();
  });

  it('names the missing tensor when the manifest output does not exist', async () => {
    const bytes = channelMeanModel({ size: SIZE });
    const manifest = manifestFor(bytes, SIZE, { output: { name: 'features', kind: 'embedding', dim: 3 } });
    const error = await createOnnxSession(bytes, manifest, { threads: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('OUTPUT_NOT_FOUND');
    expect((error as ModelError).message).toMatch(/"features".*outputs: embedding, pixels/);
  });

  it('refuses a manifest whose input dtype differs from the graph', async () => {
    const bytes = channelMeanModel({ size: SIZE });
    const manifest = manifestFor(bytes, SIZE);
    manifest.input.dtype = 'float32';
    const error = await createOnnxSession(bytes, manifest, { threads: 1 }).catch((e: unknown) => e);
    expect((error as ModelError).code).toBe('INPUT_MISMATCH');
  });

  it('gives a clear error for bytes that are not an ONNX model', async () => {
    const bytes = new TextEncoder().encode('<html>not a model</html>');
    const error = await createOnnxSession(bytes, manifestFor(bytes, SIZE), { threads: 1 }).catch((e: unknown) => e);
    expect((error as ModelError).code).toBe('MODEL_INVALID');
    expect((error as ModelError).message).toContain('channel_mean.onnx');
  });
});

describe('Backbone worker pool on ORT', () => {
  it('embeds concurrent requests in worker threads and keeps results in order', async () => {
    const bytes = channelMeanModel({ size: SIZE });
    const manifest = manifestFor(bytes, SIZE);
    const backbone = await Backbone.open({ manifest, bytes, path: 'mem', location: 'path' }, { workers: 2, threads: 1, batchSize: 3 });
    try {
      expect(backbone.dim).toBe(3);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => backbone.embed(image(i, 2 * i, 3 * i))));
      results.forEach((r, i) => expect(Array.from(r)).toEqual([i, 2 * i, 3 * i]));
    } finally {
      await backbone.close();
    }
  });

  it('rejects an input of the wrong size without disturbing other requests', async () => {
    const bytes = channelMeanModel({ size: SIZE });
    const backbone = await Backbone.open({
      manifest: manifestFor(bytes, SIZE),
      bytes,
      path: 'mem',
      location: 'path',
    });
    try {
      const bad = backbone.embed(new Uint8Array(5));
      const good = backbone.embed(image(9, 9, 9));
      await expect(bad).rejects.toMatchObject({ code: 'INPUT_MISMATCH' });
      expect(Array.from(await good)).toEqual([9, 9, 9]);
    } finally {
      await backbone.close();
    }
  });

  it('rejects embeds after close', async () => {
    const bytes = channelMeanModel({ size: SIZE });
    const backbone = await Backbone.open({
      manifest: manifestFor(bytes, SIZE),
      bytes,
      path: 'mem',
      location: 'path',
    });
    await backbone.close();
    await expect(backbone.embed(image(1, 1, 1))).rejects.toMatchObject({ code: 'BACKBONE_CLOSED' });
  });
});
