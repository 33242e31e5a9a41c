import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createOnnxSession } from '../../runtime/backbone/onnx-engine.js';
import { createTfliteSession } from '../../runtime/backbone/tflite-engine.js';
import type { EngineSession } from '../../runtime/backbone/engine.js';
import { cosine } from '../../runtime/eval/metrics.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { catalogEntry } from '../../runtime/models/catalog.js';
import type { ModelManifest } from '../../runtime/models/manifest.js';
import { chooseEngine } from '../../runtime/backbone/engine-choice.js';
import { importModelFile } from '../../quantize/import-model.js';
import { modelInfo } from '../../quantize/model-info.js';
import { importTflite, importedManifest } from '../../runtime/models/tflite-import.js';
import { runCli } from '../support/cli.js';
import { IMAGES_DIR, MODEL_DIR, modelPath, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const PHOTOS = readdirSync(IMAGES_DIR)
  .filter((f) => /\.(jpg|bmp)$/.test(f))
  .sort();

async function sessions(
  id: string,
  options: { output?: string; float?: boolean } = {},
): Promise<{ tflite: EngineSession; ort: EngineSession; manifest: ModelManifest; ops: Record<string, number>; dim: number }> {
  const manifest = catalogEntry(id)!;
  const bytes = readFileSync(modelPath(manifest.file));
  const imported = importTflite(bytes, manifest.file, options);
  const onnxManifest = importedManifest(manifest, imported, { ...options, file: 'imported.onnx', keepLabels: false });
  return {
    tflite: await createTfliteSession(bytes, manifest, { threads: 1 }),
    ort: await createOnnxSession(imported.bytes, onnxManifest, { threads: 2 }),
    manifest,
    ops: imported.ops,
    dim: imported.outputDim,
  };
}

const input = (manifest: ModelManifest, photo: string) =>
  preprocessFile(join(IMAGES_DIR, photo), manifest.input, { resize: manifest.resize });
const top = (scores: Float32Array, k: number) =>
  Array.from(scores.keys())
    .sort((a, b) => scores[b]! - scores[a]!)
    .slice(0, k);

describe('TFLite -> ONNX import', () => {
  it("the V1 embedding extractor on ORT gives the TFLite engine's embeddings bit for bit on every sample photo", async () => {
    const { tflite, ort, manifest, ops, dim } = await sessions('mobilenet_v1_1.0_224_quant_embedding_extractor');
    expect(ops).toEqual({ CONV_2D: 14, DEPTHWISE_CONV_2D: 13, AVERAGE_POOL_2D: 1 });
    expect(dim).toBe(1024);
    expect(PHOTOS.length).toBeGreaterThanOrEqual(6);
    for (const photo of PHOTOS) {
      const x = await input(manifest, photo);
      const a = (await tflite.run(x, 1)) as Float32Array;
      const b = (await ort.run(x, 1)) as Float32Array;
      expect(Array.from(b), photo).toEqual(Array.from(a));
    }
    // A batch through the dynamic batch dimension gives the same rows.
    const two = await Promise.all(PHOTOS.slice(0, 2).map((p) => input(manifest, p)));
    const batch = new Uint8Array(two[0]!.length * 2);
    two.forEach((t, i) => batch.set(t as Uint8Array, i * t.length));
    const rows = (await ort.run(batch, 2)) as Float32Array;
    expect(Array.from(rows.subarray(1024))).toEqual(Array.from((await ort.run(two[1]!, 1)) as Float32Array));
    tflite.close();
    ort.close();
  });

  it.each(['mobilenet_v2_1.0_224_quant', 'tf2_mobilenet_v2_1.0_224_ptq', 'mobilenet_v1_0.25_128_quant'])(
    "%s gives the TFLite engine's probabilities bit for bit on the sample photos",
    async (id) => {
      // Both models have residual ADDs, rounded the way TFLite's kernel rounds them; tf2's int8 activations
      // run as uint8 so onnxruntime fuses every convolution (its float fallback rounds differently).
      const { tflite, ort, manifest } = await sessions(id);
      for (const photo of ['cat.bmp', 'grace_hopper.bmp', 'hot_dog.jpg']) {
        const x = await input(manifest, photo);
        const a = (await tflite.run(x, 1)) as Float32Array;
        const b = (await ort.run(x, 1)) as Float32Array;
        expect(Array.from(b), photo).toEqual(Array.from(a));
        expect(top(b, 5), photo).toEqual(top(a, 5));
      }
      tflite.close();
      ort.close();
    },
  );

  it('cuts a classifier at its pre-logits: a 1280-d MobileNet V2 embedding', async () => {
    const { ort, manifest, dim, ops } = await sessions('mobilenet_v2_1.0_224_quant', { output: 'MobilenetV2/Logits/AvgPool' });
    expect(dim).toBe(1280);
    expect(ops.SOFTMAX).toBeUndefined();
    const [cat, dog] = await Promise.all(
      ['cat.bmp', 'hot_dog.jpg'].map(async (p) => (await ort.run(await input(manifest, p), 1)) as Float32Array),
    );
    expect(cat!.length).toBe(1280);
    expect(cat!.every((v) => v >= 0 && v <= 6.01)).toBe(true); // after ReLU6 and the average pool
    expect(cosine(cat!, dog!)).toBeLessThan(0.9);
    ort.close();
  });

  it('a dequantized float import stays close to the int8 model', async () => {
    const { tflite, ort, manifest } = await sessions('mobilenet_v1_1.0_224_quant_embedding_extractor', { float: true });
    const x = await input(manifest, 'grace_hopper.bmp');
    expect(cosine((await tflite.run(x, 1)) as Float32Array, (await ort.run(x, 1)) as Float32Array)).toBeGreaterThan(0.98);
    tflite.close();
    ort.close();
  });

  it('names the tensor when a cut point does not exist', () => {
    const v2 = catalogEntry('mobilenet_v2_1.0_224_quant')!;
    expect(() => importTflite(readFileSync(modelPath(v2.file)), v2.file, { output: 'MobilenetV2/NoSuchTensor' })).toThrow(
      /mobilenet_v2_1\.0_224_quant\.tflite: no tensor "MobilenetV2\/NoSuchTensor" to cut at/,
    );
  });

  it('names the operator and its tensor when an op is not supported', () => {
    const tiny = catalogEntry('mobilenet_v1_0.25_128_quant')!;
    const bytes = Uint8Array.from(readFileSync(modelPath(tiny.file)));
    setOpcode(bytes, 25, 32); // SOFTMAX -> CALL, which no importer converts
    expect(() => importTflite(bytes, 'patched.tflite')).toThrow(
      /patched\.tflite: operator builtin 32 \(producing tensor "MobilenetV1\/Predictions\/Reshape_1"\) is not supported/,
    );
  });

  it('refuses truncated and foreign files with the file named', () => {
    const bytes = readFileSync(modelPath(catalogEntry('mobilenet_v1_0.25_128_quant')!.file));
    expect(() => importTflite(bytes.subarray(0, 2000), 'cut.tflite')).toThrow(/cut\.tflite: not a valid TFLite model/);
    expect(() => importTflite(new TextEncoder().encode('<html>not a model</html>'), 'page.tflite')).toThrow(
      /page\.tflite: not a valid TFLite model: file identifier/,
    );
  });

  it('edgetune model import writes the ONNX model and a manifest that resolves, keeping the model id', async () => {
    const out = join(tmp.path, 'v1.onnx');
    const { code, stdout, stderr } = await runCli([
      'model',
      'import',
      'mobilenet_v1_1.0_224_quant_embedding_extractor',
      '-o',
      out,
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as { manifest: ModelManifest };
    expect(printed.manifest).toMatchObject({
      id: 'mobilenet_v1_1.0_224_quant_embedding_extractor',
      format: 'onnx',
      file: 'v1.onnx',
      output: { name: 'embedding', dim: 1024 },
    });
    expect(existsSync(`${out}.json`)).toBe(true);
    const embed = await runCli(['embed', '--model', out, '--no-cache', '--json', join(IMAGES_DIR, 'cat.bmp')]);
    const reference = await runCli(['embed', '--no-cache', '--json', join(IMAGES_DIR, 'cat.bmp')]);
    const vector = (text: string) => Float32Array.from((JSON.parse(text) as { results: { embedding: number[] }[] }).results[0]!.embedding);
    expect(cosine(vector(embed.stdout), vector(reference.stdout))).toBeGreaterThanOrEqual(0.999);
    const cut = await importModelFile('mobilenet_v2_1.0_224_quant', join(tmp.path, 'v2.onnx'), {
      output: 'MobilenetV2/Logits/AvgPool',
      resolve: { modelDir: MODEL_DIR },
    });
    expect(cut.manifest.id).toBe('mobilenet_v2_1.0_224_quant-cut-MobilenetV2_Logits_AvgPool');
    expect(cut.manifest.output).toEqual({ name: 'embedding', kind: 'embedding', dim: 1280 });
  });
});

describe('edgetune model info', () => {
  it('reads the same architecture from a TFLite file and from its ONNX import', () => {
    const v1 = catalogEntry('mobilenet_v1_1.0_224_quant_embedding_extractor')!;
    const bytes = new Uint8Array(readFileSync(modelPath(v1.file)));
    const tflite = modelInfo(bytes, v1.file);
    // MobileNet V1 1.0 224 is 569 M MACs with its 1 M-MAC classifier (the published figure).
    expect(tflite).toMatchObject({ format: 'tflite', macs: 567_716_352, ops: { CONV_2D: 14, DEPTHWISE_CONV_2D: 13, AVERAGE_POOL_2D: 1 } });
    expect(tflite.inputs).toEqual([{ name: 'input', type: 'uint8', shape: [1, 224, 224, 3] }]);
    expect(tflite.quantization).toMatch(/per-tensor weights/);
    const onnx = modelInfo(importTflite(bytes, v1.file).bytes, 'v1.onnx');
    expect(onnx.macs).toBe(tflite.macs);
    expect(Math.abs(onnx.parameters - tflite.parameters) / tflite.parameters).toBeLessThan(0.001);
    expect(onnx.quantization).toMatch(/27 int8 conv weights/);
    expect(modelInfo(importTflite(bytes, v1.file, { float: true }).bytes, 'float.onnx').quantization).toBe('none (float)');
    expect(() => modelInfo(new TextEncoder().encode('<html>'), 'page.onnx')).toThrow(/page\.onnx: not a valid ONNX model/);
  });
});

describe('engine choice', () => {
  const tiny = catalogEntry('mobilenet_v1_0.25_128_quant')!;
  const resolved = () => ({
    manifest: tiny,
    path: modelPath(tiny.file),
    bytes: new Uint8Array(readFileSync(modelPath(tiny.file))),
    location: 'path' as const,
  });

  it('runs a TFLite model on onnxruntime through a cached import, keeping its id', () => {
    const cacheDir = join(tmp.path, 'choice-cache');
    const first = chooseEngine(resolved(), { cacheDir });
    expect(first.engine).toBe('onnx');
    expect(first.model.manifest).toMatchObject({ id: tiny.id, format: 'onnx', output: { name: 'embedding', dim: 1001 } });
    const cached = readdirSync(join(cacheDir, 'imported'));
    expect(cached.filter((f) => f.endsWith('.onnx'))).toHaveLength(1);
    const again = chooseEngine(resolved(), { cacheDir });
    expect(again.model.manifest.sha256).toBe(first.model.manifest.sha256);
    // A damaged cache entry is made again, not trusted.
    const onnxFile = join(
      cacheDir,
      'imported',
      cached.find((f) => f.endsWith('.onnx'))!,
    );
    writeFileSync(onnxFile, 'garbage');
    expect(chooseEngine(resolved(), { cacheDir }).model.manifest.sha256).toBe(first.model.manifest.sha256);
  });

  it('keeps TFLite when asked, or where onnxruntime has no build', () => {
    expect(chooseEngine(resolved(), { engine: 'tflite' })).toMatchObject({ engine: 'tflite', reason: 'the TFLite engine was asked for' });
    expect(chooseEngine(resolved(), { ortAvailable: false }).engine).toBe('tflite');
    expect(() => chooseEngine(resolved(), { ortAvailable: false, engine: 'onnx' })).toThrow(/onnxruntime-node has no build/);
  });

  it('falls back to TFLite when the importer cannot convert a model, unless ORT was asked for', () => {
    const patched = resolved();
    setOpcode(patched.bytes, 25, 32);
    const cacheDir = join(tmp.path, 'fallback-cache');
    const choice = chooseEngine(patched, { cacheDir });
    expect(choice.engine).toBe('tflite');
    expect(choice.reason).toMatch(/the ONNX import failed .*operator builtin 32/);
    expect(() => chooseEngine(patched, { cacheDir, engine: 'onnx' })).toThrow(/operator builtin 32/);
  });
});

/** Rewrites an operator code in a TFLite file (both the deprecated int8 and the int32 field). */
function setOpcode(bytes: Uint8Array, from: number, to: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (table: number, id: number) => {
    const vtable = table - view.getInt32(table, true);
    const slot = 4 + 2 * id;
    if (slot >= view.getUint16(vtable, true)) return 0;
    const offset = view.getUint16(vtable + slot, true);
    return offset === 0 ? 0 : table + offset;
  };
  const root = view.getUint32(0, true);
  const codesAt = field(root, 1);
  const vector = codesAt + view.getUint32(codesAt, true);
  for (let i = 0; i < view.getUint32(vector, true); i++) {
    const entry = vector + 4 + 4 * i;
    const table = entry + view.getUint32(entry, true);
    const deprecated = field(table, 0);
    const builtin = field(table, 3);
    const code = Math.max(deprecated ? view.getInt8(deprecated) : 0, builtin ? view.getInt32(builtin, true) : 0);
    if (code !== from) continue;
    if (deprecated) view.setInt8(deprecated, to);
    if (builtin) view.setInt32(builtin, to, true);
    return;
  }
  throw new Error(`no opcode ${from}`);
}
